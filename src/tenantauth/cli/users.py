"""``tenantauth user …``: add, list, show, disable, enable, passwd, delete and revoke users."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import click

from tenantauth.cli.auditing import Action, run_audited
from tenantauth.cli.common import (
    cell,
    fail,
    json_option,
    paged,
    parse_claim,
    row,
    run,
    services,
    table,
)
from tenantauth.cli.groups import user
from tenantauth.domain import revocations, users
from tenantauth.domain.models import User, UserStatus

USER_COLUMNS = ("username", "status", "claims", "updated_at")
_password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (default: hidden prompt).",
)


@user.command("revoke")
@click.argument("tenant_id")
@click.argument("username")
@json_option
def user_revoke(tenant_id: str, username: str, as_json: bool) -> None:
    """Log USERNAME out everywhere: every token of that subject issued until now is rejected
    by every verifier when this returns; tokens issued afterwards verify."""
    with services() as svc:
        done = run_audited(
            svc,
            Action("user.revoke_tokens", tenant_id, username),
            lambda: revocations.revoke_subject(svc, tenant_id, username),
        )
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


@user.command("add")
@click.argument("tenant_id")
@click.argument("username")
@_password_stdin_option
@click.option(
    "--claim", "claims", multiple=True, metavar="NAME=JSON", help="Custom claim; repeatable."
)
@json_option
def user_add(
    *, tenant_id: str, username: str, password_stdin: bool, claims: Sequence[str], as_json: bool
) -> None:
    """Create USERNAME in TENANT_ID. The password comes from standard input or a hidden
    prompt, never from the command line (argv is visible to other users of the machine)."""
    extra = dict(parse_claim(c) for c in claims)
    password = _read_password(password_stdin)
    with services() as svc:
        created = run_audited(
            svc,
            Action("user.create", tenant_id, username),
            lambda: users.create_user(svc, tenant_id, username, password, extra),
        )
    _show_user(created, as_json, f"created user {username!r} in {tenant_id}")


@user.command("list")
@click.argument("tenant_id")
@paged
@json_option
def user_list(
    tenant_id: str, limit: int, cursor: str | None, fetch_all: bool, as_json: bool
) -> None:
    """List the users of TENANT_ID ordered by username."""
    items: list[User] = []
    with services() as svc:
        while True:
            page = run(partial(users.list_users, svc, tenant_id, cursor, limit))
            items.extend(page.items)
            cursor = page.next_cursor
            if not (fetch_all and cursor):
                break
    if as_json:
        click.echo(json.dumps({"items": [_user_dict(u) for u in items], "next_cursor": cursor}))
        return
    table(USER_COLUMNS, [row(_user_dict(u), USER_COLUMNS) for u in items])
    click.echo(
        f"{len(items)} user(s)" + (f"; more with --cursor {cursor}" if cursor else ""), err=True
    )


@user.command("show")
@click.argument("tenant_id")
@click.argument("username")
@json_option
def user_show(tenant_id: str, username: str, as_json: bool) -> None:
    """Show one user (never its password hash)."""
    with services() as svc:
        found = run(lambda: users.get_user(svc, tenant_id, username))
    _show_user(found, as_json)


def _user_status_command(name: str, status: UserStatus, summary: str, help_text: str) -> None:
    @user.command(name, help=help_text)
    @click.argument("tenant_id")
    @click.argument("username")
    @json_option
    def command(tenant_id: str, username: str, as_json: bool) -> None:
        with services() as svc:
            changed = run_audited(
                svc,
                Action("user.update", tenant_id, username),
                lambda: users.update_user(svc, tenant_id, username, status=status),
            )
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
@json_option
def user_passwd(tenant_id: str, username: str, password_stdin: bool, as_json: bool) -> None:
    """Reset the password of USERNAME; every token it holds is revoked."""
    password = _read_password(password_stdin)
    with services() as svc:
        changed = run_audited(
            svc,
            Action("user.update", tenant_id, username),
            lambda: users.update_user(svc, tenant_id, username, password=password),
        )
    _show_user(changed, as_json, f"new password set for {username!r}; its tokens are revoked")


@user.command("delete")
@click.argument("tenant_id")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(tenant_id: str, username: str, yes: bool) -> None:
    """Delete USERNAME from TENANT_ID after revoking every token it holds."""
    if not yes:
        click.confirm(f"Delete user {username!r} of {tenant_id} and revoke its tokens?", abort=True)
    with services() as svc:
        run_audited(
            svc,
            Action("user.delete", tenant_id, username),
            lambda: users.delete_user(svc, tenant_id, username),
        )
    click.echo(f"deleted user {username!r} from {tenant_id}")


def _read_password(from_stdin: bool) -> str:
    """Return the new password from stdin's first line or a hidden, confirmed prompt."""
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("expected the password on the first line of standard input")
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


def _show_user(u: User, as_json: bool, summary: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(_user_dict(u)))
        return
    table(("field", "value"), [(k, cell(v)) for k, v in _user_dict(u).items()])
    if summary:
        click.echo(summary, err=True)
