"""``tenantauth tenant …``: create, list, show, rotate, suspend, resume and delete tenants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import click

from tenantauth.cli.auditing import Action, run_audited
from tenantauth.cli.common import fail, fmt, json_option, read_secret, run, services, table
from tenantauth.cli.groups import tenant
from tenantauth.crypto.jwt import ALGORITHMS, header_kid
from tenantauth.crypto.keypairs import MAX_IMPORT_CHARS
from tenantauth.domain import key_rollover as keys_use
from tenantauth.domain import paging
from tenantauth.domain import tenants as use
from tenantauth.domain.jwks import JWKS_MAX_AGE, tenant_jwks
from tenantauth.domain.models import Page, Tenant, TenantStatus

TENANT_COLUMNS = ("id", "name", "status", "alg", "kid", "key_version", "rotated_at")
ALG_OPTION = click.option(
    "--alg",
    type=click.Choice(ALGORITHMS),
    help="Signing algorithm: HS256 (a shared secret; the default for a new tenant) or a key "
    "pair whose public key the tenant's JWKS publishes: EdDSA (Ed25519), ES256 (P-256), "
    "RS256 (2048-bit RSA when generated). A rotation without --alg keeps the tenant's.",
)
PRIVATE_KEY_OPTION = click.option(
    "--private-key-file",
    type=click.File("r"),
    help="Import this private key instead of generating one: unencrypted PEM or a private "
    "JWK (JSON), of the type --alg names. '-' reads standard input. Never printed.",
)


def _read_key(source: Any) -> str | None:
    """The text of --private-key-file (at most one character more than the API's bound, so
    that an oversized file is refused with the API's message rather than read whole). A file
    that is not UTF-8 text (a DER key, say) is a clean error, never a traceback."""
    if source is None:
        return None
    try:
        return str(source.read(MAX_IMPORT_CHARS + 1))
    except UnicodeDecodeError:
        fail(f"{source.name} is not text: give the key as PEM or as a JWK (JSON)")


@tenant.command("create")
@click.argument("tenant_id")
@click.option("--name", required=True, help="Human-readable name.")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Import an existing base64url secret (≥ 32 bytes) read from standard input.",
)
@click.option("--access-token-ttl", type=click.IntRange(1), help="Default token lifetime (s).")
@click.option("--max-token-ttl", type=click.IntRange(1), help="Longest token lifetime (s).")
@ALG_OPTION
@PRIVATE_KEY_OPTION
@json_option
def tenant_create(
    *,
    tenant_id: str,
    name: str,
    secret_stdin: bool,
    access_token_ttl: int | None,
    max_token_ttl: int | None,
    alg: str | None,
    private_key_file: Any,
    as_json: bool,
) -> None:
    """Create TENANT_ID with a new (or imported) signing key; the secret or private key is
    never printed. Key-pair tenants publish their public key at
    /v1/tenants/TENANT_ID/.well-known/jwks.json (see `tenant jwks`)."""
    secret = read_secret() if secret_stdin else None
    private_key = _read_key(private_key_file)
    with services() as svc:
        created = run_audited(
            svc,
            Action("tenant.create", tenant_id, tenant_id),
            lambda: use.create_tenant(
                svc,
                tenant_id,
                name,
                secret=secret,
                access_token_ttl=access_token_ttl,
                max_token_ttl=max_token_ttl,
                alg=alg,
                private_key=private_key,
            ),
        )
    _show_tenant(created, as_json, f"created tenant {tenant_id} ({created.alg}, kid {created.kid})")


@tenant.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, paging.MAX_PAGE_SIZE),
    default=paging.DEFAULT_PAGE_SIZE,
    show_default=True,
    help=f"Tenants per page (at most {paging.MAX_PAGE_SIZE}).",
)
@click.option("--cursor", help="Continue from a previous listing's next cursor.")
@click.option("--all", "fetch_all", is_flag=True, help="Follow cursors to list every tenant.")
@json_option
def tenant_list(limit: int, cursor: str | None, fetch_all: bool, as_json: bool) -> None:
    """List tenants ordered by id."""
    items: list[Tenant] = []
    with services() as svc:
        while True:
            page: Page = run(partial(use.list_tenants, svc, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_tenant_dict(t) for t in items], "next_cursor": cursor}))
        return
    table(TENANT_COLUMNS, [_tenant_row(t) for t in items])
    summary = f"{len(items)} tenant(s)"
    click.echo(summary + (f"; more with --cursor {cursor}" if cursor else ""), err=True)


@tenant.command("show")
@click.argument("tenant_id")
@json_option
def tenant_show(tenant_id: str, as_json: bool) -> None:
    """Show one tenant."""
    with services() as svc:
        found = run(lambda: use.get_tenant(svc, tenant_id))
    _show_tenant(found, as_json)


@tenant.command("rotate")
@click.argument("tenant_id")
@click.option("--secret-stdin", is_flag=True, help="Import the new base64url secret from stdin.")
@ALG_OPTION
@PRIVATE_KEY_OPTION
@json_option
def tenant_rotate(
    tenant_id: str, secret_stdin: bool, alg: str | None, private_key_file: Any, as_json: bool
) -> None:
    """Rotate the signing key (optionally to another --alg): every token of the tenant stops
    verifying on this service when this returns. Verifiers holding a copy of its JWKS may
    accept old tokens until their copy expires (said below when it applies)."""
    secret = read_secret() if secret_stdin else None
    private_key = _read_key(private_key_file)
    with services() as svc:
        rotation = run_audited(
            svc,
            Action("tenant.rotate", tenant_id),
            lambda: use.rotate_key(svc, tenant_id, secret, alg=alg, private_key=private_key),
        )
    rotated = rotation.tenant
    summary = (
        f"rotated {tenant_id}: key version {rotated.key_version}, {rotated.alg}, kid "
        f"{rotated.kid}; all earlier tokens are now rejected by this service"
    )
    if rotation.offline_until is not None:
        summary += (
            "; offline verifiers holding its JWKS may accept them until "
            f"{rotation.offline_until.isoformat()}"
        )
    _show_tenant(rotated, as_json, summary)


@tenant.command("keys")
@click.argument("tenant_id")
@json_option
def tenant_keys(tenant_id: str, as_json: bool) -> None:
    """List TENANT_ID's keys that verify now: the signing key (current), a published next
    key and retiring keys in their grace window, with when each starts or stops. Never their
    material."""
    with services() as svc:
        found, views = run(lambda: keys_use.list_keys(svc, tenant_id))
    _show_keys(found, views, as_json)


@tenant.command("rollover")
@click.argument("tenant_id")
@click.option(
    "--grace",
    type=click.IntRange(0, keys_use.MAX_WINDOW),
    help="Seconds the previous key keeps verifying (default: the tenant's max token TTL "
    "plus the clock leeway, so every token it signed lives out its lifetime).",
)
@ALG_OPTION
@PRIVATE_KEY_OPTION
@json_option
def tenant_rollover(
    tenant_id: str, grace: int | None, alg: str | None, private_key_file: Any, as_json: bool
) -> None:
    """Planned key change: sign with a new key from now on (the published next key, or a new
    one); tokens of the previous key keep verifying until the grace ends. Revokes nothing
    (`tenant rotate` does)."""
    private_key = _read_key(private_key_file)
    with services() as svc:
        change = run_audited(
            svc,
            Action("tenant.rollover", tenant_id),
            lambda: keys_use.rollover(
                svc, tenant_id, grace=grace, alg=alg, private_key=private_key
            ),
        )
        views = keys_use.key_views(change.tenant, svc.clock.now())
    until = datetime.fromtimestamp(change.key.at, UTC).isoformat()
    summary = (
        f"rolled {tenant_id} over to kid {change.tenant.kid}; tokens of kid "
        f"{header_kid(tenant_id, change.key.name, change.key.alg)} verify until {until}"
    )
    _show_keys(change.tenant, views, as_json, summary)


@tenant.command("publish-next")
@click.argument("tenant_id")
@click.option(
    "--ahead",
    type=click.IntRange(0, keys_use.MAX_WINDOW),
    required=True,
    help="Seconds before a rollover may promote it (it is in the JWKS at once): at least the "
    f"JWKS max-age ({JWKS_MAX_AGE}) so verifiers caching the JWKS hold it before it signs.",
)
@ALG_OPTION
@PRIVATE_KEY_OPTION
@json_option
def tenant_publish_next(
    tenant_id: str, ahead: int, alg: str | None, private_key_file: Any, as_json: bool
) -> None:
    """Publish TENANT_ID's next key: offline verifiers can fetch it now; `tenant rollover`
    promotes it once AHEAD seconds have passed."""
    private_key = _read_key(private_key_file)
    with services() as svc:
        change = run_audited(
            svc,
            Action("tenant.publish_next", tenant_id),
            lambda: keys_use.publish_next(
                svc, tenant_id, ahead=ahead, alg=alg, private_key=private_key
            ),
        )
        views = keys_use.key_views(change.tenant, svc.clock.now())
    kid = header_kid(tenant_id, change.key.name, change.key.alg)
    when = datetime.fromtimestamp(change.key.at, UTC).isoformat()
    _show_keys(change.tenant, views, as_json, f"published kid {kid}; it may sign from {when}")


def _show_keys(
    t: Tenant, views: list[keys_use.KeyView], as_json: bool, summary: str | None = None
) -> None:
    rows = [
        {
            "kid": v.kid,
            "alg": v.alg,
            "state": v.state,
            "signs_from": v.signs_from.isoformat() if v.signs_from else None,
            "verifies_until": v.verifies_until.isoformat() if v.verifies_until else None,
            "published": v.published,
        }
        for v in views
    ]
    if as_json:
        click.echo(json.dumps({"id": t.id, "key_version": t.key_version, "keys": rows}))
        return
    columns = ("kid", "alg", "state", "signs_from", "verifies_until", "published")
    table(columns, [tuple(fmt(r[c]) for c in columns) for r in rows])
    click.echo(summary or f"{len(rows)} key(s) of {t.id}", err=True)


@tenant.command("jwks")
@click.argument("tenant_id")
def tenant_jwks_command(tenant_id: str) -> None:
    """Print TENANT_ID's JWK Set (its public keys, as served at
    /v1/tenants/TENANT_ID/.well-known/jwks.json): empty for an HS256 or suspended tenant."""
    with services() as svc:
        found = run(lambda: tenant_jwks(svc, tenant_id))
    click.echo(json.dumps(found, indent=2))


def _status_command(name: str, status: TenantStatus, verb: str) -> None:
    @tenant.command(
        name, help=f"{verb.capitalize()} TENANT_ID (takes effect on every verifier at once)."
    )
    @click.argument("tenant_id")
    @json_option
    def command(tenant_id: str, as_json: bool) -> None:
        with services() as svc:
            changed = run_audited(
                svc,
                Action("tenant.update", tenant_id),
                lambda: use.update_tenant(svc, tenant_id, use.TenantChanges(status=status)),
            )
        _show_tenant(changed, as_json, f"{verb} {tenant_id}")


_status_command("suspend", TenantStatus.SUSPENDED, "suspended")
_status_command("resume", TenantStatus.ACTIVE, "resumed")


@tenant.command("delete")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def tenant_delete(tenant_id: str, yes: bool) -> None:
    """Delete TENANT_ID: its secret is erased and its tokens stop verifying at once."""
    if not yes:
        click.confirm(f"Delete tenant {tenant_id} and invalidate all its tokens?", abort=True)
    with services() as svc:
        run_audited(
            svc, Action("tenant.delete", tenant_id), lambda: use.delete_tenant(svc, tenant_id)
        )
    click.echo(f"deleted tenant {tenant_id}")


def _tenant_dict(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "status": t.status.value,
        "alg": t.alg,
        "kid": t.kid,
        "key_version": t.key_version,
        "access_token_ttl": t.access_token_ttl,
        "max_token_ttl": t.max_token_ttl,
        "created_at": t.created_at.isoformat(),
        "updated_at": t.updated_at.isoformat(),
        "rotated_at": t.rotated_at.isoformat(),
    }


def _tenant_row(t: Tenant) -> tuple[str, ...]:
    d = _tenant_dict(t)
    return tuple(fmt(d[c]) for c in TENANT_COLUMNS)


def _show_tenant(t: Tenant, as_json: bool, summary: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(_tenant_dict(t)))
        return
    table(("field", "value"), [(k, fmt(v)) for k, v in _tenant_dict(t).items()])
    if summary:
        click.echo(summary, err=True)
