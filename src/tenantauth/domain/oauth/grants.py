"""The token endpoint's grants (RFC 6749): client credentials (§4.4), resource owner password
(§4.3) and refresh token (§6). Access tokens are minted by ``issue_token``, so they carry
``kid``/``tid``/``uv`` and verify at /v1/verify; each carries the ``client_id`` it was issued to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tenantauth.domain.limits import failure_keys, user_key
from tenantauth.domain.models import Client, ClientState, UserStatus
from tenantauth.domain.oauth import refresh
from tenantauth.domain.oauth.oauth import (
    ClientCredentials,
    authenticate_client_state,
    plausible_name,
)
from tenantauth.domain.oauth.oauth import resolve_scope as _resolve_scope
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenRequest, issue_token, mint_token
from tenantauth.errors import (
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)

log = logging.getLogger(__name__)

CLIENT_CREDENTIALS = "client_credentials"
PASSWORD = "password"  # noqa: S105 - the RFC 6749 §4.3.2 grant type name
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - the RFC 6749 §6 grant type name
GRANT_TYPES = (CLIENT_CREDENTIALS, PASSWORD, REFRESH_TOKEN)
_BAD_LOGIN = "The username or password is wrong, or the user may not sign in."


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """The token request's parameters (RFC 6749 §4.3.2, §4.4.2, §6); None when absent."""

    grant_type: str | None
    scope: str | None = None
    username: str | None = None
    password: str | None = None
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scope: str | None
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - RFC 6749 §7.1 token type, not a secret


def grant_token(
    svc: Services,
    tenant_id: str,
    credentials: ClientCredentials | None,
    request: GrantRequest,
    client_ip: str | None,
) -> TokenResponse:
    """Authenticate the client, then run its grant; return the token response.

    Raises ``InvalidClientError`` (no or bad credentials), ``OAuthError`` (invalid_request:
    missing parameters), ``UnsupportedGrantTypeError``, ``UnauthorizedClientError`` (grant
    not allowed for this client), ``InvalidGrantError``, ``InvalidScopeError``,
    ``RateLimitedError``, ``NotFoundError`` (impossible tenant id), ``DependencyUnavailableError``.
    """
    if credentials is None:
        raise InvalidClientError("Authenticate the client with HTTP Basic or client_secret_post.")
    client, state = authenticate_client_state(svc, tenant_id, credentials, client_ip)
    grant = request.grant_type
    if grant is None:
        raise OAuthError("grant_type is required.")
    if grant not in GRANT_TYPES:
        raise UnsupportedGrantTypeError(f"Supported grant types: {', '.join(GRANT_TYPES)}.")
    if grant not in client.grant_types:
        raise UnauthorizedClientError(f"This client may not use the {grant} grant.")
    if grant == CLIENT_CREDENTIALS:
        return _client_credentials(svc, client, state, request)
    if grant == PASSWORD:
        return _password(svc, tenant_id, client, request, client_ip)
    return _refresh(svc, tenant_id, client, request)


def _client_credentials(
    svc: Services, client: Client, state: ClientState, request: GrantRequest
) -> TokenResponse:
    """RFC 6749 §4.4: the client acts on its own behalf; no refresh token (§4.4.3).

    Minted from the state the client was authenticated against (one read per request, made
    after the request arrived, so a deleted client or a suspended tenant is refused at once).
    """
    scope = _resolve_scope(request.scope, client.scopes)
    subject = client.client_id
    claims = {"client_id": client.client_id}
    token_request = TokenRequest(state.tenant.id, subject, scope=scope or None, claims=claims)
    issued = mint_token(
        svc.keyring,
        svc.tokens,
        svc.clock,
        token_request,
        state.tenant,
        subject_version=state.subject_version,
        subject_status=state.subject_status,
    )
    return TokenResponse(issued.access_token, issued.expires_in, scope or None)


def _password(
    svc: Services, tenant_id: str, client: Client, request: GrantRequest, client_ip: str | None
) -> TokenResponse:
    """RFC 6749 §4.3: check the user's password (argon2id) under the brute-force limiter.

    Unknown usernames cost one dummy verification and count as failures, so neither the
    answer, the latency nor the lockout says whether a username exists. A refresh token is
    issued when the client may also use the refresh_token grant (§4.3.3: optional).
    """
    username, password = request.username, request.password
    if username is None or password is None:
        raise OAuthError("username and password are required for the password grant.")
    scope = _resolve_scope(request.scope, client.scopes)
    keys = failure_keys(tenant_id, username, client_ip)
    svc.limiter.check(keys)
    user = None
    if plausible_name(username):
        with svc.storage.transaction() as tx:
            user = tx.users.get(tenant_id, username)
    if user is None:
        svc.passwords.verify_dummy(password)
    if user is None or not svc.passwords.verify(user.password_hash, password):
        svc.limiter.record_failure(keys)
        raise InvalidGrantError(_BAD_LOGIN)
    svc.limiter.reset([user_key(tenant_id, username)])
    if user.status is not UserStatus.ACTIVE:
        raise InvalidGrantError(_BAD_LOGIN)
    if svc.passwords.needs_rehash(user.password_hash):
        _rehash(svc, tenant_id, username, user.password_hash, password)
    access, ttl = _access(svc, tenant_id, username, client=client, scope=scope, claims=user.claims)
    refresh_value = None
    if REFRESH_TOKEN in client.grant_types:
        with svc.storage.transaction() as tx:
            tenant = tx.get_tenant(tenant_id)
            if tenant is None:
                raise InvalidGrantError(_BAD_LOGIN)  # deleted meanwhile
            refresh_value = refresh.new_refresh_token(
                svc, tx, tenant, client_id=client.client_id, username=username, scope=scope
            )
    return TokenResponse(access, ttl, scope or None, refresh_value)


def _refresh(svc: Services, tenant_id: str, client: Client, request: GrantRequest) -> TokenResponse:
    """RFC 6749 §6: rotate the refresh token; the access token's scope may be narrowed, never
    widened, and never beyond the client's current scopes; the new refresh token keeps the
    original scope (§6: "identical to that of the refresh token included")."""
    if request.refresh_token is None:
        raise OAuthError("refresh_token is required for the refresh_token grant.")
    rotated = refresh.rotate(svc, tenant_id, client.client_id, request.refresh_token)
    granted = rotated.stored.scope.split()
    allowed = [s for s in granted if s in client.scopes]
    scope = _resolve_scope(request.scope, allowed)
    user = rotated.user
    access, ttl = _access(
        svc, tenant_id, user.username, client=client, scope=scope, claims=user.claims
    )
    return TokenResponse(access, ttl, scope or None, rotated.value)


def _access(
    svc: Services,
    tenant_id: str,
    subject: str,
    *,
    client: Client,
    scope: str,
    claims: dict[str, Any],
) -> tuple[str, int]:
    """Mint the access token: the user's stored claims plus ``client_id`` (ours wins)."""
    request = TokenRequest(
        tenant_id, subject, scope=scope or None, claims={**claims, "client_id": client.client_id}
    )
    issued = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request)
    return issued.access_token, issued.expires_in


def _rehash(svc: Services, tenant_id: str, username: str, old_hash: str, password: str) -> None:
    """Store a hash with the current argon2 parameters — unless the password changed since we
    read it (an admin reset must not be overwritten with the old password)."""
    new_hash = svc.passwords.hash(password)
    with svc.storage.transaction() as tx:
        current = tx.users.get(tenant_id, username)
        if current is not None and current.password_hash == old_hash:
            now = datetime.fromtimestamp(svc.clock.now(), UTC)
            tx.users.update(replace(current, password_hash=new_hash, updated_at=now))
            log.info("password hash of a user of tenant %s upgraded", tenant_id)
