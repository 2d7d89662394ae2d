"""The ``tenantauth`` command: serve, migrate, and admin tasks against the same stores.

Admin commands act on the database and cache directly (same fences as the HTTP API), so they
work before the server is started and need only the service's own environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click

from tenantauth import __version__, embedded
from tenantauth.app import build_services
from tenantauth.domain import clients, revocations, users
from tenantauth.domain import tenants as use
from tenantauth.domain.models import Client, Page, Tenant, TenantStatus, User, UserStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import ConfigurationError, InvalidTokenError, TenantAuthError
from tenantauth.settings import PREFIX, SETTINGS, Settings, default_state_dir, is_embedded

TENANT_COLUMNS = ("id", "name", "status", "key_version", "rotated_at")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tenantauth")
def main() -> None:
    """tenantauth: multi-tenant JWT issuing and verification.

    With no TENANTAUTH_DATABASE_URL everything runs in embedded mode (SQLite in the state
    directory, secrets generated on first use). Run `tenantauth settings` to see every setting.
    """


# --------------------------------------------------------------------------- serve / migrate


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")),
    show_default="$WEB_CONCURRENCY or 2",
    help="gunicorn worker processes.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Start the HTTP service under gunicorn.

    Embedded mode prints the generated admin token once, on first start. Production mode
    refuses to start while migrations are pending.
    """
    settings = _settings(serving=f"http://{host}:{port}")
    with _services(settings) as svc:  # applies migrations first when auto_migrate is on
        pending = svc.storage.pending_migrations()  # type: ignore[attr-defined]
    if pending:
        _fail(f"migrations {pending} are pending: run `tenantauth migrate` first")
    click.echo(
        f"tenantauth {__version__}: {_mode(settings)}; http://{host}:{port} ({workers} workers)"
    )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:tenantauth.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "tenantauth.wsgi:app",
    ]
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours; no shell


@main.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run from several replicas at once)."""
    settings = _settings()
    with _services(settings) as svc:
        applied = svc.storage.migrate()  # type: ignore[attr-defined]
    if applied:
        click.echo(f"applied migrations {', '.join(map(str, applied))} to {_mode(settings)}")
    else:
        click.echo(f"{_mode(settings)}: schema is up to date")


@main.command("settings")
def show_settings() -> None:
    """List every TENANTAUTH_* setting with its default and meaning (values are not shown)."""
    rows = [(PREFIX + s.name, s.default or "-", s.help) for s in SETTINGS]
    _table(("setting", "default", "meaning"), rows)


# --------------------------------------------------------------------------- tenants


@main.group()
def tenant() -> None:
    """Create, inspect, rotate, suspend, resume and delete tenants."""


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
@_json_option
def tenant_create(
    *,
    tenant_id: str,
    name: str,
    secret_stdin: bool,
    access_token_ttl: int | None,
    max_token_ttl: int | None,
    as_json: bool,
) -> None:
    """Create TENANT_ID with a new signing secret (the secret is never printed)."""
    secret = _read_secret() if secret_stdin else None
    with _services() as svc:
        created = _run(
            lambda: use.create_tenant(
                svc,
                tenant_id,
                name,
                secret=secret,
                access_token_ttl=access_token_ttl,
                max_token_ttl=max_token_ttl,
            )
        )
    _show_tenant(created, as_json, f"created tenant {tenant_id}")


@tenant.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, use.MAX_PAGE_SIZE),
    default=use.DEFAULT_PAGE_SIZE,
    show_default=True,
    help=f"Tenants per page (at most {use.MAX_PAGE_SIZE}).",
)
@click.option("--cursor", help="Continue from a previous listing's next cursor.")
@click.option("--all", "fetch_all", is_flag=True, help="Follow cursors to list every tenant.")
@_json_option
def tenant_list(limit: int, cursor: str | None, fetch_all: bool, as_json: bool) -> None:
    """List tenants ordered by id."""
    items: list[Tenant] = []
    with _services() as svc:
        while True:
            page: Page = _run(partial(use.list_tenants, svc, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_tenant_dict(t) for t in items], "next_cursor": cursor}))
        return
    _table(TENANT_COLUMNS, [_tenant_row(t) for t in items])
    summary = f"{len(items)} tenant(s)"
    click.echo(summary + (f"; more with --cursor {cursor}" if cursor else ""), err=True)


@tenant.command("show")
@click.argument("tenant_id")
@_json_option
def tenant_show(tenant_id: str, as_json: bool) -> None:
    """Show one tenant."""
    with _services() as svc:
        found = _run(lambda: use.get_tenant(svc, tenant_id))
    _show_tenant(found, as_json)


@tenant.command("rotate")
@click.argument("tenant_id")
@click.option("--secret-stdin", is_flag=True, help="Import the new base64url secret from stdin.")
@_json_option
def tenant_rotate(tenant_id: str, secret_stdin: bool, as_json: bool) -> None:
    """Rotate the signing secret: every token of the tenant stops verifying when this returns."""
    secret = _read_secret() if secret_stdin else None
    with _services() as svc:
        rotated = _run(lambda: use.rotate_tenant(svc, tenant_id, secret))
    _show_tenant(
        rotated,
        as_json,
        f"rotated {tenant_id}: key version {rotated.key_version}; "
        "all earlier tokens are now rejected",
    )


def _status_command(name: str, status: TenantStatus, verb: str) -> None:
    @tenant.command(
        name, help=f"{verb.capitalize()} TENANT_ID (takes effect on every verifier at once)."
    )
    @click.argument("tenant_id")
    @_json_option
    def command(tenant_id: str, as_json: bool) -> None:
        with _services() as svc:
            changed = _run(
                lambda: use.update_tenant(svc, tenant_id, use.TenantChanges(status=status))
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
    with _services() as svc:
        _run(lambda: use.delete_tenant(svc, tenant_id))
    click.echo(f"deleted tenant {tenant_id}")


# --------------------------------------------------------------------------- tokens


@main.group()
def token() -> None:
    """Issue and verify tokens."""


@token.command("issue")
@click.argument("tenant_id")
@click.option("--sub", required=True, help="Subject (user or service id).")
@click.option("--ttl", type=click.IntRange(1), help="Lifetime in seconds (default: tenant's).")
@click.option("--aud", multiple=True, help="Audience; repeat for several.")
@click.option("--scope", help="Space-separated scopes.")
@click.option(
    "--claim", "claims", multiple=True, metavar="NAME=JSON", help="Custom claim; repeatable."
)
@_json_option
def token_issue(
    *,
    tenant_id: str,
    sub: str,
    ttl: int | None,
    aud: Sequence[str],
    scope: str | None,
    claims: Sequence[str],
    as_json: bool,
) -> None:
    """Mint an access token for SUB of TENANT_ID and print it."""
    extra = dict(_parse_claim(c) for c in claims)
    audience: str | list[str] | None = (aud[0] if len(aud) == 1 else list(aud)) if aud else None
    with _services() as svc:
        issued = _run(
            lambda: issue_token(
                svc.storage,
                svc.keyring,
                svc.tokens,
                svc.clock,
                TokenRequest(tenant_id, sub, ttl=ttl, audience=audience, scope=scope, claims=extra),
            )
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "access_token": issued.access_token,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                }
            )
        )
    else:
        click.echo(issued.access_token)
        click.echo(f"expires in {issued.expires_in} s", err=True)


@token.command("revoke")
@click.argument("token_text", metavar="TOKEN")
@_json_option
def token_revoke(token_text: str, as_json: bool) -> None:
    """Revoke one access token (by its jti, until it expires). '-' reads it from stdin.

    Exit status 0 if it was revoked, 1 if it was not a valid token (nothing to revoke).
    """
    if token_text == "-":  # noqa: S105 - "-" means stdin, not a password
        token_text = sys.stdin.readline().strip()
    with _services() as svc:
        revoked = _run(lambda: revocations.revoke_token(svc, token_text))
    if as_json:
        click.echo(json.dumps({"revoked": revoked}))
    else:
        click.echo(
            "revoked: every verifier now rejects this token"
            if revoked
            else "not revoked: the token is not valid (nothing to revoke)"
        )
    sys.exit(0 if revoked else 1)


@main.group()
def user() -> None:
    """Act on the users (token subjects) of a tenant."""


@user.command("revoke")
@click.argument("tenant_id")
@click.argument("username")
@_json_option
def user_revoke(tenant_id: str, username: str, as_json: bool) -> None:
    """Log USERNAME out everywhere: every token of that subject issued until now is rejected
    by every verifier when this returns; tokens issued afterwards verify."""
    with _services() as svc:
        done = _run(lambda: revocations.revoke_subject(svc, tenant_id, username))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "tenant_id": done.tenant_id,
                    "subject": done.subject,
                    "version": done.version,
                    "revoked_at": done.revoked_at,
                }
            )
        )
    else:
        click.echo(
            f"revoked every token of {username!r} in {tenant_id} "
            f"(revocation version {done.version})"
        )


@token.command("verify")
@click.argument("token_text", metavar="TOKEN")
@click.option("--audience", help="Require this audience.")
@_json_option
def token_verify(token_text: str, audience: str | None, as_json: bool) -> None:
    """Verify TOKEN ('-' reads it from stdin). Exit status 0 if valid, 1 if not."""
    if token_text == "-":  # noqa: S105 - "-" means stdin, not a password
        token_text = sys.stdin.readline().strip()
    with _services() as svc:
        try:
            verdict = svc.verifier.verify(token_text, audience)
        except InvalidTokenError as exc:
            if as_json:
                click.echo(json.dumps({"active": False}))
            else:
                click.echo(f"INVALID: {exc.reason}")
            sys.exit(1)
        except TenantAuthError as exc:
            _fail(exc.detail)
    if as_json:
        click.echo(json.dumps({"active": True, "claims": verdict.claims}))
        return
    click.echo(f"VALID: tenant {verdict.tenant_id}, subject {verdict.subject}")
    _table(("claim", "value"), [(k, json.dumps(v)) for k, v in verdict.claims.items()])


# --------------------------------------------------------------------------- users and clients

USER_COLUMNS = ("username", "status", "claims", "updated_at")
CLIENT_COLUMNS = ("client_id", "name", "scopes", "grant_types", "secret_rotated_at")
ONE_TIME_NOTICE = "store the client secret now: it is not kept and will not be shown again"
_password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (default: hidden prompt).",
)
_page_options = (
    click.option(
        "--limit",
        type=click.IntRange(1, use.MAX_PAGE_SIZE),
        default=use.DEFAULT_PAGE_SIZE,
        show_default=True,
        help=f"Entries per page (at most {use.MAX_PAGE_SIZE}).",
    ),
    click.option("--cursor", help="Continue from a previous listing's next cursor."),
    click.option("--all", "fetch_all", is_flag=True, help="Follow cursors to list everything."),
)


def _paged(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_page_options):
        command = option(command)
    return command


@user.command("add")
@click.argument("tenant_id")
@click.argument("username")
@_password_stdin_option
@click.option(
    "--claim", "claims", multiple=True, metavar="NAME=JSON", help="Custom claim; repeatable."
)
@_json_option
def user_add(
    *, tenant_id: str, username: str, password_stdin: bool, claims: Sequence[str], as_json: bool
) -> None:
    """Create USERNAME in TENANT_ID. The password comes from standard input or a hidden
    prompt, never from the command line (argv is visible to other users of the machine)."""
    extra = dict(_parse_claim(c) for c in claims)
    password = _read_password(password_stdin)
    with _services() as svc:
        created = _run(lambda: users.create_user(svc, tenant_id, username, password, extra))
    _show_user(created, as_json, f"created user {username!r} in {tenant_id}")


@user.command("list")
@click.argument("tenant_id")
@_paged
@_json_option
def user_list(
    tenant_id: str, limit: int, cursor: str | None, fetch_all: bool, as_json: bool
) -> None:
    """List the users of TENANT_ID ordered by username."""
    items: list[User] = []
    with _services() as svc:
        while True:
            page = _run(partial(users.list_users, svc, tenant_id, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_user_dict(u) for u in items], "next_cursor": cursor}))
        return
    _table(USER_COLUMNS, [_row(_user_dict(u), USER_COLUMNS) for u in items])
    click.echo(
        f"{len(items)} user(s)" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@user.command("show")
@click.argument("tenant_id")
@click.argument("username")
@_json_option
def user_show(tenant_id: str, username: str, as_json: bool) -> None:
    """Show one user (never its password hash)."""
    with _services() as svc:
        found = _run(lambda: users.get_user(svc, tenant_id, username))
    _show_user(found, as_json)


def _user_status_command(name: str, status: UserStatus, summary: str, help_text: str) -> None:
    @user.command(name, help=help_text)
    @click.argument("tenant_id")
    @click.argument("username")
    @_json_option
    def command(tenant_id: str, username: str, as_json: bool) -> None:
        with _services() as svc:
            changed = _run(lambda: users.update_user(svc, tenant_id, username, status=status))
        _show_user(changed, as_json, summary.format(username=username))


_user_status_command(
    "disable",
    UserStatus.DISABLED,
    "disabled {username!r}: every token it holds is now rejected",
    "Disable USERNAME: it cannot log in, and every access and refresh token it holds is "
    "rejected by every verifier when this returns.",
)
_user_status_command(
    "enable",
    UserStatus.ACTIVE,
    "enabled {username!r}: tokens issued from now on verify",
    "Enable USERNAME again; tokens revoked while it was disabled stay revoked.",
)


@user.command("passwd")
@click.argument("tenant_id")
@click.argument("username")
@_password_stdin_option
@_json_option
def user_passwd(tenant_id: str, username: str, password_stdin: bool, as_json: bool) -> None:
    """Reset the password of USERNAME; every token it holds is revoked."""
    password = _read_password(password_stdin)
    with _services() as svc:
        changed = _run(lambda: users.update_user(svc, tenant_id, username, password=password))
    _show_user(changed, as_json, f"new password set for {username!r}; its tokens are revoked")


@user.command("delete")
@click.argument("tenant_id")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(tenant_id: str, username: str, yes: bool) -> None:
    """Delete USERNAME from TENANT_ID after revoking every token it holds."""
    if not yes:
        click.confirm(f"Delete user {username!r} of {tenant_id} and revoke its tokens?", abort=True)
    with _services() as svc:
        _run(lambda: users.delete_user(svc, tenant_id, username))
    click.echo(f"deleted user {username!r} from {tenant_id}")


@main.group()
def client() -> None:
    """Register OAuth clients of a tenant and rotate their secrets."""


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
@_json_option
def client_add(
    *, tenant_id: str, name: str, scopes: Sequence[str], grants: Sequence[str], as_json: bool
) -> None:
    """Register a client of TENANT_ID and print its id and secret (shown only this once)."""
    with _services() as svc:
        made, secret = _run(lambda: clients.create_client(svc, tenant_id, name, scopes, grants))
    _show_client(made, as_json, f"registered client {made.client_id} in {tenant_id}", secret)


@client.command("list")
@click.argument("tenant_id")
@_paged
@_json_option
def client_list(
    tenant_id: str, limit: int, cursor: str | None, fetch_all: bool, as_json: bool
) -> None:
    """List the clients of TENANT_ID ordered by client id (never their secrets)."""
    items: list[Client] = []
    with _services() as svc:
        while True:
            page = _run(partial(clients.list_clients, svc, tenant_id, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_client_dict(c) for c in items], "next_cursor": cursor}))
        return
    _table(CLIENT_COLUMNS, [_row(_client_dict(c), CLIENT_COLUMNS) for c in items])
    click.echo(
        f"{len(items)} client(s)" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@client.command("show")
@click.argument("tenant_id")
@click.argument("client_id")
@_json_option
def client_show(tenant_id: str, client_id: str, as_json: bool) -> None:
    """Show one client (never its secret)."""
    with _services() as svc:
        found = _run(lambda: clients.get_client(svc, tenant_id, client_id))
    _show_client(found, as_json)


@client.command("rotate")
@click.argument("tenant_id")
@click.argument("client_id")
@_json_option
def client_rotate(tenant_id: str, client_id: str, as_json: bool) -> None:
    """Give CLIENT_ID a new secret (shown only this once); the old secret stops working."""
    with _services() as svc:
        rotated, secret = _run(lambda: clients.rotate_client_secret(svc, tenant_id, client_id))
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
    with _services() as svc:
        _run(lambda: clients.delete_client(svc, tenant_id, client_id))
    click.echo(f"deleted client {client_id} from {tenant_id}")


def _read_password(from_stdin: bool) -> str:
    """Return the new password from stdin's first line or a hidden, confirmed prompt."""
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("expected the password on the first line of standard input")
    return password


def _user_dict(u: User) -> dict[str, Any]:
    return {
        "tenant_id": u.tenant_id,
        "username": u.username,
        "status": u.status.value,
        "claims": u.claims,
        "created_at": u.created_at.isoformat(),
        "updated_at": u.updated_at.isoformat(),
    }


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


def _row(d: dict[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(_cell(d[c]) for c in columns)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return _fmt(value)


def _show_user(u: User, as_json: bool, summary: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(_user_dict(u)))
        return
    _table(("field", "value"), [(k, _cell(v)) for k, v in _user_dict(u).items()])
    if summary:
        click.echo(summary, err=True)


def _show_client(
    c: Client, as_json: bool, summary: str | None = None, secret: str | None = None
) -> None:
    shown = _client_dict(c) | ({"client_secret": secret} if secret else {})
    if as_json:
        click.echo(json.dumps(shown))
    else:
        _table(("field", "value"), [(k, _cell(v)) for k, v in shown.items()])
    if summary:
        click.echo(summary, err=True)
    if secret:
        click.echo(ONE_TIME_NOTICE, err=True)


# --------------------------------------------------------------------------- helpers


def _settings(*, serving: str | None = None) -> Settings:
    """Load settings; in embedded mode create the state directory and secrets first.

    A newly generated admin token is shown once, by whichever command generated it: on stdout
    with the served base URL for ``serve`` (``serving``), on stderr for other commands (their
    stdout stays clean for scripts and ``--json``).
    """
    env = os.environ
    if is_embedded(env):
        path = Path(env.get(PREFIX + "STATE_DIR") or default_state_dir(env))
        made = embedded.ensure_state(
            path,
            admin_token_given=bool(env.get(PREFIX + "ADMIN_TOKEN")),
            master_key_given=bool(env.get(PREFIX + "MASTER_KEY")),
        )
        if embedded.ADMIN_TOKEN_FILE in made:
            token = embedded.read_admin_token(path)
            _announce_admin_token(token, path, serving or "http://127.0.0.1:8000", serving is None)
    try:
        return Settings.from_env(env)
    except ConfigurationError as exc:
        _fail("invalid configuration:\n  - " + "\n  - ".join(exc.problems))


def _announce_admin_token(admin_token: str, state_dir: Path, base_url: str, err: bool) -> None:
    line = "=" * 72
    lines = [
        line,
        "Embedded mode: a new admin token was generated. It is shown only this once",
        f"(kept, mode 0600, in {state_dir}/admin.token):\n",
        f"  {admin_token}\n",
        "Try it (with `tenantauth serve` running):",
        f"  curl -s -H 'Authorization: Bearer {admin_token}' {base_url}/v1/admin/tenants",
        line,
    ]
    for text in lines:
        click.echo(text, err=err)


@contextmanager
def _services(settings: Settings | None = None) -> Iterator[Services]:
    settings = settings or _settings()
    svc = build_services(settings)
    try:
        if settings.auto_migrate:
            _run(svc.storage.migrate)  # type: ignore[attr-defined]
        yield svc
    finally:
        svc.close()


def _run(action: Callable[[], Any]) -> Any:
    """Run a use case, turning domain errors into a clear message and exit status 1."""
    try:
        return action()
    except TenantAuthError as exc:
        _fail(exc.detail)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _read_secret() -> str:
    secret = sys.stdin.readline().strip()
    if not secret:
        _fail("expected a base64url secret on standard input")
    return secret


def _parse_claim(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        _fail(f"--claim must be NAME=JSON, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw  # a bare word is a string claim


def _mode(settings: Settings) -> str:
    if settings.embedded:
        return f"embedded mode (SQLite in {settings.state_dir}, no Redis)"
    cache = "Redis" if settings.redis_url else "no Redis"
    return f"production mode (PostgreSQL, {cache})"


def _tenant_dict(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "status": t.status.value,
        "key_version": t.key_version,
        "access_token_ttl": t.access_token_ttl,
        "max_token_ttl": t.max_token_ttl,
        "created_at": t.created_at.isoformat(),
        "updated_at": t.updated_at.isoformat(),
        "rotated_at": t.rotated_at.isoformat(),
    }


def _tenant_row(t: Tenant) -> tuple[str, ...]:
    d = _tenant_dict(t)
    return tuple(_fmt(d[c]) for c in TENANT_COLUMNS)


def _fmt(value: Any) -> str:
    if isinstance(value, str) and value[:4].isdigit() and "T" in value:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _show_tenant(t: Tenant, as_json: bool, summary: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(_tenant_dict(t)))
        return
    _table(("field", "value"), [(k, _fmt(v)) for k, v in _tenant_dict(t).items()])
    if summary:
        click.echo(summary, err=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns under a header."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
