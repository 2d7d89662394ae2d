"""The client distribution installs on its own: a wheel of clients/python, installed into an
empty new venv with urllib3 alone, verifies a token against the running server, and none of
the server's dependencies (nor the server) can be imported there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tenantauth_client import TenantAuthClient
from tests.client.conftest import Tenant, base_url, client_dir
from tests.e2e.harness import Server

pytestmark = pytest.mark.e2e
SERVER_SIDE = [
    "flask",
    "werkzeug",
    "psycopg",
    "psycopg_pool",
    "redis",
    "argon2",
    "jwt",
    "tenantauth",
]
ALLOWED = {"pip", "setuptools", "tenantauth-client", "urllib3"}
CHECK = """
import importlib.util, json, sys
from tenantauth_client import InvalidToken, TenantAuthClient
from tenantauth_client.wsgi import TenantAuthMiddleware

url, token = sys.stdin.read().split()
with TenantAuthClient(url) as client:
    claims = client.verify(token)
    try:
        client.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
        rejected = False
    except InvalidToken:
        rejected = True
try:
    import tenantauth_client.flask
    flask_extra = "importable"
except ModuleNotFoundError as exc:
    flask_extra = exc.name
print(json.dumps({
    "tenant": claims.tenant_id,
    "subject": claims.subject,
    "rejected": rejected,
    "importable": [n for n in NAMES if importlib.util.find_spec(n) is not None],
    "flask_extra": flask_extra,
    "middleware": TenantAuthMiddleware.__name__,
}))
"""


def run(argv: list[str | Path], cwd: Path, stdin: str = "", timeout: float = 120) -> str:
    """Run a command with no inherited PYTHONPATH; return its stdout (fail with its output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(out: Path) -> Path:
    """Build the client's wheel with the dev venv's hatchling (no build isolation)."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", out, client_dir()], cwd=out.parent)  # fmt: skip
    (wheel,) = out.glob("tenantauth_client-*.whl")
    return wheel


def test_wheel_holds_only_the_client(tmp_path: Path) -> None:
    """The wheel holds tenantauth_client alone and requires urllib3 (flask only as an extra)."""
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert all(n.startswith(("tenantauth_client/", "tenantauth_client-")) for n in names)
    assert "tenantauth_client/py.typed" in names
    assert sorted(r.split(";")[0].split("<")[0].split(">")[0] for r in requires) == [
        "flask",
        "urllib3",
    ]
    assert any("extra == 'flask'" in r or 'extra == "flask"' in r for r in requires)


def test_wheel_in_an_empty_venv_verifies_against_the_server(
    live: Server, admin: TenantAuthClient, tenant: Tenant, tmp_path: Path
) -> None:
    """In a new venv holding only the wheel and urllib3, a script verifies a token against the
    running server, rejects a damaged one, and can import no server-side package."""
    wheel = build_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", wheel],
        cwd=tmp_path,
        timeout=180,
    )
    listed = json.loads(run([python, "-m", "pip", "list", "--format=json"], cwd=tmp_path))
    installed = {p["name"].lower() for p in listed}
    assert {"tenantauth-client", "urllib3"} <= installed <= ALLOWED, installed
    script = tmp_path / "check.py"
    script.write_text(f"NAMES = {SERVER_SIDE!r}\n{CHECK}")
    token = admin.issue_token(tenant.id, "alice")
    # -I: isolated mode (no PYTHONPATH, no user site, not even the script's directory first).
    out = run([python, "-I", script], cwd=tmp_path, stdin=f"{base_url(live)} {token}")
    result = json.loads(out)
    assert (result["tenant"], result["subject"], result["rejected"]) == (tenant.id, "alice", True)
    assert result["importable"] == []
    assert result["flask_extra"] == "flask"  # the [flask] extra is not installed, and says so
