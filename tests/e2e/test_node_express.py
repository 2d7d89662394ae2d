"""The Node.js example (examples/node-express): its `node --test` suite against a real tenantauth
(gunicorn, 3 workers, PostgreSQL + Redis), seeded here through the admin API.

Needs node >= 20 and npm on PATH: a missing one fails the test with the fix, it is never
skipped. `npm ci` runs once per package-lock.json (a stamp in node_modules records which).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import HOST, Admin, Server, call, scrubbed_environ
from tests.support import ADMIN_TOKEN, ISSUER

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-express"
STAMP = EXAMPLE / "node_modules" / ".tenantauth-npm-ci"
MIN_NODE_MAJOR = 20
NPM_CI_SECONDS = 300
NODE_TEST_SECONDS = 180
#: The behaviours the issue asks the node suite to show; each must be an `ok` test line.
REQUIRED = (
    "a valid token reaches the handler with the verified tenant, subject and scope",
    "no Authorization header is 401 with a Bearer challenge without error code",
    "garbage and malformed credentials are 401 invalid_token, all alike",
    "forged, tampered and alg=none tokens are 401 invalid_token",
    "a client-sent X-Tenant-Id (or X-Subject, X-Scope) is never trusted",
    "requireScope answers 403 insufficient_scope for a token without the scope",
    "rotating the tenant makes the very next request with its old token 401",
    "tenantauth unreachable (closed port): 503, fail closed",
    "tenantauth too slow: 503 once the timeout passes",
    "an old-stack token verifies after importing its secret, and dies at rotation",
    "an old-stack token passes only with every claim and header tenantauth requires",
    "the middleware never logs a token, and logs why it refused",
)
FIX = "install Node.js >= 20 with npm (Debian/Ubuntu: apt-get install -y nodejs npm)"


def tool(name: str) -> str:
    """Return the path of ``name`` on PATH; fail the test (never skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found on PATH: {FIX}", pytrace=False)
    return path


def check_node_version(node: str) -> None:
    """Fail unless ``node`` is at least MIN_NODE_MAJOR (the test runner and APIs we use)."""
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        pytest.fail(f"node {version} is too old: {FIX}", pytrace=False)


def install_dependencies(npm: str) -> None:
    """Run `npm ci` unless node_modules already matches package-lock.json.

    Holds a lock on package-lock.json meanwhile, so two runs in one checkout install one at a
    time. Fails with npm's output if it fails; raises TimeoutExpired after NPM_CI_SECONDS.
    """
    lock = EXAMPLE / "package-lock.json"
    with lock.open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        digest = hashlib.sha256(handle.read()).hexdigest()
        if STAMP.is_file() and STAMP.read_text() == digest:
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=NPM_CI_SECONDS,
            check=False,  # a failure is asserted below, with npm's output
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
        STAMP.write_text(digest)


def issue(port: int, tenant: str, sub: str, scope: str, aud: str | None = None) -> str:
    """Mint a token through the admin API; return it."""
    body = {"sub": sub, "scope": scope} | ({"aud": aud} if aud else {})
    reply = call(port, "POST", f"/v1/admin/tenants/{tenant}/tokens", token=ADMIN_TOKEN, body=body)
    assert reply.status == 201, reply
    return str(reply.json()["access_token"])


def seed(port: int) -> dict[str, str]:
    """Create tenants acme, globex and rotating with their tokens; return them as env vars."""
    admin = Admin(port)
    for tenant in ("acme", "globex", "rotating"):
        admin.create_tenant(tenant)
    return {
        "TOKEN_READ": issue(port, "acme", "alice", "read"),
        "TOKEN_READ_WRITE": issue(port, "acme", "alice", "read write"),
        "TOKEN_OTHER_TENANT": issue(port, "globex", "bob", "read"),
        "TOKEN_AUDIENCE_ORDERS": issue(port, "acme", "alice", "read", aud="orders"),
        "ROTATE_TENANT": "rotating",
        "TOKEN_ROTATE": issue(port, "rotating", "carol", "read"),
    }


def test_node_express_example(server: Server) -> None:
    """The Express middleware's node suite passes against a real production-mode tenantauth."""
    node, npm = tool("node"), tool("npm")
    check_node_version(node)
    install_dependencies(npm)
    tokens = seed(server.port)
    env = scrubbed_environ(
        TENANTAUTH_URL=f"http://{HOST}:{server.port}",
        TENANTAUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        TENANTAUTH_ISSUER=ISSUER,
        **tokens,
    )
    files = sorted(str(path.relative_to(EXAMPLE)) for path in EXAMPLE.glob("test/*.test.js"))
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TEST_SECONDS,
        check=False,  # the exit status is asserted below, with the suite's output
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    counts = {k: int(n) for k, n in re.findall(r"^# (\w+) (\d+)$", result.stdout, re.M)}
    bad = {k: counts.get(k) for k in ("fail", "cancelled", "skipped", "todo")}
    assert bad == dict.fromkeys(bad, 0), output
    passed = set(re.findall(r"^\s*ok \d+ - (.+)$", result.stdout, re.M))
    assert not set(REQUIRED) - passed, output
    assert counts["pass"] >= len(REQUIRED), output
    leaked = [
        name for name, value in tokens.items() if name.startswith("TOKEN_") and value in output
    ]
    assert not leaked, f"the node suite printed tokens {leaked}"
