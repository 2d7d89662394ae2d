"""`tenantauth user …` and `tenantauth client …` in embedded and in production mode."""

from __future__ import annotations

import json

import pytest

from tenantauth.bootstrap import build_services
from tenantauth.domain.oauth.clients import get_client
from tenantauth.settings import Settings
from tests.integration.test_cli import (  # noqa: F401 - embedded/production are fixtures
    assert_clean_error,
    embedded,
    ok,
    ok_json,
    production,
    run,
)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new passphrase"


@pytest.fixture(params=["embedded", "production"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test once in embedded mode and once on PostgreSQL + Redis."""
    request.getfixturevalue(request.param)
    ok("tenant", "create", "acme", "--name", "Acme")
    return str(request.param)


def verifies(token: str) -> bool:
    """Return whether `tenantauth token verify` accepts ``token``."""
    return run("token", "verify", token).exit_code == 0


def token_for(username: str) -> str:
    """Mint a token for ``username`` of acme with the CLI."""
    return ok("token", "issue", "acme", "--sub", username).stdout.strip()


# --------------------------------------------------------------------------- users


@pytest.mark.usefixtures("mode")
def test_user_lifecycle() -> None:
    """add (stdin), list, show, disable, enable, passwd and delete --yes work with --json."""
    added = json.loads(
        ok(
            "user",
            "add",
            "acme",
            "alice",
            "--password-stdin",
            "--claim",
            'plan="pro"',
            "--claim",
            "level=3",
            "--json",
            input=PASSWORD + "\n",
        ).stdout
    )
    assert (added["username"], added["status"]) == ("alice", "active")
    assert added["claims"] == {"plan": "pro", "level": 3}
    assert ok_json("user", "show", "acme", "alice") == added
    assert ok_json("user", "list", "acme") == {"items": [added], "next_cursor": None}
    token = token_for("alice")
    assert verifies(token)
    assert ok_json("user", "disable", "acme", "alice")["status"] == "disabled"
    assert not verifies(token)
    assert ok_json("user", "enable", "acme", "alice")["status"] == "active"
    fresh = token_for("alice")
    assert verifies(fresh)
    assert not verifies(token)
    ok("user", "passwd", "acme", "alice", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert not verifies(fresh)
    result = ok("user", "delete", "acme", "alice", "--yes")
    assert "deleted user 'alice' from acme" in result.stdout
    assert ok_json("user", "list", "acme")["items"] == []


@pytest.mark.usefixtures("mode")
def test_user_add_prompts_hidden_and_never_shows_the_password() -> None:
    """Without --password-stdin the password is asked twice, hidden; no output contains it."""
    result = ok("user", "add", "acme", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "Password" in result.output
    assert PASSWORD not in result.output
    assert "argon2" not in result.output
    assert "created user 'bob' in acme" in result.stderr
    listing = ok("user", "list", "acme")
    assert listing.stdout.splitlines()[0].split() == ["username", "status", "claims", "updated_at"]
    assert listing.stdout.splitlines()[1].split()[:3] == ["bob", "active", "-"]


@pytest.mark.usefixtures("mode")
def test_password_is_never_an_argument() -> None:
    """There is no --password option: a password on the command line is a usage error."""
    result = run("user", "add", "acme", "carol", "--password", PASSWORD)
    assert result.exit_code == 2
    assert ok_json("user", "list", "acme")["items"] == []


@pytest.mark.parametrize(
    ("password", "fragment"),
    [("short", "at least 12 characters"), ("", "expected the password")],
    ids=["weak", "empty"],
)
@pytest.mark.usefixtures("mode")
def test_weak_or_missing_password_is_a_clean_error(password: str, fragment: str) -> None:
    """A weak or missing password exits 1 with one error line naming the problem."""
    result = run("user", "add", "acme", "carol", "--password-stdin", input=password + "\n")
    assert_clean_error(result, fragment)
    if password:
        assert password not in result.stderr


@pytest.mark.usefixtures("mode")
def test_user_errors_are_clean() -> None:
    """Duplicates, unknown tenants and unknown users exit 1 with a clear message."""
    ok("user", "add", "acme", "dave", "--password-stdin", input=PASSWORD + "\n")
    dup = run("user", "add", "acme", "dave", "--password-stdin", input=PASSWORD + "\n")
    assert_clean_error(dup, "already exists")
    assert_clean_error(run("user", "list", "nobody"), "does not exist")
    assert_clean_error(run("user", "disable", "acme", "ghost"), "'ghost' does not exist")
    assert_clean_error(run("user", "delete", "acme", "ghost", "--yes"), "does not exist")
    bad_claim = run(
        "user", "add", "acme", "erin", "--password-stdin", "--claim", "sub=x", input=PASSWORD
    )
    assert_clean_error(bad_claim, "reserved claims: sub")


@pytest.mark.usefixtures("mode")
def test_user_delete_asks_for_confirmation() -> None:
    """Without --yes, delete asks; answering no keeps the user."""
    ok("user", "add", "acme", "frank", "--password-stdin", input=PASSWORD + "\n")
    result = run("user", "delete", "acme", "frank", input="n\n")
    assert result.exit_code == 1
    assert ok_json("user", "show", "acme", "frank")["username"] == "frank"


@pytest.mark.usefixtures("mode")
def test_user_list_pages() -> None:
    """--limit pages with a cursor; --all follows every cursor."""
    for name in ("u1", "u2", "u3"):
        ok("user", "add", "acme", name, "--password-stdin", input=PASSWORD + "\n")
    page = ok_json("user", "list", "acme", "--limit", "2")
    assert [u["username"] for u in page["items"]] == ["u1", "u2"]
    rest = ok_json("user", "list", "acme", "--limit", "2", "--cursor", page["next_cursor"])
    assert [u["username"] for u in rest["items"]] == ["u3"]
    every = ok_json("user", "list", "acme", "--limit", "1", "--all")
    assert [u["username"] for u in every["items"]] == ["u1", "u2", "u3"]


# --------------------------------------------------------------------------- clients


@pytest.mark.usefixtures("mode")
def test_client_secret_is_shown_once_and_rotation_replaces_it() -> None:
    """add prints the id and secret with a one-time warning; list/show never show it; rotate
    prints a new secret and the old one stops verifying."""
    result = ok(
        "client",
        "add",
        "acme",
        "--name",
        "Billing",
        "--scope",
        "read",
        "--scope",
        "orders:write",
        "--grant",
        "client_credentials",
        "--grant",
        "refresh_token",
    )
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines()[1:])
    client_id, secret = fields["client_id"], fields["client_secret"]
    assert client_id.startswith("tac_")
    assert secret.startswith("tas_")
    assert fields["scopes"] == "read orders:write"
    assert "will not be shown again" in result.stderr
    shown = ok_json("client", "show", "acme", client_id)
    assert "client_secret" not in shown
    assert shown["grant_types"] == ["client_credentials", "refresh_token"]
    listing = ok("client", "list", "acme")
    assert client_id in listing.stdout
    assert "tas_" not in listing.output
    rotated = ok_json("client", "rotate", "acme", client_id)
    assert rotated["client_secret"].startswith("tas_")
    assert rotated["client_secret"] != secret
    svc = build_services(Settings.from_env())
    try:
        stored = get_client(svc, "acme", client_id).secret_hash
        assert svc.client_secrets.verify(rotated["client_secret"], stored)
        assert not svc.client_secrets.verify(secret, stored)
    finally:
        svc.close()


@pytest.mark.usefixtures("mode")
def test_client_add_json_and_delete() -> None:
    """add --json carries client_secret once; delete --yes removes the client."""
    made = json.loads(
        ok("client", "add", "acme", "--name", "A", "--grant", "password", "--json").stdout
    )
    assert made["scopes"] == []
    assert made["client_secret"].startswith("tas_")
    assert [c["client_id"] for c in ok_json("client", "list", "acme")["items"]] == [
        made["client_id"]
    ]
    assert "deleted client" in ok("client", "delete", "acme", made["client_id"], "--yes").stdout
    assert_clean_error(run("client", "show", "acme", made["client_id"]), "does not exist")
    assert_clean_error(run("client", "rotate", "acme", made["client_id"]), "does not exist")


@pytest.mark.usefixtures("mode")
def test_client_errors_are_clean() -> None:
    """Bad scopes and unknown tenants exit 1 with a clear message; bad grants are usage errors."""
    bad_scope = run("client", "add", "acme", "--name", "A", "--scope", "a b", "--grant", "password")
    assert_clean_error(bad_scope, "not a scope token")
    assert_clean_error(
        run("client", "add", "nobody", "--name", "A", "--grant", "password"), "does not exist"
    )
    assert run("client", "add", "acme", "--name", "A", "--grant", "implicit").exit_code == 2
    assert run("client", "add", "acme", "--name", "A").exit_code == 2
    assert ok_json("client", "list", "acme")["items"] == []
