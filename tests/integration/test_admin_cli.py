"""`tenantauth admin-keys …` and `tenantauth audit verify` (embedded mode: SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.integration.test_cli import (  # noqa: F401 - embedded is a fixture
    embedded,
    ok,
    ok_json,
    run,
)


@pytest.mark.usefixtures("embedded")
def test_admin_key_lifecycle_is_audited() -> None:
    """create prints the key once; list shows no secret; revoke marks it; both are audited
    with actor cli and the chain verifies."""
    ok("tenant", "create", "acme", "--name", "Acme")
    made = ok_json("admin-keys", "create", "--name", "ops", "--tenant", "acme")
    assert made["key"].startswith(f"ta_adm_{made['id']}_")
    assert (made["scope"], made["tenant_id"]) == ("tenant", "acme")
    listing = ok("admin-keys", "list", "--json").stdout
    assert made["key"].removeprefix(made["prefix"]) not in listing
    assert [k["id"] for k in json.loads(listing)["items"]] == [made["id"]]
    revoked = ok_json("admin-keys", "revoke", made["id"])
    assert revoked["revoked_at"] is not None
    verified = ok("audit", "verify")
    assert verified.stdout.startswith("audit chain intact: 3 entries; head 3 ")  # + tenant


@pytest.mark.usefixtures("embedded")
def test_errors_are_clean() -> None:
    """Unknown tenants and key ids are one-line errors with exit status 1."""
    result = run("admin-keys", "create", "--name", "x", "--tenant", "ghost")
    assert (result.exit_code, result.stderr.startswith("error: ")) == (1, True)
    result = run("admin-keys", "revoke", "ffffffffffffffff")
    assert (result.exit_code, "does not exist" in result.stderr) == (1, True)


def test_audit_verify_fails_on_a_tampered_chain(embedded: Path) -> None:  # noqa: F811
    """After a row is edited behind the service's back, verify exits 1 naming the entry."""
    ok("admin-keys", "create", "--name", "a")
    ok("admin-keys", "create", "--name", "b")
    with sqlite3.connect(embedded / "tenantauth.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'bootstrap' WHERE seq = 1")
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at entry 1" in result.stderr and "edited" in result.stderr


def test_audit_verify_against_a_published_head(embedded: Path) -> None:  # noqa: F811
    """`audit verify --head SEQ:HASH` passes on the intact chain, exits 1 once the newest entry
    is cut off (which verify alone cannot see), and refuses a malformed head (exit 2)."""
    ok("admin-keys", "create", "--name", "a")
    ok("admin-keys", "create", "--name", "b")
    _, seq, digest = ok("audit", "verify").stdout.rsplit(" ", 2)
    head = f"{seq}:{digest.strip()}"
    assert "intact" in ok("audit", "verify", "--head", head).stdout
    with sqlite3.connect(embedded / "tenantauth.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    assert "intact" in ok("audit", "verify").stdout
    result = run("audit", "verify", "--head", head)
    assert result.exit_code == 1
    assert "BROKEN at entry 2" in result.stderr and "truncated" in result.stderr
    assert run("audit", "verify", "--head", "2:abc").exit_code == 2
