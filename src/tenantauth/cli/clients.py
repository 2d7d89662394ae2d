"""``tenantauth client …``: register, list, show, rotate and delete OAuth clients."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import click

from tenantauth.cli.auditing import Action, run_audited
from tenantauth.cli.common import json_option, paged, row, run, services, show_record, table
from tenantauth.cli.groups import client
from tenantauth.domain.models import Client
from tenantauth.domain.oauth import clients

CLIENT_COLUMNS = ("client_id", "name", "scopes", "grant_types", "secret_rotated_at")
ONE_TIME_NOTICE = "store the client secret now: it is not kept and will not be shown again"


@client.command("add")
@click.argument("tenant_id")
@click.option("--name", required=True, help="Human-readable name.")
@click.option("--scope", "scopes", multiple=True, help="Scope the client may request; repeatable.")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    type=click.Choice(clients.GRANT_TYPES),
    help="Grant type the client may use; repeatable.",
)
@json_option
def client_add(
    *, tenant_id: str, name: str, scopes: Sequence[str], grants: Sequence[str], as_json: bool
) -> None:
    """Register a client of TENANT_ID and print its id and secret (shown only this once)."""
    with services() as svc:
        made, secret = run_audited(
            svc,
            Action("client.create", tenant_id),
            lambda: clients.create_client(svc, tenant_id, name, scopes, grants),
            lambda result: Action("client.create", tenant_id, result[0].client_id),
        )
    _show_client(made, as_json, f"registered client {made.client_id} in {tenant_id}", secret)


@client.command("list")
@click.argument("tenant_id")
@paged
@json_option
def client_list(
    tenant_id: str, limit: int, cursor: str | None, fetch_all: bool, as_json: bool
) -> None:
    """List the clients of TENANT_ID ordered by client id (never their secrets)."""
    items: list[Client] = []
    with services() as svc:
        while True:
            page = run(partial(clients.list_clients, svc, tenant_id, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_client_dict(c) for c in items], "next_cursor": cursor}))
        return
    table(CLIENT_COLUMNS, [row(_client_dict(c), CLIENT_COLUMNS) for c in items])
    click.echo(
        f"{len(items)} client(s)" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@client.command("show")
@click.argument("tenant_id")
@click.argument("client_id")
@json_option
def client_show(tenant_id: str, client_id: str, as_json: bool) -> None:
    """Show one client (never its secret)."""
    with services() as svc:
        found = run(lambda: clients.get_client(svc, tenant_id, client_id))
    _show_client(found, as_json)


@client.command("rotate")
@click.argument("tenant_id")
@click.argument("client_id")
@json_option
def client_rotate(tenant_id: str, client_id: str, as_json: bool) -> None:
    """Give CLIENT_ID a new secret (shown only this once); the old secret stops working."""
    with services() as svc:
        rotated, secret = run_audited(
            svc,
            Action("client.rotate_secret", tenant_id, client_id),
            lambda: clients.rotate_client_secret(svc, tenant_id, client_id),
        )
    _show_client(
        rotated, as_json, f"rotated the secret of {client_id}; the old one no longer works", secret
    )


@client.command("delete")
@click.argument("tenant_id")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def client_delete(tenant_id: str, client_id: str, yes: bool) -> None:
    """Delete CLIENT_ID: it can no longer obtain or refresh tokens."""
    if not yes:
        click.confirm(f"Delete client {client_id} of {tenant_id}?", abort=True)
    with services() as svc:
        run_audited(
            svc,
            Action("client.delete", tenant_id, client_id),
            lambda: clients.delete_client(svc, tenant_id, client_id),
        )
    click.echo(f"deleted client {client_id} from {tenant_id}")


def _client_dict(c: Client) -> dict[str, Any]:
    return {
        "tenant_id": c.tenant_id,
        "client_id": c.client_id,
        "name": c.name,
        "scopes": list(c.scopes),
        "grant_types": list(c.grant_types),
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "secret_rotated_at": c.secret_rotated_at.isoformat(),
    }


def _show_client(
    c: Client, as_json: bool, summary: str | None = None, secret: str | None = None
) -> None:
    shown = _client_dict(c) | ({"client_secret": secret} if secret else {})
    show_record(shown, as_json, summary, ONE_TIME_NOTICE if secret else None)
