"""``tenantauth admin-keys …`` and ``tenantauth audit …``: the admin plane from the shell.

Key creation and revocation here are recorded in the audit log like their HTTP twins, with
actor ``cli:<OS user>`` (cli/auditing.py; whoever can run the command on the server already
holds the master key). Reading the log is not itself recorded, as in the API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import click

from tenantauth.cli.auditing import Action, cli_actor, run_audited
from tenantauth.cli.common import (
    fail,
    json_option,
    paged,
    row,
    run,
    services,
    show_record,
    table,
)
from tenantauth.cli.groups import admin_keys, audit
from tenantauth.domain.admin import admin_keys as keys
from tenantauth.domain.admin import audit as chain
from tenantauth.domain.admin.admin_models import AdminKey, AdminPrincipal, AuditEntry, AuditQuery

KEY_COLUMNS = ("id", "name", "scope", "tenant_id", "expires_at", "revoked_at", "last_used_at")
AUDIT_COLUMNS = ("seq", "occurred_at", "actor", "tenant_id", "action", "target", "outcome")
ONE_TIME_NOTICE = "store the admin key now: it is not kept and will not be shown again"


@admin_keys.command("create")
@click.option("--name", required=True, help="What the key is for (shown in listings).")
@click.option("--tenant", "tenant_id", help="Limit the key to this tenant (default: global).")
@click.option(
    "--expires-in",
    type=click.IntRange(1, keys.MAX_EXPIRES_IN),
    help="Seconds until the key stops working (default: never).",
)
@json_option
def key_create(name: str, tenant_id: str | None, expires_in: int | None, as_json: bool) -> None:
    """Create an admin key and print it (shown only this once)."""
    with services() as svc:
        made, full = run_audited(
            svc,
            Action("admin_key.create", tenant_id),
            lambda: keys.create_admin_key(svc, name, tenant_id, expires_in),
            lambda result: Action("admin_key.create", tenant_id, result[0].id),
        )
    shown = _key_dict(made) | {"key": full}
    show_record(shown, as_json, f"created admin key {made.id}", ONE_TIME_NOTICE)


@admin_keys.command("list")
@paged
@json_option
def key_list(limit: int, cursor: str | None, fetch_all: bool, as_json: bool) -> None:
    """List admin keys by id: prefix, name, scope and dates, never the keys."""
    items: list[AdminKey] = []
    with services() as svc:
        while True:
            page = run(partial(keys.list_admin_keys, svc, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_key_dict(k) for k in items], "next_cursor": cursor}))
        return
    table(KEY_COLUMNS, [row(_key_dict(k), KEY_COLUMNS) for k in items])
    click.echo(
        f"{len(items)} key(s)" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@admin_keys.command("revoke")
@click.argument("key_id")
@json_option
def key_revoke(key_id: str, as_json: bool) -> None:
    """Revoke KEY_ID: it authenticates no further request."""
    with services() as svc:
        revoked = run_audited(
            svc,
            Action("admin_key.revoke", None, key_id),
            lambda: keys.revoke_admin_key(svc, key_id),
            lambda key: Action("admin_key.revoke", key.tenant_id, key.id),
        )
    show_record(_key_dict(revoked), as_json, f"revoked admin key {key_id}")


class Rfc3339Time(click.ParamType[datetime]):
    """An RFC 3339 date-time; one without an offset is taken as UTC."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Return an aware ``datetime``; fail the option for anything else."""
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit.command("list")
@click.option("--tenant", "tenant_id", help="Only entries of this tenant.")
@click.option("--action", help="Only this action, e.g. tenant.rotate.")
@click.option("--actor", help="Only this actor: a key id, bootstrap or cli:<user>.")
@click.option("--since", type=Rfc3339Time(), help="Entries at or after this time (RFC 3339).")
@click.option("--until", type=Rfc3339Time(), help="Entries at or before this time (RFC 3339).")
@paged
@json_option
def audit_list(
    *,
    tenant_id: str | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    fetch_all: bool,
    as_json: bool,
) -> None:
    """List audit entries newest first; --cursor continues with older ones."""
    query = AuditQuery(tenant_id, action, actor, since, until)
    viewer = AdminPrincipal(cli_actor())  # a global admin, as the master key holder is
    items: list[AuditEntry] = []
    with services() as svc:
        while True:
            page = run(partial(chain.list_entries, svc, viewer, query, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_entry_dict(e) for e in items], "next_cursor": cursor}))
        return
    table(AUDIT_COLUMNS, [row(_entry_dict(e), AUDIT_COLUMNS) for e in items])
    click.echo(
        f"{len(items)} entries" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@audit.command("verify")
@click.option(
    "--head",
    "published",
    metavar="SEQ:HASH",
    help="A head kept outside the database (the newest `audit head SEQ:HASH` line of the "
    "service's log): the chain must still hold that entry, so cutting off the newest entries "
    "is detected too.",
)
def audit_verify(published: str | None) -> None:
    """Walk the audit chain; exit 1 naming the first broken link (edited, deleted or
    reordered entry, or, with --head, entries cut off after a published head). Prints the
    head, which you can keep elsewhere to detect truncation."""
    head = None
    if published is not None:
        try:
            head = chain.PublishedHead.parse(published)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--head") from None
    with services() as svc:
        report = run(lambda: chain.verify_chain(svc, published=head))
    if report.broken_seq is not None:
        fail(f"audit chain BROKEN at entry {report.broken_seq}: {report.reason}")
    click.echo(
        f"audit chain intact: {report.checked} entries; head {report.head_seq} "
        f"{report.head_hash.hex()}"
    )


def _entry_dict(e: AuditEntry) -> dict[str, Any]:
    """Return an entry as the API shows it (``AuditEntryResponseSchema``)."""
    return {
        "seq": e.seq,
        "occurred_at": e.occurred_at.isoformat(),
        "actor": e.event.actor,
        "tenant_id": e.event.tenant_id,
        "action": e.event.action,
        "target": e.event.target,
        "request_id": e.event.request_id,
        "outcome": e.event.outcome,
        "prev_hash": e.prev_hash.hex(),
        "entry_hash": e.entry_hash.hex(),
    }


def _key_dict(k: AdminKey) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": k.id,
        "prefix": k.prefix,
        "name": k.name,
        "scope": k.scope,
        "tenant_id": k.tenant_id,
        "created_at": iso(k.created_at),
        "expires_at": iso(k.expires_at),
        "revoked_at": iso(k.revoked_at),
        "last_used_at": iso(k.last_used_at),
    }
