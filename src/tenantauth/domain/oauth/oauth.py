"""OAuth 2.0 client authentication, scopes, revocation (RFC 7009) and server metadata
(RFC 8414), per tenant. The token endpoint's grants are in ``grants.py``, introspection
(RFC 7662) in ``introspection.py``.

Brute force (issue 3): before a client secret is checked, ``limiter.check`` runs on keys built
from the client id *as sent* (never looked up first), failures are recorded for unknown clients
too, and a success resets only the client's own key, when it has failures to forget
(``domain/limits.py``).

Every authentication reads the tenant and the client from storage in one statement
(``Storage.load_client_state``): nothing about clients is cached, so a deleted client, a
rotated secret or a suspended tenant is refused from the next request on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenantauth.domain.limits import failure_keys, user_key
from tenantauth.domain.models import Client, ClientState, TenantStatus
from tenantauth.domain.oauth import clients, refresh
from tenantauth.domain.revocations import revoke_token
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import get_tenant, require_tenant_id
from tenantauth.domain.tokens import CONTROL_CHARACTERS, MAX_SCOPE_LENGTH, MAX_SUBJECT_LENGTH
from tenantauth.errors import InvalidClientError, InvalidScopeError, InvalidTokenError

log = logging.getLogger(__name__)

#: RFC 6749 §2.3.1 and RFC 8414 §2: the client authentication methods we support.
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: RFC 6749 §3.3: scope-token = 1*NQCHAR, joined by single spaces.
_SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*")
#: Static: never depends on the secret, so a wrong secret costs what a right one does.
DUMMY_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """A client id and secret as sent, and how (``client_secret_basic`` or ``_post``)."""

    client_id: str
    secret: str
    method: str


def plausible_name(name: str) -> bool:
    """Return whether ``name`` (a client id or username) could be stored: 1 to 255 characters
    without control characters. Others are never looked up (PostgreSQL refuses NUL in text)."""
    return 1 <= len(name) <= MAX_SUBJECT_LENGTH and not CONTROL_CHARACTERS.search(name)


def authenticate_client(
    svc: Services, tenant_id: str, credentials: ClientCredentials, client_ip: str | None
) -> Client:
    """Authenticate a client of an active tenant (RFC 6749 §2.3.1); return it.

    Raises ``NotFoundError`` for a tenant id that cannot exist, ``RateLimitedError`` while the
    client id or address is locked, ``InvalidClientError`` for an unknown client, a wrong
    secret or a tenant that is not active, ``DependencyUnavailableError`` (limiter or storage).
    """
    return authenticate_client_state(svc, tenant_id, credentials, client_ip)[0]


def authenticate_client_state(
    svc: Services, tenant_id: str, credentials: ClientCredentials, client_ip: str | None
) -> tuple[Client, ClientState]:
    """Authenticate a client as ``authenticate_client`` does, from one storage read.

    Returns the client and the state it was authenticated against: its tenant (active when
    read), and what the ``client_credentials`` grant needs to mint without reading again.
    Raises what ``authenticate_client`` raises.
    """
    require_tenant_id(tenant_id)
    keys = failure_keys(tenant_id, credentials.client_id, client_ip)
    counted = svc.limiter.check(keys)
    state = None
    if plausible_name(credentials.client_id):
        state = svc.storage.load_client_state(tenant_id, credentials.client_id)
    active = state is not None and state.tenant.status is TenantStatus.ACTIVE
    client = state.client if state is not None and active else None
    stored = client.secret_hash if client is not None else DUMMY_HASH
    matched = svc.client_secrets.verify(credentials.secret, stored)
    if state is None or client is None or not matched:
        svc.limiter.record_failure(keys)
        log.info("client authentication failed for tenant %s", tenant_id)
        raise InvalidClientError("Client authentication failed.")
    own = user_key(tenant_id, credentials.client_id)
    if own in counted:  # nothing to forget otherwise: spare the round trip
        svc.limiter.reset([own])
    client = clients.upgrade_secret_hash(svc, client, credentials.secret)  # master-key rotation
    return client, state


def resolve_scope(requested: str | None, allowed: Sequence[str]) -> str:
    """Return the scope to grant (RFC 6749 §3.3): the request, deduplicated, if every token is
    in ``allowed``; all of ``allowed`` when nothing (or only blanks) was requested.

    Raises ``InvalidScopeError`` for a malformed scope or one that exceeds ``allowed``.
    """
    if requested is None or not requested.strip():
        return " ".join(allowed)
    if len(requested) > MAX_SCOPE_LENGTH or not _SCOPE_RE.fullmatch(requested):
        raise InvalidScopeError(
            "scope must be space-separated tokens of printable ASCII without quotes or "
            f"backslashes, at most {MAX_SCOPE_LENGTH} characters (RFC 6749 section 3.3)."
        )
    wanted = list(dict.fromkeys(requested.split(" ")))
    extra = [s for s in wanted if s not in allowed]
    if extra:
        raise InvalidScopeError(f"Scope not allowed here: {' '.join(extra)}.")
    return " ".join(wanted)


def revoke(svc: Services, tenant_id: str, client: Client, token: str) -> None:
    """Revoke a token of ``client`` (RFC 7009 §2.1); anything else is a silent no-op (§2.2).

    Refresh tokens are recognised by their shape and revoked with their whole family (the
    grant). Access tokens are denylisted by ``jti`` until ``exp`` when they verify, belong to
    this tenant and carry this client's ``client_id``. The ``token_type_hint`` is not needed:
    the two kinds cannot be confused. Raises ``DependencyUnavailableError``.
    """
    if refresh.is_refresh_token(token):
        refresh.revoke_grant(svc, tenant_id, client.client_id, token)
        return
    try:
        verdict = svc.verifier.verify(token)
    except InvalidTokenError:
        return
    if verdict.tenant_id == tenant_id and verdict.claims.get("client_id") == client.client_id:
        revoke_token(svc, token, tenant_id)


def metadata(svc: Services, tenant_id: str, grant_types: Sequence[str]) -> dict[str, Any]:
    """Return the tenant's authorization server metadata (RFC 8414 §2).

    The issuer is the configured issuer + ``/v1/tenants/{id}`` (each tenant is its own
    authorization server, with its own keys); endpoint URLs are built from it, never from the
    request's Host header. Raises ``NotFoundError`` for unknown or deleted tenants.
    """
    get_tenant(svc, tenant_id)
    issuer = svc.tokens.issuer_for(tenant_id)
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",  # RFC 8414 §2
        "grant_types_supported": list(grant_types),
        "response_types_supported": [],  # no authorization endpoint (RFC 8414 §2)
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
    }
