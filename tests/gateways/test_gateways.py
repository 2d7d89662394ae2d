"""The example gateway configurations (examples/nginx, examples/caddy) in real nginx and Caddy
in front of a real tenantauth (PostgreSQL + Redis) and a recording upstream.

Each test runs once per gateway. The contract: only a request whose token tenantauth accepts
reaches the upstream, with identity headers that come from tenantauth alone; every rejected
credential is a 401 with a Bearer challenge; tenantauth unavailable is a 503, never a 500.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from tests.gateways.conftest import Outage, Reply, Stack
from tests.integration.helpers import claims_for, new_secret, sign

pytestmark = pytest.mark.e2e
SPOOFED = [
    ("X-Tenant-Id", "evil"),
    ("X-Subject", "root"),
    ("X-Scope", "admin"),
    ("X_Scope", "admin"),
    ("x-tenant-id", "evil2"),
]


def _tenant(stack: Stack, tenant_id: str = "acme") -> bytes:
    """Create ``tenant_id`` with an imported secret; return the secret."""
    secret, text = new_secret()
    reply = stack.admin._call(
        "POST", "/v1/admin/tenants", {"id": tenant_id, "name": tenant_id, "secret": text}
    )
    assert reply.status == 201, reply
    return secret


def _issue(stack: Stack, tenant_id: str, sub: str = "user-42", **body: Any) -> str:
    """Mint a token through the admin API; return it."""
    path = f"/v1/admin/tenants/{tenant_id}/tokens"
    reply = stack.admin._call("POST", path, {"sub": sub, **body})
    assert reply.status == 201, reply
    return str(reply.json()["access_token"])


def _assert_denied(reply: Reply, stack: Stack, path: str, before: int) -> None:
    """401 with a Bearer challenge, and the upstream saw no new request for ``path``."""
    assert reply.status == 401, (reply, stack.gateway.output()[-2000:])
    assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="tenantauth"')
    assert len(stack.upstream.requests_to(path)) == before


def test_valid_token_reaches_the_upstream_with_identity_headers(stack: Stack) -> None:
    """A valid token passes; the upstream sees X-Tenant-Id, X-Subject and X-Scope from
    tenantauth (percent-encoded where the claim needs it)."""
    _tenant(stack)
    token = _issue(stack, "acme", sub="alice", scope="orders:read orders:write")
    reply = stack.bearer("/api/things", token)
    assert reply.status == 200, reply
    (seen,) = stack.upstream.requests_to("/api/things")
    assert seen.header("X-Tenant-Id") == ["acme"]
    assert seen.header("X-Subject") == ["alice"]
    assert seen.header("X-Scope") == ["orders:read orders:write"]


def test_spoofed_identity_headers_never_reach_the_upstream(stack: Stack) -> None:
    """Client-sent X-Tenant-Id / X-Subject / X-Scope (any case, underscore spellings) are
    overwritten by tenantauth's values, or removed when the token has no such claim."""
    _tenant(stack)
    scoped = _issue(stack, "acme", sub="alice", scope="read")
    unscoped = _issue(stack, "acme", sub="bob")
    assert stack.bearer("/api/a", scoped, *SPOOFED).status == 200
    assert stack.bearer("/api/b", unscoped, *SPOOFED).status == 200
    (a,) = stack.upstream.requests_to("/api/a")
    (b,) = stack.upstream.requests_to("/api/b")
    assert (a.header("X-Tenant-Id"), a.header("X-Subject"), a.header("X-Scope")) == (
        ["acme"],
        ["alice"],
        ["read"],
    )
    assert (b.header("X-Tenant-Id"), b.header("X-Subject"), b.header("X-Scope")) == (
        ["acme"],
        ["bob"],
        [],
    )


def test_every_unacceptable_credential_is_401_and_never_reaches_the_upstream(
    stack: Stack,
) -> None:
    """No token, forged, expired, wrong scheme, JWS JSON serialization, a comma, two
    Authorization fields, an oversized header: each a 401 with a Bearer challenge."""
    secret = _tenant(stack)
    now = time.time()
    forged = sign(secrets.token_bytes(32), claims_for("acme", now), "acme")
    expired = sign(secret, claims_for("acme", now - 3600, exp=int(now) - 1000), "acme")
    good = _issue(stack, "acme")
    cases: dict[str, list[tuple[str, str]]] = {
        "none": [],
        "forged": [("Authorization", f"Bearer {forged}")],
        "expired": [("Authorization", f"Bearer {expired}")],
        "basic": [("Authorization", "Basic dXNlcjpwdw==")],
        "jws-json": [("Authorization", 'Bearer {"protected": "x", "signature": "y"}')],
        "comma": [("Authorization", "Bearer a,b")],
        "two-fields": [("Authorization", f"Bearer {good}")] * 2,
        "oversized": [("Authorization", f"Bearer {good}{'A' * 9000}")],
        "garbage": [("Authorization", "Bearer not-a-token")],
    }
    for name, headers in cases.items():
        reply = stack.get("/api/x", [*headers, *SPOOFED])
        if name == "two-fields" and stack.gateway.name == "nginx":
            # nginx refuses a duplicate Authorization field itself, before any subrequest.
            assert reply.status == 400, reply
            continue
        assert reply.status == 401, (name, reply, stack.gateway.output()[-2000:])
        challenge = reply.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="tenantauth"'), (name, challenge)
        assert ("error=" in challenge) == (name != "none"), (name, challenge)
    assert stack.upstream.requests_to("/api/x") == []
    assert stack.bearer("/api/x", good).status == 200  # the same stack does let a good one in


def test_many_header_fields_are_never_a_500(stack: Stack) -> None:
    """A request with more header fields than tenantauth's limit is no 500: nginx sends only
    the credential to tenantauth (allowed), Caddy sends them all (the uniform 401)."""
    _tenant(stack)
    token = _issue(stack, "acme")
    filler = [(f"X-Filler-{i}", "x") for i in range(60)]
    reply = stack.bearer("/api/many", token, *filler)
    expected = 200 if stack.gateway.name == "nginx" else 401
    assert reply.status == expected, (reply, stack.gateway.output()[-2000:])


def test_audience_per_location(stack: Stack) -> None:
    """/orders/ asks tenantauth for audience `orders`: a token for another audience is 401
    there and still 200 on /api/; a client's own `?audience=` cannot widen it."""
    _tenant(stack)
    orders = _issue(stack, "acme", aud="orders")
    other = _issue(stack, "acme", aud="billing")
    assert stack.bearer("/orders/1", orders).status == 200
    assert stack.bearer("/orders/2?audience=billing", other).status == 401
    assert stack.bearer("/api/1", other).status == 200
    assert stack.bearer("/api/2?audience=nope&debug=1&access_token=x", other).status == 200
    assert len(stack.upstream.requests_to("/orders/2")) == 0


def test_rotation_rejects_on_the_very_next_request(stack: Stack) -> None:
    """Rotating the tenant makes the token's very next request through the gateway a 401."""
    _tenant(stack)
    token = _issue(stack, "acme")
    assert stack.bearer("/api/before", token).status == 200
    stack.admin.rotate("acme")
    _assert_denied(stack.bearer("/api/after", token), stack, "/api/after", 0)


def test_tenantauth_stopped_is_503_and_the_upstream_is_not_reached(stack: Stack) -> None:
    """With tenantauth stopped, the gateway answers 503 (never 500), the upstream unreached."""
    _tenant(stack)
    token = _issue(stack, "acme")
    stack.tenantauth.stop()
    reply = stack.bearer("/api/down", token)
    assert reply.status == 503, (reply, stack.gateway.output()[-2000:])
    assert reply.headers["Retry-After"] == "5"
    assert json.loads(reply.body)["status"] == 503
    assert stack.upstream.requests_to("/api/down") == []


def test_tenantauth_answering_503_is_503_for_the_client(
    fragile_stack: tuple[Stack, Outage],
) -> None:
    """tenantauth answering 503 itself (Redis and PostgreSQL both gone: it fails closed) is
    a 503 for the client, and the upstream is not reached."""
    stack, outage = fragile_stack
    _tenant(stack)
    token = _issue(stack, "acme")
    assert stack.bearer("/api/up", token).status == 200
    outage.both_down()
    reply = stack.bearer("/api/outage", token)
    assert reply.status == 503, (reply, stack.gateway.output()[-2000:])
    assert stack.upstream.requests_to("/api/outage") == []
