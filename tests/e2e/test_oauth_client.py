"""Proof with a real third-party OAuth client: Authlib's ``OAuth2Session`` (requests) against a
real server (gunicorn, 3 workers, PostgreSQL + Redis) — client credentials, password,
refresh (rotation and reuse detection), revocation and introspection, then /v1/verify."""

from __future__ import annotations

from typing import Any

import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tenantauth.domain.services import Services
from tests.e2e.harness import HOST, Admin, Server
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, add_client, add_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def base(server: Server, pg_services: Services) -> str:
    """Tenant acme with client tac_app and user alice on the running server; its OAuth base URL."""
    Admin(server.port).create_tenant("acme")
    add_client(pg_services, "acme")
    add_user(pg_services, "acme", claims={"dept": "ops"})
    return f"http://{HOST}:{server.port}/v1/tenants/acme"


def session(method: str = "client_secret_basic", **kw: Any) -> OAuth2Session:
    """An Authlib session for tac_app authenticating with ``method``."""
    return OAuth2Session(CLIENT_ID, CLIENT_SECRET, token_endpoint_auth_method=method, **kw)


def verify(s: OAuth2Session, server_base: str) -> dict[str, Any]:
    """GET /v1/verify with the session's access token (Authlib adds the Bearer header)."""
    r = s.get(server_base.split("/v1/", maxsplit=1)[0] + "/v1/verify")
    assert r.status_code == 200, r.text
    return r.json()["claims"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(base: str, method: str) -> None:
    """Authlib obtains a client-credentials token that verifies at /v1/verify."""
    with session(method, scope="read") as s:
        token = s.fetch_token(f"{base}/token", grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "read"
        assert "refresh_token" not in token
        claims = verify(s, base)
    assert (claims["sub"], claims["client_id"], claims["tid"]) == (CLIENT_ID, CLIENT_ID, "acme")


def test_password_refresh_revoke_introspect(base: str) -> None:
    """Password grant, refresh (rotated), introspection and revocation through Authlib."""
    with session() as s:
        first = s.fetch_token(f"{base}/token", username=USERNAME, password=PASSWORD)
        assert verify(s, base)["dept"] == "ops"
        refreshed = s.refresh_token(f"{base}/token", refresh_token=first["refresh_token"])
        assert refreshed["refresh_token"] != first["refresh_token"]
        claims = verify(s, base)
        assert (claims["sub"], claims["client_id"]) == (USERNAME, CLIENT_ID)

        described = s.introspect_token(f"{base}/introspect", token=refreshed["access_token"])
        assert described.status_code == 200
        body = described.json()
        assert (body["active"], body["sub"], body["client_id"]) == (True, USERNAME, CLIENT_ID)
        described = s.introspect_token(f"{base}/introspect", token=refreshed["refresh_token"])
        assert described.json()["token_type"] == "refresh_token"

        s.revoke_token(
            f"{base}/revoke", token=refreshed["access_token"], token_type_hint="access_token"
        )
        assert s.get(base.split("/v1/", maxsplit=1)[0] + "/v1/verify").status_code == 401
        s.revoke_token(
            f"{base}/revoke", token=refreshed["refresh_token"], token_type_hint="refresh_token"
        )
        gone = s.introspect_token(f"{base}/introspect", token=refreshed["refresh_token"])
        assert gone.json() == {"active": False}
        with pytest.raises(OAuthError) as info:
            s.refresh_token(f"{base}/token", refresh_token=refreshed["refresh_token"])
        assert info.value.error == "invalid_grant"


def test_reused_refresh_token_is_refused(base: str) -> None:
    """A rotated refresh token presented later is refused with invalid_grant (grace is 10 s,
    so the reuse here is a retry and works once; the family then keeps one live token)."""
    with session() as s:
        first = s.fetch_token(f"{base}/token", username=USERNAME, password=PASSWORD)
        lost = s.refresh_token(f"{base}/token", refresh_token=first["refresh_token"])
        retried = s.refresh_token(f"{base}/token", refresh_token=first["refresh_token"])
        assert retried["refresh_token"] != lost["refresh_token"]
        with pytest.raises(OAuthError) as info:
            s.refresh_token(f"{base}/token", refresh_token=lost["refresh_token"])
        assert info.value.error == "invalid_grant"


def test_errors_reach_the_library(base: str) -> None:
    """Authlib understands our RFC 6749 §5.2 bodies: invalid_client and invalid_grant."""
    with OAuth2Session(CLIENT_ID, "wrong") as s, pytest.raises(OAuthError) as info:
        s.fetch_token(f"{base}/token", grant_type="client_credentials")
    assert info.value.error == "invalid_client"
    with session() as s, pytest.raises(OAuthError) as info:
        s.fetch_token(f"{base}/token", username=USERNAME, password="wrong")
    assert info.value.error == "invalid_grant"
