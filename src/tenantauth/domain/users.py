"""User use cases: create, show, list, update (disable, enable, reset password), delete.

A username is the ``sub`` of the user's tokens, so it follows the subject rules (1 to 255
characters, no control characters) and is compared exactly: it is neither case-folded nor
normalised. It must already be in Unicode NFC form, so the name stored, the one in tokens and
the one an operator types into ``…/users/{username}/revoke`` are the same string (normalising
silently would let a revocation name a different subject than the tokens carry).

Disabling a user, resetting its password and deleting it all revoke every token of the user
(``revoke_subject``: access tokens through the subject version, refresh tokens in storage).
Every write locks the tenant row, so two concurrent changes of one tenant's accounts cannot
lose each other's update (a stale PATCH restoring an old password hash, say).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tenantauth.crypto.passwords import check_password_policy
from tenantauth.domain import paging
from tenantauth.domain.models import User, UserStatus
from tenantauth.domain.paging import DEFAULT_PAGE_SIZE
from tenantauth.domain.revocations import revoke_subject
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import (
    require_live,
    require_tenant_id,
)
from tenantauth.domain.tokens import (
    CONTROL_CHARACTERS,
    MAX_CUSTOM_CLAIMS_BYTES,
    MAX_SUBJECT_LENGTH,
    RESERVED_CLAIMS,
)
from tenantauth.errors import InvalidRequestError, NotFoundError

#: The username is the token subject, so it has the subject's bound.
MAX_USERNAME_LENGTH = MAX_SUBJECT_LENGTH


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of users ordered by username; ``next_cursor`` is None on the last page."""

    items: list[User]
    next_cursor: str | None


def create_user(
    svc: Services,
    tenant_id: str,
    username: str,
    password: str,
    claims: dict[str, Any] | None = None,
) -> User:
    """Create an active user whose password is stored as an argon2id hash.

    Returns the user. Raises ``NotFoundError`` for an unknown tenant, ``InvalidRequestError``
    saying what is wrong with the username, password (never echoed) or claims,
    ``ConflictError`` if the username is taken in the tenant.
    """
    require_tenant_id(tenant_id)
    check_username(username)
    _check_password(svc, password, username)
    extra = check_claims(claims)
    password_hash = svc.passwords.hash(password)  # slow on purpose: outside the transaction
    now = _now(svc)
    user = User(tenant_id, username, password_hash, UserStatus.ACTIVE, extra, now, now)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        tx.users.insert(user)
    return user


def get_user(svc: Services, tenant_id: str, username: str) -> User:
    """Return one user. Raises ``NotFoundError`` for an unknown tenant or user."""
    require_tenant_id(tenant_id)
    _require_possible(username)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        return _require_user(tx.users.get(tenant_id, username), username)


def list_users(
    svc: Services, tenant_id: str, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> UserPage:
    """Return one page of the tenant's users ordered by username.

    Raises ``NotFoundError`` for an unknown tenant, ``InvalidRequestError`` for a malformed
    cursor or a limit outside 1..500.
    """
    require_tenant_id(tenant_id)
    after = paging.start_after(cursor, limit)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        rows = tx.users.list(tenant_id, after, limit + 1)
    return UserPage(*paging.cut(rows, limit, lambda r: r.username))


def update_user(
    svc: Services,
    tenant_id: str,
    username: str,
    *,
    status: UserStatus | None = None,
    password: str | None = None,
    claims: dict[str, Any] | None = None,
) -> User:
    """Disable or enable a user, reset its password or replace its claims.

    Disabling and resetting the password also revoke every access and refresh token of the
    user once the change is committed (the same guarantee as ``revoke_subject``). Disabling
    revokes even if the user was disabled already, so retrying a call that failed half-way
    (committed, then 503 from the revocation) completes it. Enabling only sets the status:
    tokens revoked before stay revoked, new ones verify. New claims apply to tokens issued
    from now on. Returns the user. Raises ``NotFoundError``, ``InvalidRequestError``,
    ``DependencyUnavailableError`` (retry: the change may have been committed).
    """
    require_tenant_id(tenant_id)
    _require_possible(username)
    if status is not None and not isinstance(status, UserStatus):
        raise InvalidRequestError("status must be 'active' or 'disabled'")
    password_hash = None
    if password is not None:
        _check_password(svc, password, username)
        password_hash = svc.passwords.hash(password)
    extra = check_claims(claims) if claims is not None else None
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        current = _require_user(tx.users.get(tenant_id, username), username)
        user = replace(
            current,
            status=status or current.status,
            password_hash=password_hash or current.password_hash,
            claims=current.claims if extra is None else extra,
            updated_at=_now(svc),
        )
        tx.users.update(user)
    if status is UserStatus.DISABLED or password_hash is not None:
        revoke_subject(svc, tenant_id, username)
    return user


def delete_user(svc: Services, tenant_id: str, username: str) -> None:
    """Delete a user after revoking every token it holds.

    The revocation comes first, so a failure leaves the user revoked but present (retry to
    finish), never deleted with live tokens. Raises ``NotFoundError``,
    ``DependencyUnavailableError``.
    """
    get_user(svc, tenant_id, username)
    revoke_subject(svc, tenant_id, username)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        if not tx.users.delete(tenant_id, username):
            raise NotFoundError(f"user {username!r} does not exist")


def check_username(username: str) -> None:
    """Raise ``InvalidRequestError`` unless ``username`` can name a user (module docstring)."""
    if not 1 <= len(username) <= MAX_USERNAME_LENGTH:
        raise InvalidRequestError(f"username must be 1 to {MAX_USERNAME_LENGTH} characters")
    if CONTROL_CHARACTERS.search(username):
        raise InvalidRequestError("username must not contain control characters")
    if "/" in username:
        raise InvalidRequestError("username must not contain '/' (it names a URL path segment)")
    if username != username.strip():
        raise InvalidRequestError("username must not start or end with whitespace")
    if unicodedata.normalize("NFC", username) != username:
        raise InvalidRequestError(
            "username must be in Unicode NFC form (accented letters precomposed)"
        )


def check_claims(claims: dict[str, Any] | None) -> dict[str, Any]:
    """Return a copy of the custom claims added to the user's tokens, after checking them.

    Raises ``InvalidRequestError`` unless they are a JSON object of at most 2 KiB that sets
    no claim the service sets itself (``RESERVED_CLAIMS``).
    """
    if claims is None:
        return {}
    if not isinstance(claims, dict) or not all(isinstance(k, str) for k in claims):
        raise InvalidRequestError("claims must be a JSON object")
    clash = sorted(RESERVED_CLAIMS & claims.keys())
    if clash:
        raise InvalidRequestError(f"claims may not set reserved claims: {', '.join(clash)}")
    try:
        size = len(json.dumps(claims, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError("claims must hold only JSON values") from exc
    if size > MAX_CUSTOM_CLAIMS_BYTES:
        raise InvalidRequestError(
            f"claims must serialise to at most {MAX_CUSTOM_CLAIMS_BYTES} bytes (got {size})"
        )
    return dict(claims)


def _check_password(svc: Services, password: str, username: str) -> None:
    check_password_policy(
        password,
        username,
        min_length=svc.auth.password_min_length,
        max_length=svc.auth.password_max_length,
    )


def _require_possible(username: str) -> None:
    """Raise ``NotFoundError`` for names no user can have, before any lookup."""
    try:
        check_username(username)
    except InvalidRequestError as exc:
        raise NotFoundError("no user has that name") from exc


def _require_user(user: User | None, username: str) -> User:
    if user is None:
        raise NotFoundError(f"user {username!r} does not exist")
    return user


def _now(svc: Services) -> datetime:
    return datetime.fromtimestamp(svc.clock.now(), UTC)
