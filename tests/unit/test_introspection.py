"""Introspection (RFC 7662) and resource server authentication, over SQLite + fakeredis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.domain.models import Client
from tenantauth.domain.oauth.introspection import (
    authenticate_resource_server,
    introspect_anywhere,
    introspect_at_tenant,
    introspect_for_client,
    introspect_for_server,
)
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.domain.oauth.resource_servers import (
    create_resource_server,
    get_resource_server,
    secret_hasher,
)
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import rotate_tenant
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidClientError, OAuthError, RateLimitedError
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, add_client
from tests.support import MASTER_KEY
from tests.unit.helpers import OTHER_SECRET, claims, forge, header

pytestmark = pytest.mark.usefixtures("acme", "other")
INACTIVE = {"active": False}


def issue(svc: Services, tenant_id: str = "acme", **kwargs: Any) -> str:
    """Mint an access token of ``tenant_id`` for user-1."""
    request = TokenRequest(tenant_id, "user-1", **kwargs)
    return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token


def server(
    svc: Services, tenants: tuple[str, ...] = ("acme",), audience: str | None = None
) -> tuple[ResourceServer, str]:
    """Register a resource server; return it and its secret."""
    return create_resource_server(svc, "API", list(tenants), audience)


def creds(made: tuple[ResourceServer, str]) -> ClientCredentials:
    """The HTTP Basic credentials of a server."""
    return ClientCredentials(made[0].id, made[1], "client_secret_basic")


def client(svc: Services) -> Client:
    """Client tac_app of acme."""
    return add_client(svc, "acme")


def test_active_access_token_shows_what_verify_shows(svc: Services) -> None:
    """Introspection shows every claim /v1/verify shows (custom claims and kv) plus its own."""
    rotate_tenant(svc, "acme")  # so the token carries kv = 2
    token = issue(svc, claims={"plan": "pro", "roles": ["a", "b"]}, scope="read")
    verified = svc.verifier.verify(token).claims
    assert verified["kv"] == 2
    assert verified["plan"] == "pro"
    body = introspect_for_client(svc, "acme", client(svc), token)
    assert body == {**verified, "active": True, "token_type": "Bearer"}
    made = server(svc)
    assert introspect_for_server(svc, made[0], token) == body


def test_rfc_members_win_over_custom_claims_of_the_same_name(svc: Services) -> None:
    """A token (signed elsewhere with the imported secret) claiming active=false or its own
    token_type cannot change what introspection says about it."""
    token = forge(payload=claims(active=False, token_type="weird"))
    body = introspect_for_client(svc, "acme", client(svc), token)
    assert (body["active"], body["token_type"]) == (True, "Bearer")


@pytest.mark.parametrize(
    ("aud", "asked", "active"),
    [
        ("orders", "orders", True),
        (["billing", "orders"], "orders", True),
        ("orders", "billing", False),
        (["billing", "x"], "orders", False),
        ("ordersx", "orders", False),
    ],
)
def test_expected_audience_must_be_in_aud(
    svc: Services, aud: str | list[str], asked: str, active: bool
) -> None:
    """With ``audience`` the token is active only if its aud names it exactly."""
    token = issue(svc, audience=aud)
    assert introspect_for_client(svc, "acme", client(svc), token, asked)["active"] is active


def test_server_audience_and_request_audience_both_apply(svc: Services) -> None:
    """A server's configured audience must be in aud, and so must the request's."""
    made, _ = server(svc, audience="orders")
    both = issue(svc, audience=["orders", "billing"])
    assert introspect_for_server(svc, made, both)["active"] is True
    assert introspect_for_server(svc, made, both, "billing")["active"] is True
    assert introspect_for_server(svc, made, both, "shipping") == INACTIVE
    assert introspect_for_server(svc, made, issue(svc, audience="billing")) == INACTIVE


def test_server_sees_only_tokens_of_its_tenants(svc: Services) -> None:
    """Tokens of a tenant the server is not allowed for are inactive, wherever it asks."""
    made, _ = server(svc, ("acme",))
    theirs = issue(svc, "other")
    assert introspect_for_server(svc, made, theirs) == INACTIVE
    assert introspect_for_server(svc, made, theirs, tenant_id="other") == INACTIVE
    assert introspect_for_server(svc, made, issue(svc), tenant_id="other") == INACTIVE
    assert introspect_for_server(svc, made, issue(svc), tenant_id="acme")["active"] is True


def test_servers_never_see_refresh_tokens(svc: Services) -> None:
    """A refresh-token-shaped value is inactive for a server (only its client may ask)."""
    made, _ = server(svc)
    assert introspect_for_server(svc, made, "tart_" + "A" * 43) == INACTIVE


def test_authentication_refuses_wrong_secrets_and_other_tenants_alike(svc: Services) -> None:
    """A wrong secret, an unknown id, a client id and a tenant not allowed: one answer."""
    made = server(svc, ("acme",))
    assert authenticate_resource_server(svc, creds(made), None, "acme") == made[0]
    assert authenticate_resource_server(svc, creds(made), None) == made[0]
    refusals = [
        (ClientCredentials(made[0].id, made[1] + "x", "client_secret_basic"), "acme"),
        (ClientCredentials("tar_" + "A" * 22, made[1], "client_secret_basic"), "acme"),
        (ClientCredentials("tar_\x00", made[1], "client_secret_basic"), None),
        (creds(made), "other"),
    ]
    messages = set()
    for credentials, tenant_id in refusals:
        with pytest.raises(InvalidClientError) as caught:
            authenticate_resource_server(svc, credentials, None, tenant_id)
        messages.add(caught.value.detail)
    assert len(messages) == 1


def test_failed_attempts_lock_the_server_across_tenants(svc: Services) -> None:
    """Guesses at one server's secret count against one counter, whatever tenant they name:
    after 5 the right secret is refused too (429), at every endpoint."""
    made = server(svc, ("acme", "other"))
    wrong = ClientCredentials(made[0].id, "tars_wrong", "client_secret_basic")
    for tenant_id in ("acme", "other", None, "acme", "other"):
        with pytest.raises(InvalidClientError):
            authenticate_resource_server(svc, wrong, None, tenant_id)
    with pytest.raises(RateLimitedError):
        authenticate_resource_server(svc, creds(made), None)


def test_secret_hashed_under_an_old_master_key_moves_to_the_new_one(svc: Services) -> None:
    """After a master-key rotation the secret still works and is re-hashed on first use."""
    made = server(svc)
    new_key = bytes(range(64, 96))
    rotated = replace(svc, keyring=MasterKeyring.from_keys(new_key, [MASTER_KEY]))
    assert authenticate_resource_server(rotated, creds(made), None, "acme").id == made[0].id
    stored = get_resource_server(rotated, made[0].id).secret_hash
    assert stored == secret_hasher(rotated).hash(made[1]) != made[0].secret_hash
    only_new = replace(svc, keyring=MasterKeyring.from_keys(new_key))
    assert authenticate_resource_server(only_new, creds(made), None).id == made[0].id


def test_at_tenant_routes_by_id_prefix(svc: Services) -> None:
    """At a tenant endpoint, tar_ ids authenticate as servers and others as clients; a
    missing token is invalid_request only after authentication."""
    add_client(svc, "acme")
    made = server(svc)
    token = issue(svc)
    as_client = ClientCredentials(CLIENT_ID, CLIENT_SECRET, "client_secret_post")
    for credentials in (as_client, creds(made)):
        body = introspect_at_tenant(svc, "acme", credentials, None, token=token)
        assert body["active"] is True
        with pytest.raises(OAuthError):
            introspect_at_tenant(svc, "acme", credentials, None, token=None)
    with pytest.raises(InvalidClientError):
        introspect_anywhere(svc, as_client, None, token=token)  # clients: tenant endpoint only
    assert introspect_anywhere(svc, creds(made), None, token=token)["active"] is True


def test_tokens_of_a_rotated_tenant_are_inactive(svc: Services) -> None:
    """Rotation revokes for introspection as it does for /v1/verify."""
    made, _ = server(svc, ("acme", "other"))
    token = forge(header(kid="other"), claims(tid="other"), OTHER_SECRET)
    assert introspect_for_server(svc, made, token)["active"] is True
    rotate_tenant(svc, "other")
    assert introspect_for_server(svc, made, token) == INACTIVE
