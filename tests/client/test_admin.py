"""The admin helpers of ``TenantAuthClient`` against a real production-mode tenantauth, and the
mapping of its error answers to the client's exception hierarchy."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import urllib3

from tenantauth_client import (
    BadRequest,
    ClientCredentials,
    ConfigurationError,
    Conflict,
    InvalidToken,
    NotFound,
    PermissionDenied,
    TenantAuthClient,
    TenantAuthClientError,
    Unauthorized,
)
from tests.client.conftest import Tenant, base_url
from tests.e2e.harness import Server, call
from tests.support import ADMIN_TOKEN

PASSWORD = "correct horse battery staple"


@pytest.mark.e2e
def test_tenant_lifecycle(admin: TenantAuthClient) -> None:
    """create_tenant returns the tenant (never a secret), get_tenant shows it, a second
    create is a Conflict, rotate raises key_version, delete makes it NotFound."""
    tenant_id = f"t-{secrets.token_hex(5)}"
    created = admin.create_tenant(tenant_id, "Acme", access_token_ttl=120, max_token_ttl=600)
    assert (created["id"], created["name"], created["key_version"]) == (tenant_id, "Acme", 1)
    assert (created["access_token_ttl"], created["max_token_ttl"]) == (120, 600)
    assert "secret" not in json.dumps(created)
    assert admin.get_tenant(tenant_id)["status"] == "active"
    with pytest.raises(Conflict) as caught:
        admin.create_tenant(tenant_id, "Again")
    assert caught.value.status == 409 and caught.value.request_id
    assert admin.rotate_tenant(tenant_id)["key_version"] == 2
    admin.delete_tenant(tenant_id)
    with pytest.raises(NotFound):
        admin.get_tenant(tenant_id)
    with pytest.raises(NotFound):
        admin.delete_tenant(tenant_id)


@pytest.mark.e2e
def test_users_and_clients_work_with_the_oauth_endpoints(
    live: Server, admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """A user made by create_user and a client made by create_client obtain tokens from the
    tenant's OAuth token endpoint (password and client credentials grants) that verify."""
    user = admin.create_user(tenant.id, "bob", PASSWORD, claims={"dept": "ops"})
    assert user["username"] == "bob" and PASSWORD not in json.dumps(user)
    creds = admin.create_client(tenant.id, "Billing", ["read"], ["client_credentials", "password"])
    assert isinstance(creds, ClientCredentials)
    client_id, client_secret = creds
    assert client_secret not in repr(creds) and creds.info["name"] == "Billing"
    for fields in (
        {"grant_type": "client_credentials", "scope": "read"},
        {"grant_type": "password", "username": "bob", "password": PASSWORD},
    ):
        token = oauth_token(live, tenant.id, client_id, client_secret, fields)
        claims = verifier.verify(token)
        assert claims.tenant_id == tenant.id
    assert (claims.subject, claims.raw["dept"]) == ("bob", "ops")
    with pytest.raises(Conflict):
        admin.create_user(tenant.id, "bob", PASSWORD)


@pytest.mark.e2e
def test_path_segments_are_percent_encoded(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """A subject with characters reserved in URLs (? # % / space, .., non-ASCII) is revoked
    as itself, and no other subject is."""
    bystander = admin.issue_token(tenant.id, "a")
    for subject in ("a?b#c d%2F€", "team/alice", "..", "/a"):
        token = admin.issue_token(tenant.id, subject)
        assert verifier.verify(token).subject == subject
        assert admin.revoke_user(tenant.id, subject)["subject"] == subject
        with pytest.raises(InvalidToken):
            verifier.verify(token)
    assert verifier.verify(bystander).subject == "a"


@pytest.mark.e2e
def test_admin_errors_carry_the_problem(
    live: Server, admin: TenantAuthClient, tenant: Tenant
) -> None:
    """A refused body is BadRequest (422) with code, detail and request id; an unknown tenant
    NotFound; a wrong admin token Unauthorized (not InvalidToken); a tenant admin key
    PermissionDenied outside its tenant."""
    with pytest.raises(BadRequest) as caught:
        admin.create_tenant("Not_A_Valid_Id", "x")
    error = caught.value
    assert (error.status, error.code) == (422, "invalid_request")
    assert error.detail and error.request_id and error.title
    with pytest.raises(NotFound):
        admin.issue_token("no-such-tenant", "alice")
    intruder = TenantAuthClient(base_url(live), "wrong-" + "x" * 30)
    with intruder, pytest.raises(Unauthorized) as refused:
        intruder.issue_token(tenant.id, "alice")
    assert not isinstance(refused.value, InvalidToken)
    with TenantAuthClient(base_url(live), tenant_admin_key(live, tenant.id)) as scoped:
        assert scoped.issue_token(tenant.id, "alice")
        with pytest.raises(PermissionDenied):
            scoped.create_tenant(f"t-{secrets.token_hex(5)}", "x")


def test_configuration_errors() -> None:
    """Admin calls without an admin token, and base URLs that are not http(s) with a host,
    raise ConfigurationError (a TenantAuthClientError and a ValueError) before any I/O."""
    client = TenantAuthClient("http://127.0.0.1:9")
    with client, pytest.raises(ConfigurationError, match="admin_token"):
        client.rotate_tenant("acme")
    for url in ("ftp://host", "http://", "http://host/?q=1", "not a url"):
        with pytest.raises(ConfigurationError):
            TenantAuthClient(url)
    with pytest.raises(ValueError, match="retries"):
        TenantAuthClient("http://127.0.0.1:9", retries=-1)
    assert issubclass(ConfigurationError, TenantAuthClientError)
    assert TenantAuthClient("http://h:1/prefix/").base_url == "http://h:1/prefix"


def oauth_token(
    live: Server, tenant_id: str, client_id: str, secret: str, fields: dict[str, str]
) -> str:
    """Return the access token of one RFC 6749 token request (HTTP Basic client auth)."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = urllib3.PoolManager().request_encode_body(
        "POST",
        f"{base_url(live)}/v1/tenants/{tenant_id}/token",
        fields=fields,
        encode_multipart=False,
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status == 200, response.data
    return str(response.json()["access_token"])


def tenant_admin_key(live: Server, tenant_id: str) -> str:
    """Create an admin API key scoped to ``tenant_id``; return it."""
    reply = call(
        live.port,
        "POST",
        "/v1/admin/keys",
        token=ADMIN_TOKEN,
        body={"name": "scoped", "tenant_id": tenant_id},
    )
    assert reply.status == 201, reply
    return str(reply.json()["key"])
