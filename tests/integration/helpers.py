"""Assertions and request helpers shared by the integration tests (no fixtures here)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import jwt
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support import ISSUER, admin_headers, tenant_issuer

PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "code", "request_id"}
TENANTS = "/v1/admin/tenants"
ADMIN = admin_headers()
#: Text that must never reach a client: Python tracebacks and source locations.
TRACEBACK_MARKERS = ("Traceback", 'File "', "Exception", "Error:")


def assert_problem(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body = response.get_json(force=True)
    assert isinstance(body, dict)
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["instance"] == response.request.path
    assert body["type"] == f"{ISSUER}/problems/{body['code']}"
    assert all(isinstance(body[m], str) and body[m] for m in PROBLEM_MEMBERS - {"status"})
    assert response.headers["X-Request-Id"] == body["request_id"]
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    if code is not None:
        assert body["code"] == code, body
    return body  # type: ignore[no-any-return]


def assert_json(response: TestResponse, status: int) -> Any:
    """Assert a successful ``application/json`` response with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    return response.get_json()


def bearer(token: str) -> dict[str, str]:
    """Return an Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def create_tenant(client: FlaskClient, tenant_id: str, **body: Any) -> dict[str, Any]:
    """Create a tenant through the API and return its JSON."""
    payload = {"id": tenant_id, "name": tenant_id.title(), **body}
    return assert_json(client.post(TENANTS, json=payload, headers=ADMIN), 201)  # type: ignore[no-any-return]


def issue(client: FlaskClient, tenant_id: str, sub: str = "user-42", **body: Any) -> str:
    """Mint a token through the API and return it."""
    r = client.post(f"{TENANTS}/{tenant_id}/tokens", json={"sub": sub, **body}, headers=ADMIN)
    return assert_json(r, 201)["access_token"]  # type: ignore[no-any-return]


def verify_status(client: FlaskClient, token: str) -> int:
    """Return the status of ``GET /v1/verify`` for ``token``."""
    return client.get("/v1/verify", headers=bearer(token)).status_code


def new_secret() -> tuple[bytes, str]:
    """Return 32 random bytes and their base64url text (as an operator would import it)."""
    raw = secrets.token_bytes(32)
    return raw, base64.urlsafe_b64encode(raw).decode()


def claims_for(tenant_id: str, now: float, **overrides: Any) -> dict[str, Any]:
    """Return the claims tenantauth itself would put in a 900 s token issued at ``now``."""
    t = int(now)
    claims: dict[str, Any] = {
        "iss": tenant_issuer(tenant_id),
        "sub": "user-42",
        "aud": "tenantauth",
        "exp": t + 900,
        "iat": t,
        "nbf": t,
        "jti": secrets.token_urlsafe(16),
        "tid": tenant_id,
    }
    claims.update(overrides)
    return claims


def sign(key: bytes, claims: dict[str, Any], kid: str) -> str:
    """Sign ``claims`` with PyJWT as HS256 with the header tenantauth expects."""
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT", "kid": kid})
