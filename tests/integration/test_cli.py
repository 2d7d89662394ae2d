"""The `tenantauth` command in embedded mode (SQLite state dir) and production mode (PG + Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jwt
import pytest
from click.testing import CliRunner, Result

from tenantauth import __version__
from tenantauth.cli import main
from tenantauth.embedded import ensure_state
from tenantauth.settings import PREFIX, SETTINGS
from tests.integration.helpers import new_secret
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY_B64, tenant_issuer

REQUIRED_IN_PRODUCTION = ("TENANTAUTH_MASTER_KEY", "TENANTAUTH_ADMIN_TOKEN", "TENANTAUTH_ISSUER")


def _commands(
    command: click.Command = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands())


def run(*args: str, input: str | None = None) -> Result:
    """Invoke `tenantauth ARGS` in-process with the (monkeypatched) environment."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> Result:
    """Invoke and assert exit status 0."""
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def ok_json(*args: str) -> Any:
    """Invoke with --json, assert exit 0 and return the parsed stdout."""
    return json.loads(ok(*args, "--json").stdout)


def assert_clean_error(result: Result, *fragments: str) -> None:
    """Exit 1 with one 'error: ...' on stderr naming every fragment, nothing on stdout."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Embedded mode: no database URL, state in a fresh directory (secrets already made, so
    the one-time admin token banner does not mix into the output under test)."""
    state = tmp_path / "state"
    monkeypatch.setenv("TENANTAUTH_STATE_DIR", str(state))
    ensure_state(state, admin_token_given=False, master_key_given=False)
    return state


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, pg_url: str, redis_url: str) -> None:
    """Production mode on the test PostgreSQL and Redis, with every required secret."""
    for name, value in {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "MASTER_KEY": MASTER_KEY_B64,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "ISSUER": ISSUER,
        "AUTO_MIGRATE": "true",
    }.items():
        monkeypatch.setenv(PREFIX + name, value)


# --------------------------------------------------------------------------- embedded mode


@pytest.mark.usefixtures("embedded")
def test_tenant_lifecycle_with_json_output() -> None:
    """create, list, show, rotate, suspend, resume and delete --yes work and --json parses."""
    created = ok_json("tenant", "create", "acme", "--name", "Acme Corp")
    assert (created["id"], created["name"], created["status"]) == ("acme", "Acme Corp", "active")
    assert created["key_version"] == 1
    assert "secret" not in json.dumps(created).lower()
    ok_json("tenant", "create", "beta", "--name", "Beta", "--access-token-ttl", "60")
    listing = ok_json("tenant", "list")
    assert [t["id"] for t in listing["items"]] == ["acme", "beta"]
    assert listing["next_cursor"] is None
    page = ok_json("tenant", "list", "--limit", "1")
    assert [t["id"] for t in page["items"]] == ["acme"]
    rest = ok_json("tenant", "list", "--limit", "1", "--cursor", page["next_cursor"])
    assert [t["id"] for t in rest["items"]] == ["beta"]
    assert [t["id"] for t in ok_json("tenant", "list", "--limit", "1", "--all")["items"]] == [
        "acme",
        "beta",
    ]
    assert ok_json("tenant", "show", "beta")["access_token_ttl"] == 60
    assert ok_json("tenant", "rotate", "acme")["key_version"] == 2
    assert ok_json("tenant", "suspend", "acme")["status"] == "suspended"
    assert ok_json("tenant", "resume", "acme")["status"] == "active"
    result = ok("tenant", "delete", "acme", "--yes")
    assert "deleted tenant acme" in result.output
    assert [t["id"] for t in ok_json("tenant", "list")["items"]] == ["beta"]


@pytest.mark.usefixtures("embedded")
def test_human_output_is_an_aligned_table() -> None:
    """Without --json, show prints aligned field/value rows and the summary goes to stderr."""
    result = ok("tenant", "create", "acme", "--name", "Acme")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["field", "value"]
    column = lines[0].index("value")
    assert all(line[column - 2 : column] == "  " for line in lines[1:])
    assert {line.split()[0] for line in lines[1:]} >= {"id", "name", "status", "alg", "kid"}
    assert result.stderr.strip() == "created tenant acme (HS256, kid acme)"
    listing = ok("tenant", "list")
    assert listing.stdout.splitlines()[0].split() == [
        "id",
        "name",
        "status",
        "alg",
        "kid",
        "key_version",
        "rotated_at",
    ]
    assert listing.stderr.strip() == "1 tenant(s)"


@pytest.mark.usefixtures("embedded")
def test_issue_then_verify_until_rotated() -> None:
    """token issue + token verify exit 0 with VALID; after rotate verify exits 1 with INVALID."""
    ok("tenant", "create", "acme", "--name", "Acme")
    issued = ok(
        "token", "issue", "acme", "--sub", "user-1", "--scope", "read", "--claim", "role=admin"
    )
    token = issued.stdout.strip()
    assert token.count(".") == 2
    assert "expires in 900 s" in issued.stderr
    verdict = ok("token", "verify", token)
    assert verdict.stdout.startswith("VALID: tenant acme, subject user-1")
    assert '"admin"' in verdict.stdout
    claims = ok_json("token", "verify", token)
    assert claims["active"] is True
    assert (claims["claims"]["scope"], claims["claims"]["role"]) == ("read", "admin")
    assert ok("token", "verify", "-", input=token + "\n").stdout.startswith("VALID")
    ok("tenant", "rotate", "acme")
    rejected = run("token", "verify", token)
    assert rejected.exit_code == 1
    assert rejected.stdout.startswith("INVALID")
    rejected_json = run("token", "verify", token, "--json")
    assert (rejected_json.exit_code, json.loads(rejected_json.stdout)) == (1, {"active": False})
    fresh = ok("token", "issue", "acme", "--sub", "user-1").stdout.strip()
    assert ok("token", "verify", fresh).stdout.startswith("VALID")


@pytest.mark.usefixtures("embedded")
def test_verify_checks_the_audience() -> None:
    """token verify --audience accepts a listed audience and rejects another with exit 1."""
    ok("tenant", "create", "acme", "--name", "Acme")
    token = ok("token", "issue", "acme", "--sub", "u", "--aud", "api", "--aud", "web").stdout
    assert ok("token", "verify", token.strip(), "--audience", "web").exit_code == 0
    assert run("token", "verify", token.strip(), "--audience", "other").exit_code == 1


@pytest.mark.usefixtures("embedded")
def test_secret_stdin_imports_without_echoing() -> None:
    """create --secret-stdin imports the secret (tokens verify with it) and never prints it."""
    raw, text = new_secret()
    created = ok("tenant", "create", "legacy", "--name", "Legacy", "--secret-stdin", input=text)
    for needle in (text, text.rstrip("=")):
        assert needle not in created.output
    token = ok("token", "issue", "legacy", "--sub", "u").stdout.strip()
    claims = jwt.decode(token, raw, algorithms=["HS256"], audience="tenantauth")
    assert claims["tid"] == "legacy"
    same = run("tenant", "rotate", "legacy", "--secret-stdin", input=text + "\n")
    assert_clean_error(same, "revoke nothing")
    assert text not in same.output


@pytest.mark.usefixtures("embedded")
def test_secret_stdin_refuses_bad_secrets() -> None:
    """A short or empty imported secret is a clean error and creates nothing."""
    short = run("tenant", "create", "x1", "--name", "X", "--secret-stdin", input="c2hvcnQ\n")
    assert_clean_error(short, "at least 32 bytes")
    assert_clean_error(run("tenant", "create", "x2", "--name", "X", "--secret-stdin", input=""))
    assert ok_json("tenant", "list")["items"] == []


@pytest.mark.usefixtures("embedded")
def test_errors_are_one_clear_line() -> None:
    """Duplicate ids and unknown tenants exit 1 with an 'error:' line and no traceback."""
    ok("tenant", "create", "acme", "--name", "Acme")
    assert_clean_error(run("tenant", "create", "acme", "--name", "Again"), "already exists")
    for args in (
        ("tenant", "show", "ghost"),
        ("tenant", "rotate", "ghost"),
        ("tenant", "suspend", "ghost"),
        ("tenant", "resume", "ghost"),
        ("tenant", "delete", "ghost", "--yes"),
        ("token", "issue", "ghost", "--sub", "u"),
    ):
        assert_clean_error(run(*args), "'ghost' does not exist")
    assert_clean_error(run("tenant", "list", "--cursor", "!!!"), "cursor")
    assert_clean_error(run("token", "issue", "acme", "--sub", "u", "--claim", "iss=x"), "iss")


@pytest.mark.usefixtures("embedded")
def test_delete_asks_first() -> None:
    """delete without --yes asks; answering no aborts with exit 1 and keeps the tenant."""
    ok("tenant", "create", "acme", "--name", "Acme")
    result = run("tenant", "delete", "acme", input="n\n")
    assert result.exit_code == 1
    assert "Delete tenant acme" in result.output
    assert ok_json("tenant", "show", "acme")["status"] == "active"
    assert ok("tenant", "delete", "acme", input="y\n").exit_code == 0
    assert_clean_error(run("tenant", "show", "acme"), "does not exist")


def test_first_command_shows_the_generated_admin_token_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Whichever command generates the admin token shows it once, on stderr (stdout stays
    clean for --json); later commands do not show it again."""
    embedded = tmp_path / "fresh-state"
    monkeypatch.setenv("TENANTAUTH_STATE_DIR", str(embedded))
    first = ok("tenant", "list", "--json")
    token = (embedded / "admin.token").read_text().strip()
    assert token in first.stderr
    assert token not in first.stdout
    json.loads(first.stdout)
    second = ok("tenant", "list", "--json")
    assert token not in second.stderr + second.stdout


def test_embedded_state_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The first command creates the state dir 0700 with secret files 0600."""
    embedded = tmp_path / "fresh-state"
    monkeypatch.setenv("TENANTAUTH_STATE_DIR", str(embedded))
    ok("tenant", "list")
    assert embedded.stat().st_mode & 0o777 == 0o700
    for name in ("master.key", "admin.token", "tenantauth.db"):
        assert (embedded / name).stat().st_mode & 0o777 == 0o600, name


@pytest.mark.parametrize(
    "path", [p for p, _ in ALL_COMMANDS], ids=[" ".join(p) or "tenantauth" for p, _ in ALL_COMMANDS]
)
def test_help_everywhere(path: tuple[str, ...]) -> None:
    """`--help` on every command and group exits 0 and shows its usage and description."""
    command = dict(ALL_COMMANDS)[path]
    result = ok(*path, "--help")
    assert result.stdout.startswith("Usage: ")
    assert command.help, f"{' '.join(path)} has no help text"
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.stdout.split())
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in {"help", "version"}:
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"


def test_settings_lists_every_variable() -> None:
    """`tenantauth settings` lists every TENANTAUTH_* variable from the settings table."""
    result = ok("settings")
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert listed == {PREFIX + s.name for s in SETTINGS}
    assert len(SETTINGS) >= 18


def test_version() -> None:
    """`tenantauth --version` prints the package version."""
    assert ok("--version").stdout.strip() == f"tenantauth, version {__version__}"


WEB_LAYER = ("flask", "werkzeug", "flask_smorest", "marshmallow", "tenantauth.app")


def test_a_command_never_loads_the_web_layer(tmp_path: Path) -> None:
    """A command (here `tenant list` in a fresh interpreter, embedded mode) loads no Flask,
    flask-smorest, marshmallow or ``tenantauth.app``: the modules it imports at run time, which
    import-linter's static contract cannot see (docs/design.md, "The CLI does not load the web
    layer")."""
    script = (
        "import sys\n"
        "from tenantauth.cli import main\n"
        "try:\n"
        "    main(['tenant', 'list', '--json'])\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        f"print(sorted(m for m in {WEB_LAYER!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}  # embedded mode
    env[PREFIX + "STATE_DIR"] = str(tmp_path / "state")
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


# --------------------------------------------------------------------------- production mode


@pytest.mark.usefixtures("production")
def test_production_create_issue_verify_rotate() -> None:
    """On PostgreSQL + Redis: create, issue, verify (0), rotate, verify again (1)."""
    created = ok_json("tenant", "create", "acme", "--name", "Acme")
    assert created["key_version"] == 1
    token = ok("token", "issue", "acme", "--sub", "user-9").stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == tenant_issuer("acme")
    assert ok("token", "verify", token).stdout.startswith("VALID: tenant acme, subject user-9")
    assert ok_json("tenant", "rotate", "acme")["key_version"] == 2
    rejected = run("token", "verify", token)
    assert (rejected.exit_code, rejected.stdout.startswith("INVALID")) == (1, True)
    assert [t["id"] for t in ok_json("tenant", "list")["items"]] == ["acme"]


@pytest.mark.usefixtures("production")
def test_production_secret_stdin() -> None:
    """--secret-stdin works on PostgreSQL too, and the secret never reaches the output."""
    raw, text = new_secret()
    result = ok("tenant", "create", "legacy", "--name", "L", "--secret-stdin", input=text + "\n")
    assert text not in result.output
    token = ok("token", "issue", "legacy", "--sub", "u").stdout.strip()
    assert jwt.decode(token, raw, algorithms=["HS256"], audience="tenantauth")["sub"] == "u"


def test_production_lists_every_missing_secret_at_once(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """A database URL without MASTER_KEY, ADMIN_TOKEN and ISSUER exits 1 naming all three."""
    monkeypatch.setenv(PREFIX + "DATABASE_URL", pg_url)
    for args in (("tenant", "list"), ("migrate",), ("token", "verify", "a.b.c")):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: invalid configuration")
        for name in REQUIRED_IN_PRODUCTION:
            assert f"{name} is required in production mode" in result.stderr
        assert "Traceback" not in result.output


def test_production_reports_bad_and_missing_settings_together(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """A malformed master key and a short admin token are reported beside the missing issuer."""
    monkeypatch.setenv(PREFIX + "DATABASE_URL", pg_url)
    monkeypatch.setenv(PREFIX + "MASTER_KEY", "c2hvcnQ=")
    monkeypatch.setenv(PREFIX + "ADMIN_TOKEN", "too-short")
    result = run("tenant", "list")
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    assert "TENANTAUTH_MASTER_KEY must decode to exactly 32 bytes" in result.stderr
    assert "TENANTAUTH_ADMIN_TOKEN must be at least 32 characters" in result.stderr
    assert "TENANTAUTH_ISSUER is required in production mode" in result.stderr


# --------------------------------------------------------------------------- revocation, embedded


@pytest.mark.usefixtures("embedded")
def test_user_revoke_logs_the_user_out_everywhere() -> None:
    """user revoke exits 0 and says so; the user's old tokens are INVALID, others VALID."""
    ok("tenant", "create", "acme", "--name", "Acme")
    old = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    bob = ok("token", "issue", "acme", "--sub", "bob").stdout.strip()
    assert ok("token", "verify", old).stdout.startswith("VALID: tenant acme, subject alice")
    done = ok("user", "revoke", "acme", "alice")
    assert "alice" in done.stdout
    assert "acme" in done.stdout
    assert "version 1" in done.stdout
    rejected = run("token", "verify", old)
    assert rejected.exit_code == 1
    assert rejected.stdout.startswith("INVALID")
    assert "revoked" in rejected.stdout
    assert ok("token", "verify", bob).stdout.startswith("VALID: tenant acme, subject bob")
    fresh = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    assert jwt.decode(fresh, options={"verify_signature": False})["uv"] == 1
    assert ok("token", "verify", fresh).stdout.startswith("VALID")
    again = ok_json("user", "revoke", "acme", "alice")
    assert again.keys() == {"tenant_id", "subject", "version", "revoked_at"}
    assert (again["tenant_id"], again["subject"], again["version"]) == ("acme", "alice", 2)
    assert isinstance(again["revoked_at"], int)
    rejected_json = run("token", "verify", fresh, "--json")
    assert (rejected_json.exit_code, json.loads(rejected_json.stdout)) == (1, {"active": False})
    assert ok("token", "verify", bob).exit_code == 0


@pytest.mark.usefixtures("embedded")
def test_user_revoke_errors_are_one_clear_line() -> None:
    """An unknown tenant or a username with control characters exits 1 with one error line."""
    ok("tenant", "create", "acme", "--name", "Acme")
    token = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    assert_clean_error(run("user", "revoke", "ghost", "alice"), "'ghost' does not exist")
    assert_clean_error(run("user", "revoke", "acme", "ali\nce"), "printable")
    assert_clean_error(run("user", "revoke", "acme", "x" * 256), "255")
    assert ok("token", "verify", token).stdout.startswith("VALID")


@pytest.mark.usefixtures("embedded")
def test_token_revoke_revokes_that_token_only() -> None:
    """token revoke exits 0 and says so; the token is INVALID, a sibling VALID; again exits 1."""
    ok("tenant", "create", "acme", "--name", "Acme")
    token = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    sibling = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    done = ok("token", "revoke", token)
    assert done.stdout.startswith("revoked")
    rejected = run("token", "verify", token)
    assert rejected.exit_code == 1
    assert rejected.stdout.startswith("INVALID")
    assert "revoked" in rejected.stdout
    assert ok("token", "verify", sibling).stdout.startswith("VALID: tenant acme, subject alice")
    again = run("token", "revoke", token, "--json")
    assert (again.exit_code, json.loads(again.stdout)) == (1, {"revoked": False})
    garbage = run("token", "revoke", "not-a-token")
    assert garbage.exit_code == 1
    assert garbage.stdout.startswith("not revoked")
    assert "Traceback" not in garbage.output
    assert ok_json("token", "revoke", sibling) == {"revoked": True}
    assert run("token", "verify", sibling).exit_code == 1


@pytest.mark.usefixtures("embedded")
def test_token_revoke_reads_stdin() -> None:
    """token revoke - reads the token from standard input."""
    ok("tenant", "create", "acme", "--name", "Acme")
    token = ok("token", "issue", "acme", "--sub", "alice").stdout.strip()
    assert ok("token", "revoke", "-", input=token + "\n").stdout.startswith("revoked")
    assert run("token", "verify", token).exit_code == 1
