"""The contracts between the domain and its adapters (typing.Protocols).

Every adapter is checked against these by ``tests/contract``. Adapters raise only tenantauth
errors: ``StorageUnavailableError`` / ``CacheUnavailableError`` for outages,
``ConflictError`` for uniqueness violations. No driver exception escapes an adapter.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from tenantauth.domain.models import KeyRecord, Tenant


class Clock(Protocol):
    """Wall-clock time for token claims (tests pass a fixed clock)."""

    def now(self) -> float:
        """Return seconds since the Unix epoch."""
        ...


class Tx(Protocol):
    """One database transaction. Tenant rows include tombstones (status ``deleted``)."""

    def get_tenant(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        """Return the tenant row (tombstones too) or None; ``for_update`` locks it until the
        transaction ends, which serialises rotations of one tenant."""
        ...

    def insert_tenant(self, tenant: Tenant) -> None:
        """Insert a new row. Raises ``ConflictError`` if the id exists."""
        ...

    def update_tenant(self, tenant: Tenant) -> None:
        """Overwrite every column of an existing row. Raises ``NotFoundError`` if missing."""
        ...

    def list_tenants(self, after: str | None, limit: int) -> list[Tenant]:
        """Return up to ``limit`` non-deleted tenants with id > ``after``, ordered by id."""
        ...


class Storage(Protocol):
    """The system of record (PostgreSQL in production, SQLite embedded)."""

    def transaction(self) -> AbstractContextManager[Tx]:
        """Open a transaction: a clean exit commits, an exception rolls back.

        Raises ``StorageUnavailableError`` if the database cannot be reached or the commit
        fails (the outcome of the commit is then unknown).
        """
        ...

    def load_key_record(self, tenant_id: str) -> KeyRecord | None:
        """Return the committed key record of a tenant (tombstones too), or None if the id
        was never created. The verifier's cache-miss path; one indexed read."""
        ...

    def ping(self) -> None:
        """Raise ``StorageUnavailableError`` unless the database answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Cache(Protocol):
    """The shared verification cache and its revocation fence (docs/design.md §Cache).

    Entries are key records; they are never trusted beyond what ``fence`` allows: once
    ``fence(t, g)`` returned ``n``, no entry of tenant ``t`` with a generation below ``n`` is
    ever returned by ``get`` again, and ``fill`` refuses such entries.
    """

    def get(self, tenant_id: str) -> KeyRecord | None:
        """Return the cached record or None on a miss (one round trip).

        Raises ``CacheUnavailableError`` if the cache cannot answer in time.
        """
        ...

    def fill(self, record: KeyRecord, ttl_seconds: float) -> bool:
        """Store ``record`` unless the tenant's fence or a newer entry forbids it.

        Returns whether it was stored. Raises ``CacheUnavailableError``.
        """
        ...

    def fence(self, tenant_id: str, stored_generation: int) -> int:
        """Bar every entry older than the next generation and drop the current entry.

        Returns the new generation, ``max(fence, stored_generation) + 1``, which the caller
        must commit as the tenant's generation. Raises ``CacheUnavailableError``; the caller
        must then abort its change (nothing may commit without a fence).
        """
        ...

    def ping(self) -> None:
        """Raise ``CacheUnavailableError`` unless the cache answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
