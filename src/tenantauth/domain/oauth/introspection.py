"""Token introspection (RFC 7662) for clients of a tenant and for resource servers.

Who may ask (RFC 7662 §2.1 requires the caller to be authorized, §4 that the endpoint not be
an oracle for token scanning):

- a client of the tenant (``oauth.authenticate_client``), at that tenant's endpoint;
- a resource server (``authenticate_resource_server``), at the endpoint of a tenant it is
  allowed for — any other tenant is the same ``invalid_client`` as a wrong secret — or at
  the tenant-less endpoint, where a token of a tenant it is not allowed for is inactive.

What an active access token shows is the verdict's claims — exactly what ``/v1/verify``
returns for the same token, custom claims and ``kv`` included — plus ``active`` and
``token_type``.
An expected audience (the server's own, and the request's ``audience`` parameter, an RFC 7662
§2.1 extension) must each be in the token's ``aud``, or the token is inactive.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from tenantauth.crypto.client_secrets import RESOURCE_SERVER_ID_PREFIX
from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.domain.limits import failure_keys, user_key
from tenantauth.domain.models import Client
from tenantauth.domain.oauth import refresh
from tenantauth.domain.oauth.oauth import DUMMY_HASH, ClientCredentials, authenticate_client
from tenantauth.domain.oauth.resource_servers import SERVER_ID_RE, secret_hasher
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import require_tenant_id
from tenantauth.errors import InvalidClientError, InvalidTokenError, OAuthError

log = logging.getLogger(__name__)

#: The failure-counter scope of resource servers: not a tenant id (no "~" in those), so their
#: counters never meet a tenant's, and one counter per server spans every tenant it may ask.
LIMIT_SCOPE = "~resource-servers"
INACTIVE: Mapping[str, Any] = {"active": False}


def is_resource_server_id(client_id: str) -> bool:
    """Return whether an id presented as a client's names a resource server (``tar_``)."""
    return client_id.startswith(RESOURCE_SERVER_ID_PREFIX)


def authenticate_resource_server(
    svc: Services,
    credentials: ClientCredentials,
    client_ip: str | None,
    tenant_id: str | None = None,
) -> ResourceServer:
    """Authenticate a resource server by id and secret (RFC 7662 §2.1); return it.

    With ``tenant_id`` the server must also be allowed for that tenant. Raises
    ``NotFoundError`` for a tenant id that cannot exist, ``RateLimitedError`` while the id or
    address is locked, ``InvalidClientError`` — one message — for an unknown id, a wrong
    secret or a tenant it is not allowed for, ``DependencyUnavailableError``.
    """
    if tenant_id is not None:
        require_tenant_id(tenant_id)
    keys = failure_keys(LIMIT_SCOPE, credentials.client_id, client_ip)
    svc.limiter.check(keys)
    server = None
    if SERVER_ID_RE.fullmatch(credentials.client_id):
        with svc.storage.transaction() as tx:
            server = tx.resource_servers.get(credentials.client_id)
    hasher = secret_hasher(svc)
    matched = hasher.verify(credentials.secret, server.secret_hash if server else DUMMY_HASH)
    if server is None or not matched:
        svc.limiter.record_failure(keys)
        log.info("resource server authentication failed")
        raise InvalidClientError("Client authentication failed.")
    svc.limiter.reset([user_key(LIMIT_SCOPE, server.id)])
    if tenant_id is not None and tenant_id not in server.tenants:
        # The same answer as a wrong secret: a caller learns nothing about other tenants.
        log.info("resource server %s is not allowed for tenant %s", server.id, tenant_id)
        raise InvalidClientError("Client authentication failed.")
    _upgrade_hash(svc, server, hasher.hash(credentials.secret))
    return server


def _upgrade_hash(svc: Services, server: ResourceServer, current: bytes) -> None:
    """Store ``current`` (the secret's hash under the current master key) if the server holds
    a hash under an older key; conditional, so a secret rotated meanwhile is never written
    back (docs/design.md, "Master-key rotation")."""
    if not hmac.compare_digest(current, server.secret_hash):
        with svc.storage.transaction() as tx:
            tx.resource_servers.rehash(server.id, server.secret_hash, current)


def introspect_at_tenant(
    svc: Services,
    tenant_id: str,
    credentials: ClientCredentials,
    client_ip: str | None,
    *,
    token: str | None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Authenticate the caller — a client of the tenant, or a resource server allowed for it
    (told apart by the id's prefix) — then describe ``token`` to it (RFC 7662 §2).

    Returns the introspection response. Raises what the authentication raises (404, 429,
    ``InvalidClientError``), then ``OAuthError`` when ``token`` is missing,
    ``DependencyUnavailableError``.
    """
    if is_resource_server_id(credentials.client_id):
        server = authenticate_resource_server(svc, credentials, client_ip, tenant_id)
        return introspect_for_server(svc, server, _required(token), audience, tenant_id)
    client = authenticate_client(svc, tenant_id, credentials, client_ip)
    return introspect_for_client(svc, tenant_id, client, _required(token), audience)


def introspect_anywhere(
    svc: Services,
    credentials: ClientCredentials,
    client_ip: str | None,
    *,
    token: str | None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Authenticate a resource server, then describe ``token``, of any tenant it is allowed
    for, to it (RFC 7662 §2); clients have no business here (``InvalidClientError``).

    Returns the introspection response. Raises ``RateLimitedError``, ``InvalidClientError``,
    then ``OAuthError`` when ``token`` is missing, ``DependencyUnavailableError``.
    """
    server = authenticate_resource_server(svc, credentials, client_ip)
    return introspect_for_server(svc, server, _required(token), audience)


def introspect_for_client(
    svc: Services, tenant_id: str, client: Client, token: str, audience: str | None = None
) -> dict[str, Any]:
    """Describe a token to an authenticated client of the tenant (RFC 7662 §2.2).

    Returns ``{"active": False}`` for anything not valid here (bad, expired, revoked, another
    tenant's, without ``audience`` in ``aud``; refresh tokens of another client, already
    rotated, or asked about with an ``audience``, which they do not carry). Access tokens are
    checked by the verifier (one cache round trip). Raises ``DependencyUnavailableError``.
    """
    if refresh.is_refresh_token(token):
        if audience is not None:
            return dict(INACTIVE)
        return _refresh_view(svc, tenant_id, client, token)
    return _access_view(svc, token, {tenant_id}, _expected(audience))


def introspect_for_server(
    svc: Services,
    server: ResourceServer,
    token: str,
    audience: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """Describe an access token to an authenticated resource server (RFC 7662 §2.2).

    The token must belong to ``tenant_id`` when given, and in any case to a tenant the server
    is allowed for, and name the server's audience and ``audience`` in its ``aud``; anything
    else — refresh tokens included, which only their client may inspect — is
    ``{"active": False}``. Raises ``DependencyUnavailableError``.
    """
    if refresh.is_refresh_token(token):
        return dict(INACTIVE)
    tenants = set(server.tenants) if tenant_id is None else {tenant_id} & set(server.tenants)
    return _access_view(svc, token, tenants, _expected(server.audience, audience))


def _access_view(
    svc: Services, token: str, tenants: set[str], audiences: list[str]
) -> dict[str, Any]:
    try:
        verdict = svc.verifier.verify(token)
    except InvalidTokenError:
        return dict(INACTIVE)
    if verdict.tenant_id not in tenants:
        return dict(INACTIVE)
    aud = verdict.claims["aud"]  # the verifier checked it: a string or a list of strings
    if any(a != aud and (isinstance(aud, str) or a not in aud) for a in audiences):
        log.info("introspection: audience not in the token (tenant %s)", verdict.tenant_id)
        return dict(INACTIVE)
    # RFC 7662 §2.2's own members win over custom claims of the same names.
    return {**verdict.claims, "active": True, "token_type": "Bearer"}


def _refresh_view(svc: Services, tenant_id: str, client: Client, token: str) -> dict[str, Any]:
    stored = refresh.find_live(svc, tenant_id, client.client_id, token)
    if stored is None:
        return dict(INACTIVE)
    return {
        "active": True,
        "scope": stored.scope,
        "client_id": stored.client_id,
        "username": stored.username,
        "exp": stored.expires_at,
        "iat": stored.issued_at,
        "token_type": "refresh_token",
    }


def _required(token: str | None) -> str:
    if token is None:
        raise OAuthError("token is required (RFC 7662 section 2.1).")
    return token


def _expected(*audiences: str | None) -> list[str]:
    return [a for a in audiences if a is not None]
