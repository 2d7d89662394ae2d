"""Offline verification by third-party libraries, starting from nothing but a tenant's issuer
URL I: PyJWT's ``PyJWKClient`` and Node's ``jose`` (examples/node-offline) follow
``I/.well-known/openid-configuration`` to its ``jwks_uri`` and take the key named by the
token's ``kid``, for every key-pair algorithm (EdDSA, ES256, RS256).

One real server for the module (granian unless ``TEST_HTTP_SERVER``, 3 workers, PostgreSQL +
Redis; a start costs ~3 s), whose ``TENANTAUTH_ISSUER`` is its own loopback URL, so every issuer
it names can be fetched. Each test works in a tenant of its own. Needs node >= 20 and npm
(tests/e2e/nodejs.py): a missing one fails with the fix, never skips.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from jwt import PyJWKClient, PyJWKClientError

from tests.e2e.conftest import _SERVERS, WORKERS
from tests.e2e.harness import (
    HOST,
    Admin,
    Reply,
    Server,
    call,
    free_port,
    production_environ,
    scrubbed_environ,
    start_server,
    wait_ready,
)
from tests.e2e.nodejs import check_node_version, install_dependencies, tool
from tests.support import HTTP_SERVER, empty_database, empty_redis, redis_db_url

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-offline"
VERIFY_JS = EXAMPLE / "verify.js"
SESSION_JS = Path(__file__).with_name("jose_session.mjs")
ALGS = ("EdDSA", "ES256", "RS256")
AUDIENCE = "tenantauth"
JWKS_MAX_AGE = 300
#: verify.js's COOLDOWN_MS, given to PyJWKClient too: both libraries default to 30 s, during
#: which a key rotated in after their last fetch is refused (README of examples/node-offline).
COOLDOWN_SECONDS = 1.0
NODE_SECONDS = 30.0


@dataclass(frozen=True)
class Tenant:
    """A key-pair tenant on the module's server, and its issuer identifier."""

    id: str
    alg: str
    issuer: str


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_db: int
) -> Iterator[Server]:
    """One production-mode server for the module, its issuer its own URL, on this run's own
    (emptied) PostgreSQL database and Redis DB."""
    redis_url = redis_db_url(redis_db)
    empty_database(pg_database)
    empty_redis(redis_url)
    tmp = tmp_path_factory.mktemp("offline")
    port = free_port()
    env = production_environ(pg_database, redis_url, tmp / "live.access.log")
    env |= {"TENANTAUTH_ISSUER": f"http://{HOST}:{port}", "TENANTAUTH_SERVER": HTTP_SERVER}
    srv = start_server(tmp, "live", env, workers=WORKERS, port=port)
    try:
        wait_ready(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def node() -> str:
    """The path of node (>= 20), examples/node-offline's dependencies installed."""
    path = tool("node")
    check_node_version(path)
    install_dependencies(tool("npm"), EXAMPLE)
    return path


@pytest.fixture(params=ALGS)
def tenant(request: pytest.FixtureRequest, live: Server, admin: Admin) -> Tenant:
    """A new tenant signing with each key-pair algorithm in turn."""
    alg = request.param
    tenant_id = f"{alg.lower()}-{secrets.token_hex(4)}"
    admin.create_tenant(tenant_id, alg=alg)
    return Tenant(tenant_id, alg, issuer_of(live, tenant_id))


@pytest.fixture(autouse=True)
def _server_output(request: pytest.FixtureRequest, live: Server) -> None:
    """A failing test's report shows the module server's output (tests/e2e/conftest.py)."""
    request.node.stash[_SERVERS] = [live]


@pytest.fixture
def admin(live: Server) -> Admin:
    """The admin API of the module's server."""
    return Admin(live.port)


# --------------------------------------------------------------------------- helpers


def issuer_of(live: Server, tenant_id: str) -> str:
    """The tenant's issuer identifier I (the server's issuer is its own URL)."""
    return f"http://{HOST}:{live.port}/v1/tenants/{tenant_id}"


def get(url: str) -> Reply:
    """GET an absolute URL on the server it names (only loopback servers are reachable)."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname) == ("http", HOST), url
    assert parts.port is not None, url
    return call(parts.port, "GET", parts.path)


def discover(issuer: str) -> dict[str, Any]:
    """Fetch the issuer's OpenID-style metadata; check it names that issuer; return it."""
    reply = get(f"{issuer}/.well-known/openid-configuration")
    assert reply.status == 200, reply
    metadata: dict[str, Any] = reply.json()
    assert metadata["issuer"] == issuer
    return metadata


def jwk_client(issuer: str) -> PyJWKClient:
    """A new PyJWKClient on the jwks_uri that discovery from ``issuer`` finds (no cache yet)."""
    return PyJWKClient(discover(issuer)["jwks_uri"], cooldown_duration=COOLDOWN_SECONDS)


def py_verify(client: PyJWKClient, tenant: Tenant, token: str) -> dict[str, Any]:
    """Verify ``token`` with PyJWT and the key ``client`` finds for its kid; return the claims."""
    key = client.get_signing_key_from_jwt(token)
    required = ["iss", "sub", "aud", "exp", "iat", "jti"]
    return jwt.decode(  # type: ignore[no-any-return]
        token,
        key,
        algorithms=[tenant.alg],
        audience=AUDIENCE,
        issuer=tenant.issuer,
        options={"require": required},
    )


def jose_cli(
    node: str, issuer: str, token: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``node verify.js <issuer> <token>`` in a new process (so with a fresh JWK Set)."""
    return subprocess.run(
        [node, str(VERIFY_JS), issuer, token],
        cwd=EXAMPLE,
        env=scrubbed_environ(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=NODE_SECONDS,
        check=False,  # the exit status is asserted by the callers, with the output
    )


def jose_verify(node: str, tenant: Tenant, token: str, *, stdin: bool = False) -> dict[str, Any]:
    """Verify with verify.js in a new process (token as argument, or ``-`` and on stdin);
    return the payload it printed."""
    if stdin:
        result = jose_cli(node, tenant.issuer, "-", stdin=token)
    else:
        result = jose_cli(node, tenant.issuer, token)
    assert (result.returncode, result.stderr) == (0, ""), result
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def jose_refusal(node: str, issuer: str, token: str) -> str:
    """Run verify.js in a new node process, expecting a refusal; return its error code."""
    result = jose_cli(node, issuer, token)
    assert (result.returncode, result.stdout) == (1, ""), result
    found = re.fullmatch(r"error: (\w+): .+\n", result.stderr)
    assert found, result
    assert token not in result.stderr
    return found[1]


def kid(token: str) -> str:
    """Return the kid of a token's (unverified) header."""
    return str(jwt.get_unverified_header(token)["kid"])


def tamper(token: str) -> str:
    """Return ``token`` with one byte of its signature changed (one bit flipped)."""
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert forged != signature
    return f"{head}.{payload}.{forged}"


class JoseSession:
    """One node process holding a jose verifier per issuer across calls (jose_session.mjs)."""

    def __init__(self, node: str, stderr: Path) -> None:
        """Start the process; its stderr goes to ``stderr``."""
        self.stderr = stderr
        with stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [node, str(SESSION_JS), VERIFY_JS.as_uri()],
                cwd=EXAMPLE,
                env=scrubbed_environ(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def payload(self, issuer: str, token: str) -> dict[str, Any]:
        """Verify ``token`` in the long-lived process, expecting success; return the payload."""
        answer = self._ask(issuer, token)
        assert answer["ok"], f"jose refused the token: {answer}"
        return answer["payload"]  # type: ignore[no-any-return]

    def refusal(self, issuer: str, token: str) -> str:
        """Verify ``token`` in the long-lived process, expecting a refusal; return its code."""
        answer = self._ask(issuer, token)
        assert not answer["ok"], f"jose accepted the token: {answer}"
        return str(answer["code"])

    def _ask(self, issuer: str, token: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{issuer} {token}\n")
        self.proc.stdin.flush()
        readable, _, _ = select.select([self.proc.stdout], [], [], NODE_SECONDS)
        line = self.proc.stdout.readline() if readable else ""
        assert line, f"jose session gave no answer: {self.stderr.read_text()}"
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        """End the process (closing its stdin ends its loop)."""
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(NODE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(NODE_SECONDS)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def jose_session(node: str, tmp_path: Path) -> Iterator[JoseSession]:
    """A long-lived jose verifier process, as a Node service holds one."""
    session = JoseSession(node, tmp_path / "jose_session.stderr")
    try:
        yield session
    finally:
        session.close()


# --------------------------------------------------------------------------- tests


def test_discovery_locations_serve_one_document(tenant: Tenant, live: Server) -> None:
    """The three discovery locations serve one document: issuer I, jwks_uri I's JWK Set,
    which holds the tenant's one public key and is cacheable for 300 s with an ETag."""
    base = f"http://{HOST}:{live.port}"
    urls = [
        f"{tenant.issuer}/.well-known/openid-configuration",
        f"{tenant.issuer}/.well-known/oauth-authorization-server",
        f"{base}/.well-known/oauth-authorization-server/v1/tenants/{tenant.id}",  # RFC 8414 §3.1
    ]
    replies = [get(url) for url in urls]
    assert [r.status for r in replies] == [200, 200, 200], replies
    assert {r.headers["Content-Type"].split(";")[0] for r in replies} == {"application/json"}
    documents = [r.json() for r in replies]
    assert documents == [documents[0]] * 3
    assert documents[0]["issuer"] == tenant.issuer
    assert documents[0]["jwks_uri"] == f"{tenant.issuer}/.well-known/jwks.json"

    jwks = get(documents[0]["jwks_uri"])
    assert jwks.status == 200, jwks
    assert jwks.headers["Content-Type"] == "application/jwk-set+json"
    cache_control = {part.strip() for part in jwks.headers["Cache-Control"].split(",")}
    assert cache_control == {"public", f"max-age={JWKS_MAX_AGE}"}
    assert jwks.headers["ETag"]
    (key,) = jwks.json()["keys"]
    assert (key["alg"], key["use"]) == (tenant.alg, "sig")
    assert re.fullmatch(rf"{tenant.id}\.[a-z2-7]{{8}}", key["kid"])


def test_libraries_verify_from_the_issuer(tenant: Tenant, admin: Admin, node: str) -> None:
    """PyJWKClient and jose (verify.js, token as argument and on stdin) verify a token from
    the issuer URL alone, and read the same claims."""
    token = admin.issue(tenant.id, sub="alice")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": tenant.alg, "kid": header["kid"], "typ": "JWT"}
    assert re.fullmatch(rf"{tenant.id}\.[a-z2-7]{{8}}", header["kid"])

    claims = py_verify(jwk_client(tenant.issuer), tenant, token)
    assert (claims["iss"], claims["sub"], claims["tid"]) == (tenant.issuer, "alice", tenant.id)
    assert jose_verify(node, tenant, token) == claims
    assert jose_verify(node, tenant, token, stdin=True) == claims


def test_tampered_token_is_refused(tenant: Tenant, admin: Admin, node: str) -> None:
    """A token with one signature byte changed is refused by both libraries (the control
    that these checks can fail), while the untouched token passes the same client."""
    token = admin.issue(tenant.id)
    forged = tamper(token)
    client = jwk_client(tenant.issuer)
    py_verify(client, tenant, token)
    with pytest.raises(jwt.InvalidSignatureError):
        py_verify(client, tenant, forged)
    assert jose_refusal(node, tenant.issuer, forged) == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"


def test_rotation_reaches_offline_verifiers(
    tenant: Tenant, admin: Admin, node: str, jose_session: JoseSession
) -> None:
    """After rotate: verifiers holding the old set still accept the old token (offline), verify
    the new key's token by refetching for its unknown kid, then refuse the old one; verifiers
    fetching afresh refuse the old token at once (its kid left the set) and accept the new."""
    old = admin.issue(tenant.id, sub="before")
    held = jwk_client(tenant.issuer)
    assert py_verify(held, tenant, old)["sub"] == "before"
    assert jose_session.payload(tenant.issuer, old)["sub"] == "before"
    fetched = time.monotonic()  # both verifiers have fetched the set by now

    admin.rotate(tenant.id)
    new = admin.issue(tenant.id, sub="after")
    assert kid(new) != kid(old)
    assert kid(new).split(".")[0] == tenant.id
    jwks_uri = f"{tenant.issuer}/.well-known/jwks.json"
    for _ in range(WORKERS * 3):  # new connections: any worker may answer
        assert [k["kid"] for k in get(jwks_uri).json()["keys"]] == [kid(new)]

    # Offline: the copies held keep accepting the old key until they are fetched again.
    assert py_verify(held, tenant, old)["sub"] == "before"
    assert jose_session.payload(tenant.issuer, old)["sub"] == "before"
    time.sleep(max(0.0, fetched + COOLDOWN_SECONDS + 0.05 - time.monotonic()))
    assert py_verify(held, tenant, new)["sub"] == "after"
    assert jose_session.payload(tenant.issuer, new)["sub"] == "after"
    with pytest.raises(PyJWKClientError, match="Unable to find a signing key"):
        py_verify(held, tenant, old)
    assert jose_session.refusal(tenant.issuer, old) == "ERR_JWKS_NO_MATCHING_KEY"

    with pytest.raises(PyJWKClientError, match="Unable to find a signing key"):
        py_verify(jwk_client(tenant.issuer), tenant, old)
    assert jose_refusal(node, tenant.issuer, old) == "ERR_JWKS_NO_MATCHING_KEY"
    assert py_verify(jwk_client(tenant.issuer), tenant, new)["sub"] == "after"
    assert jose_verify(node, tenant, new)["sub"] == "after"


@contextmanager
def impostor(document: bytes) -> Iterator[str]:
    """Serve ``document`` as JSON to every GET on a loopback port; yield that server's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """Answer the document, whatever the path."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            """Stay quiet."""

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(NODE_SECONDS)


def test_verify_js_refuses_metadata_of_another_issuer(
    admin: Admin, live: Server, node: str
) -> None:
    """verify.js refuses a server whose metadata names another issuer than the one it was
    given (a mix-up, RFC 8414 §3.3), though the token and the jwks_uri are genuine."""
    tenant_id = f"mixup-{secrets.token_hex(4)}"
    admin.create_tenant(tenant_id, alg="EdDSA")
    tenant = Tenant(tenant_id, "EdDSA", issuer_of(live, tenant_id))
    token = admin.issue(tenant.id)
    document = get(f"{tenant.issuer}/.well-known/openid-configuration").body
    with impostor(document) as elsewhere:
        assert jose_refusal(node, f"{elsewhere}/v1/tenants/{tenant.id}", token) == "ERR_DISCOVERY"
    assert jose_verify(node, tenant, token)["tid"] == tenant.id
