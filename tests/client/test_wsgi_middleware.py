"""``tenantauth_client.wsgi.TenantAuthMiddleware`` around a plain WSGI application, called the
way a WSGI server calls it (stdlib ``wsgiref`` environ), verifying against a real
production-mode tenantauth."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from tenantauth_client import Claims, TenantAuthClient
from tenantauth_client.wsgi import ENVIRON_KEY, TenantAuthMiddleware
from tests.client.conftest import Tenant
from tests.e2e.harness import free_port

pytestmark = pytest.mark.e2e


@dataclass
class Upstream:
    """A WSGI app that records the claims of each request it receives."""

    seen: list[Claims | None] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Answer 200 with the subject it was given."""
        claims = environ.get(ENVIRON_KEY)
        self.seen.append(claims)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [(claims.subject if claims else "anonymous").encode()]


@dataclass
class Reply:
    """What the middleware answered."""

    status: str
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        """Assert a problem+json body and return it."""
        assert self.headers["Content-Type"] == "application/problem+json"
        assert int(self.headers["Content-Length"]) == len(self.body)
        return json.loads(self.body)  # type: ignore[no-any-return]


def call(app: Any, path: str = "/data", authorization: str | None = None) -> Reply:
    """Call ``app`` once as a WSGI server would; return its answer."""
    environ: dict[str, Any] = {"PATH_INFO": path}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    setup_testing_defaults(environ)
    started: list[Any] = []
    body = b"".join(app(environ, lambda status, headers: started.extend([status, headers])))
    return Reply(started[0], dict(started[1]), body)


def test_valid_token_passes_with_claims_in_environ(
    verifier: TenantAuthClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """A valid token with the scope reaches the app with its Claims in environ; exempt paths
    pass without a token."""
    upstream = Upstream()
    app = TenantAuthMiddleware(
        upstream, verifier, scope="read", exempt_paths=["/healthz", "/static/"]
    )
    token = admin.issue_token(tenant.id, "alice", scope="read write")
    reply = call(app, authorization=f"Bearer {token}")
    assert (reply.status, reply.body) == ("200 OK", b"alice")
    assert upstream.seen[0] is not None and upstream.seen[0].tenant_id == tenant.id
    for path in ("/healthz", "/static/app.js"):
        assert call(app, path).status == "200 OK"
    assert upstream.seen[1:] == [None, None]
    assert call(app, "/healthz/x").status.startswith("401")  # exact entries are exact


def test_refusals_follow_rfc_6750_and_never_reach_the_app(
    verifier: TenantAuthClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """No token: 401 without error code; a revoked token: 401 invalid_token; a token without
    the scope: 403 insufficient_scope with the scope; the app is never called."""
    upstream = Upstream()
    app = TenantAuthMiddleware(upstream, verifier, scope="read", realm="data")
    reader = admin.issue_token(tenant.id, "alice", scope="read")
    writer = admin.issue_token(tenant.id, "bob", scope="write")
    admin.revoke_user(tenant.id, "alice")
    missing = call(app)
    assert missing.status == "401 Unauthorized"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="data"'
    assert missing.problem()["code"] == "unauthenticated"
    revoked = call(app, authorization=f"Bearer {reader}")
    assert revoked.status == "401 Unauthorized"
    assert revoked.headers["WWW-Authenticate"] == 'Bearer realm="data", error="invalid_token"'
    assert revoked.problem()["code"] == "invalid_token"
    scoped = call(app, authorization=f"Bearer {writer}")
    assert scoped.status == "403 Forbidden"
    assert scoped.headers["WWW-Authenticate"] == (
        'Bearer realm="data", error="insufficient_scope", scope="read"'
    )
    assert scoped.problem()["code"] == "insufficient_scope"
    assert upstream.seen == []


def test_audience_and_unavailable_tenantauth(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """The middleware's audience is enforced; an unreachable tenantauth is a 503 (fail
    closed) and the app is not called."""
    upstream = Upstream()
    token = admin.issue_token(tenant.id, "alice", aud="billing")
    assert (
        call(
            TenantAuthMiddleware(upstream, verifier, audience="billing"),
            authorization=f"Bearer {token}",
        ).status
        == "200 OK"
    )
    assert call(
        TenantAuthMiddleware(upstream, verifier, audience="reports"),
        authorization=f"Bearer {token}",
    ).status.startswith("401")
    with TenantAuthClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0) as down:
        reply = call(TenantAuthMiddleware(upstream, down), authorization=f"Bearer {token}")
    assert reply.status == "503 Service Unavailable"
    assert reply.problem()["code"] == "unavailable" and "WWW-Authenticate" not in reply.headers
    assert len(upstream.seen) == 1
