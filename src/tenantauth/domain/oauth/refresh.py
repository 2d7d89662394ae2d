"""Refresh tokens (RFC 6749 §1.5, §6): opaque, random, stored only as a keyed hash.

Every use rotates the token (RFC 9700 §4.14.2, "refresh token rotation"): the presented token
is marked used (conditionally, so of two racing exchanges exactly one wins) and a successor of
the same *family* is issued. Presenting a used token again is reuse: the whole family is
revoked (RFC 9700 §4.14.2) — unless it happens within ``AuthPolicy.refresh_reuse_grace``
seconds of the first use and the successor was never used, which is what a client whose
response got lost on the network looks like. Then the unseen successor is retired (marked used
*and* revoked, pointing at its own replacement) and a new pair is issued, so the family still
has exactly one live token. docs/design.md, "Refresh tokens", has the reasoning.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass

from tenantauth.domain.models import RefreshToken, Tenant, TenantStatus, User, UserStatus
from tenantauth.domain.ports import Tx
from tenantauth.domain.services import Services
from tenantauth.errors import InvalidGrantError

log = logging.getLogger(__name__)

#: Recognisable to secret scanners and to ``revoke``/``introspect``, which route by shape.
REFRESH_TOKEN_PREFIX = "tart_"  # noqa: S105 - a public prefix, not a secret
#: 256 bits (RFC 6749 §10.10; RFC 6819 §5.1.4.2.2).
REFRESH_TOKEN_BYTES = 32
#: The exact length of a token we issue; anything else is not looked up.
REFRESH_TOKEN_LENGTH = len(REFRESH_TOKEN_PREFIX) + 43
#: How many retired successors a retry may walk past (each retry retires one).
MAX_RETRY_HOPS = 8
_UNUSABLE = "The refresh token is invalid, expired, revoked or was issued to another client."


@dataclass(frozen=True)
class Rotated:
    """The outcome of a successful exchange: the new token's value and row, and its user."""

    value: str
    stored: RefreshToken
    user: User


def is_refresh_token(token: str) -> bool:
    """Return whether ``token`` has the shape of a refresh token we issue."""
    return len(token) == REFRESH_TOKEN_LENGTH and token.startswith(REFRESH_TOKEN_PREFIX)


def new_refresh_token(
    svc: Services, tx: Tx, tenant: Tenant, *, client_id: str, username: str, scope: str
) -> str:
    """Store a refresh token of a new family for ``username``; return its value.

    The row holds the tenant's key version and the user's revocation version at issue, so a
    tenant rotation or a "log out everywhere" kills it.
    """
    family = secrets.token_urlsafe(16)
    value, token = _mint(
        svc, tx, tenant, family, client_id=client_id, username=username, scope=scope
    )
    tx.refresh_tokens.insert(token)
    return value


def rotate(svc: Services, tenant_id: str, client_id: str, presented: str) -> Rotated:
    """Exchange a refresh token for its successor (RFC 6749 §6, rotated on every use).

    Returns the successor. Raises ``InvalidGrantError`` (uniform, reason logged) when the token
    is unknown, another client's, dead (revoked, expired, tenant rotated, user disabled,
    deleted or revoked), lost a race, or is being reused — in that last case after revoking
    its family. Raises ``DependencyUnavailableError``.
    """
    now = int(svc.clock.now())
    reused: RefreshToken | None = None
    with svc.storage.transaction() as tx:
        stored, user = _live(svc, tx, tenant_id, client_id, presented, now=now)
        head: RefreshToken | None = stored
        if stored.used_at is not None:
            head = _retry_head(svc, tx, stored, now)
            if head is None:  # RFC 9700 §4.14.2: reuse of a rotated token revokes the family
                tx.refresh_tokens.revoke_family(tenant_id, stored.family_id, now)
                reused = stored
        if head is not None:
            tenant = tx.get_tenant(tenant_id)
            assert tenant is not None  # noqa: S101 - _live checked it in this transaction
            value, successor = _mint(
                svc,
                tx,
                tenant,
                stored.family_id,
                client_id=client_id,
                username=stored.username,
                scope=stored.scope,
            )
            if not tx.refresh_tokens.mark_used(
                tenant_id, head.token_hash, now, successor.token_hash
            ):
                raise InvalidGrantError(_UNUSABLE)  # a concurrent exchange won
            if head is not stored:  # a retry: the successor nobody received is retired
                tx.refresh_tokens.revoke(tenant_id, head.token_hash, now)
            tx.refresh_tokens.insert(successor)
    if reused is not None:  # raised after the commit, so the family revocation sticks
        log.warning(
            "refresh token reuse: family %s of tenant %s revoked", reused.family_id, tenant_id
        )
        raise InvalidGrantError(_UNUSABLE)
    return Rotated(value, successor, user)


def find_live(svc: Services, tenant_id: str, client_id: str, presented: str) -> RefreshToken | None:
    """Return the stored token if it is this client's, live and unused; else None."""
    now = int(svc.clock.now())
    try:
        with svc.storage.transaction() as tx:
            stored, _ = _live(svc, tx, tenant_id, client_id, presented, now=now)
    except InvalidGrantError:
        return None
    return stored if stored.used_at is None else None


def revoke_grant(svc: Services, tenant_id: str, client_id: str, presented: str) -> bool:
    """Revoke the family of a refresh token of ``client_id`` (RFC 7009 §2.1: the token and
    the grant it belongs to). Returns whether a token of this client was found."""
    if not is_refresh_token(presented):
        return False
    with svc.storage.transaction() as tx:
        stored = _find(tx, svc, tenant_id, presented)
        if stored is None or stored.client_id != client_id:
            return False
        tx.refresh_tokens.revoke_family(tenant_id, stored.family_id, int(svc.clock.now()))
    return True


def _live(
    svc: Services, tx: Tx, tenant_id: str, client_id: str, presented: str, *, now: int
) -> tuple[RefreshToken, User]:
    """Return the stored token and its user if the token is this client's and not dead.

    "Used" is not checked here (rotation handles it). Raises ``InvalidGrantError``.
    """
    stored = _find(tx, svc, tenant_id, presented) if is_refresh_token(presented) else None
    reason = None
    user = None
    if stored is None:
        reason = "unknown"
    elif stored.client_id != client_id:  # RFC 6749 §6, §10.4: bound to its client
        reason = "another client's"
    elif stored.revoked_at is not None:
        reason = "revoked"
    elif now >= stored.expires_at:
        reason = "expired"
    else:
        tenant = tx.get_tenant(tenant_id)
        user = tx.users.get(tenant_id, stored.username)
        if tenant is None or tenant.status is not TenantStatus.ACTIVE:
            reason = "tenant not active"
        elif tenant.key_version != stored.key_version:
            reason = "tenant rotated since issue"
        elif user is None or user.status is not UserStatus.ACTIVE:
            reason = "user deleted or disabled"
        elif tx.revocations.subject_version(tenant_id, stored.username) != stored.subject_version:
            reason = "user revoked since issue"
    if reason is not None or stored is None or user is None:
        log.info("refresh token refused: %s", reason)
        raise InvalidGrantError(_UNUSABLE)
    return stored, user


def _find(tx: Tx, svc: Services, tenant_id: str, presented: str) -> RefreshToken | None:
    """Return the stored token whose keyed hash matches ``presented``, or None.

    Looks under the current master key's subkey first, then under each older one: a token
    issued before a master-key rotation stays usable while the old key is in
    ``MASTER_KEYS_OLD``, and its successor is hashed under the current key (``_mint``), so
    rotation on use moves every live family to the current key.
    """
    for token_hash in svc.refresh_hasher.hashes(presented):
        stored = tx.refresh_tokens.get(tenant_id, token_hash)
        if stored is not None:
            return stored
    return None


def _retry_head(svc: Services, tx: Tx, stored: RefreshToken, now: int) -> RefreshToken | None:
    """Return the unused successor to retire if presenting ``stored`` again is a retry.

    A retry is within the grace window of the first use, and no successor was ever used: the
    chain from ``stored`` leads through retired links (used *and* revoked by earlier retries)
    to a live, unused token. Anything else — after the window, a successor used by someone,
    a revoked family — is reuse: returns None.
    """
    assert stored.used_at is not None  # noqa: S101 - only called for used tokens
    if now - stored.used_at > svc.auth.refresh_reuse_grace:
        return None
    link = stored
    for _ in range(MAX_RETRY_HOPS):
        if link.replaced_by is None:
            return None
        nxt = tx.refresh_tokens.get(stored.tenant_id, link.replaced_by)
        if nxt is None:
            return None
        if nxt.used_at is None and nxt.revoked_at is None:
            return nxt
        if nxt.used_at is None or nxt.revoked_at is None:
            return None  # revoked without use (family revoked), or used by its holder
        link = nxt
    return None


def _mint(
    svc: Services,
    tx: Tx,
    tenant: Tenant,
    family_id: str,
    *,
    client_id: str,
    username: str,
    scope: str,
) -> tuple[str, RefreshToken]:
    now = int(svc.clock.now())
    raw = secrets.token_bytes(REFRESH_TOKEN_BYTES)
    value = REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    token = RefreshToken(
        tenant_id=tenant.id,
        token_hash=svc.refresh_hasher.hash(value),
        family_id=family_id,
        client_id=client_id,
        username=username,
        scope=scope,
        key_version=tenant.key_version,
        subject_version=tx.revocations.subject_version(tenant.id, username),
        issued_at=now,
        expires_at=now + svc.auth.refresh_token_ttl,
    )
    return value, token
