"""Admin commands leave audit entries like their HTTP twins; `tenantauth audit list` reads them.

Every changing command runs on both backends (embedded SQLite, PostgreSQL + Redis); the
listing, actor naming and failure paths run embedded.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from tenantauth.cli.admin import Rfc3339Time
from tests.integration.test_cli import (  # noqa: F401 - embedded and production are fixtures
    embedded,
    ok,
    ok_json,
    production,
    run,
)

PASSWORD = "correct horse battery staple\n"
FIELDS = ("tenant_id", "action", "target", "outcome")


@pytest.fixture(params=["embedded", "production"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test in embedded mode (SQLite) and in production mode (PostgreSQL + Redis)."""
    request.getfixturevalue(request.param)
    return str(request.param)


def entries(*args: str) -> list[dict[str, Any]]:
    """Return every audit entry (oldest first), filtered by ``args`` options."""
    listing = ok_json("audit", "list", "--all", *args)
    assert listing["next_cursor"] is None
    return list(reversed(listing["items"]))


def summary(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Return (tenant, action, target, outcome) of each entry."""
    return [tuple(e[f] for f in FIELDS) for e in items]


def test_every_changing_command_writes_one_entry(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenant, user, client, token, key and resource server commands each append one entry,
    named as the API names them, with actor cli:<OS user>; reads and token issuing append
    none; the chain verifies."""
    monkeypatch.setenv("LOGNAME", "ops-anna")
    ok("tenant", "create", "acme", "--name", "Acme")
    ok("tenant", "rotate", "acme")
    ok("tenant", "suspend", "acme")
    ok("tenant", "resume", "acme")
    ok("user", "add", "acme", "alice", "--password-stdin", input=PASSWORD)
    ok("user", "disable", "acme", "alice")
    ok("user", "enable", "acme", "alice")
    ok("user", "passwd", "acme", "alice", "--password-stdin", input=PASSWORD)
    ok("user", "revoke", "acme", "alice")
    ok("user", "delete", "acme", "alice", "--yes")
    client_id = ok_json("client", "add", "acme", "--name", "c", "--grant", "client_credentials")[
        "client_id"
    ]
    ok("client", "rotate", "acme", client_id)
    ok("client", "delete", "acme", client_id, "--yes")
    token = ok("token", "issue", "acme", "--sub", "bob").stdout.strip()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    ok("token", "revoke", token)
    key_id = ok_json("admin-keys", "create", "--name", "k", "--tenant", "acme")["id"]
    ok("admin-keys", "revoke", key_id)
    server_id = ok_json("resource-server", "add", "--name", "r", "--tenant", "acme")["id"]
    ok("resource-server", "rotate", server_id)
    ok("resource-server", "list")
    ok("resource-server", "delete", server_id, "--yes")
    ok("tenant", "show", "acme")
    ok("user", "list", "acme")
    ok("tenant", "delete", "acme", "--yes")
    items = entries()
    assert summary(items) == [
        ("acme", "tenant.create", "acme", "success"),
        ("acme", "tenant.rotate", None, "success"),
        ("acme", "tenant.update", None, "success"),
        ("acme", "tenant.update", None, "success"),
        ("acme", "user.create", "alice", "success"),
        ("acme", "user.update", "alice", "success"),
        ("acme", "user.update", "alice", "success"),
        ("acme", "user.update", "alice", "success"),
        ("acme", "user.revoke_tokens", "alice", "success"),
        ("acme", "user.delete", "alice", "success"),
        ("acme", "client.create", client_id, "success"),
        ("acme", "client.rotate_secret", client_id, "success"),
        ("acme", "client.delete", client_id, "success"),
        ("acme", "token.revoke", jti, "success"),
        ("acme", "admin_key.create", key_id, "success"),
        ("acme", "admin_key.revoke", key_id, "success"),
        (None, "resource_server.create", server_id, "success"),
        (None, "resource_server.rotate_secret", server_id, "success"),
        (None, "resource_server.delete", server_id, "success"),
        ("acme", "tenant.delete", None, "success"),
    ]
    assert {e["actor"] for e in items} == {"cli:ops-anna"}
    assert all(e["request_id"].startswith("cli-") for e in items)
    assert len({e["request_id"] for e in items}) == len(items)
    assert ok("audit", "verify").stdout.startswith(f"audit chain intact: {len(items)} entries")


def test_refused_commands_record_the_api_status(mode: str) -> None:
    """A command the domain refuses exits 1 and records the status the API answers for the
    same error (409 conflict, 404 unknown tenant, 422 invalid input); the control character
    of the refused username is stored percent-encoded."""
    ok("tenant", "create", "acme", "--name", "Acme")
    assert run("tenant", "create", "acme", "--name", "Again").exit_code == 1
    assert run("tenant", "rotate", "ghost").exit_code == 1
    assert run("user", "add", "acme", "bad\x01name", "--password-stdin", input=PASSWORD).exit_code
    assert run("client", "delete", "acme", "nope", "--yes").exit_code == 1
    assert summary(entries())[1:] == [
        ("acme", "tenant.create", "acme", "409"),
        ("ghost", "tenant.rotate", None, "404"),
        ("acme", "user.create", "bad%01name", "422"),
        ("acme", "client.delete", "nope", "404"),
    ]


@pytest.mark.usefixtures("embedded")
def test_an_invalid_token_revocation_names_no_target() -> None:
    """Revoking something that is not a valid token exits 1 and records a success without a
    tenant or target: the token's own claims are not trusted when it did not verify."""
    forged = jwt.encode({"jti": "forged-jti"}, "k" * 32, headers={"kid": "acme"})
    assert run("token", "revoke", forged).exit_code == 1
    assert summary(entries()) == [(None, "token.revoke", None, "success")]


@pytest.mark.usefixtures("embedded")
def test_actor_and_cells_are_safe_to_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control characters from the OS user name become '?' in the actor, and those of a
    recorded target (a refused username) are stored percent-encoded, so listing the log
    cannot send escape sequences to the terminal."""
    monkeypatch.setenv("LOGNAME", "ro ot\x1b[31m")
    ok("tenant", "create", "acme", "--name", "Acme")
    run("user", "add", "acme", "eve\x1b]0;owned\x07", "--password-stdin", input=PASSWORD)
    assert [e["actor"] for e in entries()] == ["cli:ro?ot??31m"] * 2
    table = ok("audit", "list").stdout
    assert "\x1b" not in table and "\x07" not in table
    assert "eve%1B]0;owned%07" in table


@pytest.mark.usefixtures("embedded")
def test_audit_list_filters_pages_and_prints_a_table() -> None:
    """--tenant/--action/--actor/--since/--until filter; --limit pages with a printed cursor;
    the table shows '-' for an empty target, never 'None'."""
    for tenant_id in ("acme", "beta"):
        ok("tenant", "create", tenant_id, "--name", tenant_id)
        ok("tenant", "rotate", tenant_id)
    assert summary(entries("--tenant", "beta")) == [
        ("beta", "tenant.create", "beta", "success"),
        ("beta", "tenant.rotate", None, "success"),
    ]
    assert [e["tenant_id"] for e in entries("--action", "tenant.rotate")] == ["acme", "beta"]
    assert entries("--actor", "someone-else") == []
    assert entries("--since", "2999-01-01T00:00:00Z") == []
    assert len(entries("--until", "2999-01-01T00:00:00")) == 4  # no offset: UTC
    first = ok("audit", "list", "--limit", "3")
    lines = first.stdout.splitlines()
    assert lines[0].split() == [
        "seq",
        "occurred_at",
        "actor",
        "tenant_id",
        "action",
        "target",
        "outcome",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2"]
    assert "None" not in first.stdout
    assert lines[1].split()[-2:] == ["-", "success"]  # beta's rotation has no target
    cursor = first.stderr.split("--cursor ")[1].split()[0]
    rest = ok_json("audit", "list", "--limit", "3", "--cursor", cursor)
    assert ([e["seq"] for e in rest["items"]], rest["next_cursor"]) == ([1], None)


def test_a_time_without_offset_is_utc() -> None:
    """--since/--until without an offset mean UTC, not the machine's local time."""
    parsed = Rfc3339Time().convert("2026-01-31T12:00:00", None, None)
    assert parsed == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert Rfc3339Time().convert("2026-01-31T12:00:00+02:00", None, None).hour == 12


@pytest.mark.usefixtures("embedded")
def test_audit_list_refuses_bad_input() -> None:
    """A malformed time is a usage error (exit 2); a forged cursor is one clean error line."""
    result = run("audit", "list", "--since", "yesterday")
    assert result.exit_code == 2 and "RFC 3339" in result.stderr
    result = run("audit", "list", "--cursor", "!!")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


@pytest.mark.usefixtures("embedded")
def test_tables_show_a_dash_for_unset_dates() -> None:
    """admin-keys list shows '-' for a key never used, not revoked and without expiry."""
    ok("admin-keys", "create", "--name", "ops")
    lines = ok("admin-keys", "list").stdout.splitlines()
    assert lines[1].split()[-5:] == ["global", "-", "-", "-", "-"]
    assert "None" not in ok("admin-keys", "list").stdout


def test_a_lost_audit_write_does_not_undo_the_command(embedded: Path) -> None:  # noqa: F811
    """When the entry cannot be written, the command still succeeds (its change committed),
    and says on stderr that the entry was NOT recorded."""
    ok("tenant", "create", "acme", "--name", "Acme")
    with sqlite3.connect(embedded / "tenantauth.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
        )
    result = run("tenant", "rotate", "acme", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["key_version"] == 2
    assert "audit entry of this command was NOT recorded" in result.stderr
