"""Admin API key use cases: create, list, show, revoke.

Only global admins reach these (api/auth.py); a key is returned in full once, by
``create_admin_key``, and stored as a keyed hash (domain/admin/admins.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenantauth.domain import paging
from tenantauth.domain.admin.admin_models import AdminKey
from tenantauth.domain.admin.admins import generate_admin_key, key_hasher
from tenantauth.domain.paging import DEFAULT_PAGE_SIZE
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import require_live, require_tenant_id
from tenantauth.domain.tokens import CONTROL_CHARACTERS
from tenantauth.errors import InvalidRequestError, NotFoundError

MAX_KEY_NAME_LENGTH = 200
MAX_EXPIRES_IN = 10 * 365 * 86_400
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class AdminKeyPage:
    """One page of admin keys ordered by id; ``next_cursor`` is None on the last page."""

    items: list[AdminKey]
    next_cursor: str | None


def create_admin_key(
    svc: Services, name: str, tenant_id: str | None = None, expires_in: int | None = None
) -> tuple[AdminKey, str]:
    """Create an admin key: global, or the admin of ``tenant_id`` only.

    Returns the stored key and the full key text, which is not kept and cannot be shown
    again. Raises ``InvalidRequestError`` for a bad name or lifetime, ``NotFoundError`` for
    an unknown or deleted tenant.
    """
    if not 1 <= len(name) <= MAX_KEY_NAME_LENGTH or CONTROL_CHARACTERS.search(name):
        raise InvalidRequestError(f"name must be 1 to {MAX_KEY_NAME_LENGTH} printable characters")
    if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise InvalidRequestError(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds")
    now = _now(svc)
    key_id, full = generate_admin_key()
    key = AdminKey(
        id=key_id,
        name=name,
        tenant_id=tenant_id,
        key_hash=key_hasher(svc).hash(full),
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
    )
    with svc.storage.transaction() as tx:
        if tenant_id is not None:
            require_tenant_id(tenant_id)
            require_live(tx.get_tenant(tenant_id), tenant_id)
        tx.admin_keys.insert(key)
    return key, full


def list_admin_keys(
    svc: Services, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> AdminKeyPage:
    """Return one page of admin keys (revoked and expired ones too) ordered by id.

    Raises ``InvalidRequestError`` for a malformed cursor or a limit outside 1..500.
    """
    after = paging.start_after(cursor, limit)
    with svc.storage.transaction() as tx:
        rows = tx.admin_keys.list(after, limit + 1)
    return AdminKeyPage(*paging.cut(rows, limit, lambda k: k.id))


def get_admin_key(svc: Services, key_id: str) -> AdminKey:
    """Return one admin key. Raises ``NotFoundError`` if there is none with this id."""
    _require_possible(key_id)
    with svc.storage.transaction() as tx:
        return _require_key(tx.admin_keys.get(key_id), key_id)


def revoke_admin_key(svc: Services, key_id: str) -> AdminKey:
    """Revoke a key: it authenticates no request that starts after this returns.

    Idempotent: revoking a revoked key returns it unchanged. Returns the key. Raises
    ``NotFoundError`` if there is none with this id.
    """
    _require_possible(key_id)
    now = _now(svc)
    with svc.storage.transaction() as tx:
        tx.admin_keys.revoke(key_id, now)
        return _require_key(tx.admin_keys.get(key_id), key_id)


def _require_possible(key_id: str) -> None:
    # Ids are 16 hex digits; anything else cannot exist, so it is a 404 without a lookup.
    if _KEY_ID_RE.fullmatch(key_id) is None:
        raise NotFoundError(f"admin key {key_id!r} does not exist")


def _require_key(key: AdminKey | None, key_id: str) -> AdminKey:
    if key is None:
        raise NotFoundError(f"admin key {key_id!r} does not exist")
    return key


def _now(svc: Services) -> datetime:
    return datetime.fromtimestamp(svc.clock.now(), UTC)
