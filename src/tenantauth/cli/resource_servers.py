"""``tenantauth resource-server …``: register, list, show, rotate and delete resource servers.

Recorded in the audit log like their HTTP twins (actor ``cli:<OS user>``, cli/auditing.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import click

from tenantauth.cli.auditing import Action, run_audited
from tenantauth.cli.common import json_option, paged, row, run, services, show_record, table
from tenantauth.cli.groups import resource_server
from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.domain.oauth import resource_servers as servers

SERVER_COLUMNS = ("id", "name", "tenants", "audience", "secret_rotated_at")
ONE_TIME_NOTICE = "store the secret now: it is not kept and will not be shown again"


@resource_server.command("add")
@click.option("--name", required=True, help="Human-readable name.")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="A tenant whose tokens it may introspect; repeatable.",
)
@click.option("--audience", help="Tokens must name this in aud to be active (default: any).")
@json_option
def server_add(*, name: str, tenants: Sequence[str], audience: str | None, as_json: bool) -> None:
    """Register a resource server and print its id and secret (shown only this once).

    It may introspect tokens of the given tenants (RFC 7662) and do nothing else.
    """
    with services() as svc:
        made, secret = run_audited(
            svc,
            Action("resource_server.create"),
            lambda: servers.create_resource_server(svc, name, list(tenants), audience),
            lambda result: Action("resource_server.create", None, result[0].id),
        )
    _show(made, as_json, f"registered resource server {made.id}", secret)


@resource_server.command("list")
@paged
@json_option
def server_list(limit: int, cursor: str | None, fetch_all: bool, as_json: bool) -> None:
    """List resource servers by id with their tenants (never their secrets)."""
    items: list[ResourceServer] = []
    with services() as svc:
        while True:
            page = run(partial(servers.list_resource_servers, svc, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_dict(s) for s in items], "next_cursor": cursor}))
        return
    table(SERVER_COLUMNS, [row(_dict(s), SERVER_COLUMNS) for s in items])
    click.echo(
        f"{len(items)} resource server(s)" + (f"; more with --cursor {cursor}" if cursor else ""),
        err=True,
    )


@resource_server.command("show")
@click.argument("server_id")
@json_option
def server_show(server_id: str, as_json: bool) -> None:
    """Show one resource server (never its secret)."""
    with services() as svc:
        found = run(lambda: servers.get_resource_server(svc, server_id))
    _show(found, as_json)


@resource_server.command("rotate")
@click.argument("server_id")
@json_option
def server_rotate(server_id: str, as_json: bool) -> None:
    """Give SERVER_ID a new secret (shown only this once); the old one stops working."""
    with services() as svc:
        rotated, secret = run_audited(
            svc,
            Action("resource_server.rotate_secret", None, server_id),
            lambda: servers.rotate_resource_server_secret(svc, server_id),
        )
    _show(
        rotated, as_json, f"rotated the secret of {server_id}; the old one no longer works", secret
    )


@resource_server.command("delete")
@click.argument("server_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def server_delete(server_id: str, yes: bool) -> None:
    """Delete SERVER_ID: its secret authenticates nothing any more."""
    if not yes:
        click.confirm(f"Delete resource server {server_id}?", abort=True)
    with services() as svc:
        run_audited(
            svc,
            Action("resource_server.delete", None, server_id),
            lambda: servers.delete_resource_server(svc, server_id),
        )
    click.echo(f"deleted resource server {server_id}")


def _dict(s: ResourceServer) -> dict[str, Any]:
    """Return a server as the API shows it (``ResourceServerResponseSchema``)."""
    return {
        "id": s.id,
        "name": s.name,
        "tenants": list(s.tenants),
        "audience": s.audience,
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
        "secret_rotated_at": s.secret_rotated_at.isoformat(),
    }


def _show(
    s: ResourceServer, as_json: bool, summary: str | None = None, secret: str | None = None
) -> None:
    shown = _dict(s) | ({"secret": secret} if secret else {})
    show_record(shown, as_json, summary, ONE_TIME_NOTICE if secret else None)
