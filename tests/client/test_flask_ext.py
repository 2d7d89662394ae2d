"""``tenantauth_client.flask``: the ``TenantAuth`` extension and ``require_token``, in a Flask
app of its own (a resource server) driven by Flask's test client, verifying against a real
production-mode tenantauth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from tenantauth_client import TenantAuthClient
from tenantauth_client.flask import TenantAuth, current_claims, require_token
from tests.client.conftest import Tenant, base_url
from tests.e2e.harness import Server, free_port

pytestmark = pytest.mark.e2e


def resource_server(tenantauth_url: str, **config: Any) -> Flask:
    """A small protected API: /public, /me (any valid token), /reports (scope reports:read),
    /admin (scopes admin and write), /billing (audience billing)."""
    app = Flask("resource-server")
    app.config.update(TENANTAUTH_URL=tenantauth_url, TENANTAUTH_RETRIES=0, **config)
    TenantAuth(app)

    @app.get("/public")
    def public() -> dict[str, str]:
        return {"public": "yes"}

    @app.get("/me")
    @require_token()
    def me() -> dict[str, Any]:
        claims = current_claims()
        assert g.tenantauth_claims is claims
        return {"tenant": claims.tenant_id, "sub": claims.subject}

    @app.get("/reports")
    @require_token(scope="reports:read")
    def reports() -> dict[str, str]:
        return {"reports": current_claims().subject}

    @app.get("/admin")
    @require_token(scope=["admin", "write"])
    def admin_area() -> dict[str, str]:
        return {"admin": "yes"}

    @app.get("/billing")
    @require_token(audience="billing")
    def billing() -> dict[str, str]:
        return {"billing": "yes"}

    return app


@pytest.fixture
def api(live: Server) -> FlaskClient:
    """The test client of a resource server protected by the live tenantauth."""
    return resource_server(base_url(live)).test_client()


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def problem(response: Any) -> dict[str, Any]:
    """Assert a problem+json body and return it."""
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.data)
    assert body["status"] == response.status_code
    return body


def test_valid_token_reaches_the_view_with_claims_on_g(
    api: FlaskClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """A valid token runs the view, which finds the verified claims on flask.g."""
    token = admin.issue_token(tenant.id, "alice", scope="reports:read")
    response = api.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {"tenant": tenant.id, "sub": "alice"}
    assert api.get("/reports", headers=bearer(token)).json == {"reports": "alice"}
    assert api.get("/public").status_code == 200  # unprotected views are untouched


def test_missing_credentials_get_a_challenge_without_error_code(api: FlaskClient) -> None:
    """No Authorization, or another scheme: 401 with WWW-Authenticate: Bearer realm="api"
    and no error code (RFC 6750 §3.1)."""
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}):
        response = api.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert problem(response)["code"] == "unauthenticated"


def test_bad_tokens_get_invalid_token(
    api: FlaskClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """Garbage, a malformed credential, and a token revoked by rotation all get the same 401
    with error="invalid_token"; the view never runs."""
    token = admin.issue_token(tenant.id, "alice")
    assert api.get("/me", headers=bearer(token)).status_code == 200
    admin.rotate_tenant(tenant.id)
    malformed = ("Bearer a b", "Bearer ", "Bearer a,b", 'Bearer {"protected": "x"}')
    for value in (f"Bearer {token}", f"bearer {token}", "Bearer a.b.c", *malformed):
        response = api.get("/me", headers={"Authorization": value})
        assert response.status_code == 401, value
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
        assert problem(response)["code"] == "invalid_token"


def test_missing_scope_is_403_insufficient_scope(
    api: FlaskClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """A valid token without a required scope gets 403 error="insufficient_scope" naming the
    scope the resource needs (RFC 6750 §3.1)."""
    token = admin.issue_token(tenant.id, "alice", scope="reports:write admin")
    response = api.get("/reports", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read"'
    )
    assert problem(response)["code"] == "insufficient_scope"
    response = api.get("/admin", headers=bearer(token))
    assert response.headers["WWW-Authenticate"].endswith('scope="admin write"')
    assert (
        api.get(
            "/admin", headers=bearer(admin.issue_token(tenant.id, "a", scope="write admin"))
        ).status_code
        == 200
    )


def test_audience_of_the_decorator_is_enforced(
    api: FlaskClient, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """require_token(audience="billing") accepts only tokens for that audience."""
    assert (
        api.get(
            "/billing", headers=bearer(admin.issue_token(tenant.id, "a", aud="billing"))
        ).status_code
        == 200
    )
    response = api.get("/billing", headers=bearer(admin.issue_token(tenant.id, "a")))
    assert response.status_code == 401


def test_unavailable_tenantauth_fails_closed_with_503(
    admin: TenantAuthClient, tenant: Tenant
) -> None:
    """When tenantauth cannot be reached the view never runs: 503 problem, no challenge."""
    token = admin.issue_token(tenant.id, "alice")
    api = resource_server(f"http://127.0.0.1:{free_port()}", TENANTAUTH_TIMEOUT=0.5).test_client()
    response = api.get("/me", headers=bearer(token))
    assert response.status_code == 503
    assert "WWW-Authenticate" not in response.headers
    assert problem(response)["code"] == "unavailable"


def test_extension_configuration(live: Server) -> None:
    """init_app builds the client from the config (realm and cache included), a given client
    is used as is, and a view of an app without the extension fails loudly."""
    app = resource_server(base_url(live), TENANTAUTH_REALM="reports", TENANTAUTH_VERIFY_CACHE_TTL=5)
    client = TenantAuth.client_for(app)
    assert client.base_url == base_url(live) and client.cache is not None
    assert app.test_client().get("/me").headers["WWW-Authenticate"] == 'Bearer realm="reports"'
    mine = TenantAuthClient(base_url(live))
    other = Flask("other")
    TenantAuth(client=mine).init_app(other)
    assert TenantAuth.client_for(other) is mine
    bare = Flask("bare")
    bare.get("/x")(require_token()(lambda: "x"))
    bare.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.test_client().get("/x")
    with pytest.raises(ValueError, match="scope"):
        require_token(scope='bad"scope')
