"""Embedded mode end to end: `tenantauth serve` with nothing but a state directory.

The first start generates the secrets (0600, in a 0700 directory) and prints the admin token
once with a curl example; the service then works over HTTP on SQLite; a restart prints no
token and keeps every tenant and secret.
"""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

import pytest

from tests.e2e.harness import Admin, Launch, Server, call, scrubbed_environ

pytestmark = pytest.mark.e2e

WORKERS = 2
_TOKEN_LINE = re.compile(r"^\s+(ta_admin_[A-Za-z0-9_-]+)\s*$", re.MULTILINE)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _curl_example(stdout: str) -> list[str]:
    """Return the argv of the one curl example in the banner."""
    lines = [line for line in stdout.splitlines() if line.strip().startswith("curl ")]
    assert len(lines) == 1, stdout
    return shlex.split(lines[0])


def _run_curl_example(argv: list[str], server: Server) -> int:
    """Do what the printed curl example does (GET with its headers); return the status."""
    headers = dict(argv[i + 1].split(": ", 1) for i, a in enumerate(argv) if a == "-H")
    url = next(a for a in argv if a.startswith("http://"))
    prefix = f"http://127.0.0.1:{server.port}/"
    assert url.startswith(prefix), f"the curl example targets {url}, not this server"
    token = headers["Authorization"].removeprefix("Bearer ")
    return call(server.port, "GET", url.removeprefix(prefix[:-1]), token=token).status


def test_embedded_first_start_prints_token_and_restart_keeps_data(
    launch: Launch, tmp_path: Path
) -> None:
    """First start prints a working admin token once (0600 secrets, 0700 dir); rotation
    revokes; after a restart nothing is printed and tenants and secrets persist."""
    state = tmp_path / "state"
    env = scrubbed_environ(TENANTAUTH_STATE_DIR=str(state))
    first: Server = launch("embedded-first", env, workers=WORKERS)

    out = first.stdout.read_text()
    tokens = _TOKEN_LINE.findall(out)
    assert len(tokens) == 1, f"expected the admin token exactly once on stdout:\n{out}"
    admin_token = tokens[0]
    assert "ta_admin_" not in first.stderr.read_text()
    curl = _curl_example(out)
    assert f"Authorization: Bearer {admin_token}" in curl
    assert _run_curl_example(curl, first) == 200, "the printed curl example does not work"

    assert _mode(state) == 0o700
    for name in ("admin.token", "master.key", "tenantauth.db"):
        assert _mode(state / name) == 0o600, name
    assert (state / "admin.token").read_text().strip() == admin_token

    admin = Admin(first.port, admin_token)
    assert admin.create_tenant("initech", "Initech")["status"] == "active"
    old = admin.issue("initech")
    assert call(first.port, "GET", "/v1/verify", token=old).status == 200
    rotated, _, _ = admin.rotate("initech")
    assert rotated["key_version"] == 2
    new = admin.issue("initech")
    # Both workers answer: several new connections, all must agree.
    assert {call(first.port, "GET", "/v1/verify", token=old).status for _ in range(20)} == {401}
    assert {call(first.port, "GET", "/v1/verify", token=new).status for _ in range(20)} == {200}
    for path in state.iterdir():  # SQLite's -wal/-shm files included
        assert _mode(path) & 0o077 == 0, f"{path.name} is readable by others"
    first.stop()

    second = launch("embedded-second", env, workers=WORKERS)
    out = second.stdout.read_text()
    assert admin_token not in out
    assert "ta_admin_" not in out + second.stderr.read_text()
    assert "admin token" not in out.lower()
    shown = call(second.port, "GET", "/v1/admin/tenants/initech", token=admin_token)
    assert shown.status == 200
    assert shown.json()["key_version"] == 2
    assert call(second.port, "GET", "/v1/verify", token=new).status == 200
    assert call(second.port, "GET", "/v1/verify", token=old).status == 401
    print(
        f"embedded: state dir {oct(_mode(state))}, secrets 0o600, token printed once, "
        "tenant and secret survived a restart"
    )
