"""The contracts between the domain and its adapters (typing.Protocols).

Every adapter is checked against these by ``tests/contract``. Adapters raise only tenantauth
errors: ``StorageUnavailableError`` / ``CacheUnavailableError`` for outages,
``ConflictError`` for uniqueness violations. No driver exception escapes an adapter.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from tenantauth.domain.admin.admin_ports import AdminKeyRepo, AuditRepo, ResourceServerRepo
from tenantauth.domain.models import (
    AckStatus,
    CacheRead,
    Client,
    ClientState,
    Invalidation,
    KeyPolicy,
    KeyRecord,
    Publication,
    RefreshToken,
    Registration,
    Revocations,
    StoredTenant,
    Tenant,
    TenantKey,
    User,
    VerificationState,
)


class Clock(Protocol):
    """Wall-clock time for token claims (tests pass a fixed clock)."""

    def now(self) -> float:
        """Return seconds since the Unix epoch."""
        ...


class UserRepo(Protocol):
    """Users inside a transaction (``tx.users``)."""

    def delete_all(self, tenant_id: str) -> int:
        """Delete every row of a tenant that is being deleted; return how many."""
        ...

    def get(self, tenant_id: str, username: str) -> User | None:
        """Return the user or None."""
        ...

    def insert(self, user: User) -> None:
        """Insert. Raises ``ConflictError`` if the username is taken in the tenant."""
        ...

    def update(self, user: User) -> None:
        """Overwrite. Raises ``NotFoundError`` if missing."""
        ...

    def delete(self, tenant_id: str, username: str) -> bool:
        """Delete; return whether it existed."""
        ...

    def list(self, tenant_id: str, after: str | None, limit: int) -> list[User]:
        """Return up to ``limit`` users with username > ``after``, ordered by username."""
        ...


class ClientRepo(Protocol):
    """OAuth clients inside a transaction (``tx.clients``)."""

    def delete_all(self, tenant_id: str) -> int:
        """Delete every row of a tenant that is being deleted; return how many."""
        ...

    def get(self, tenant_id: str, client_id: str) -> Client | None:
        """Return the client or None."""
        ...

    def insert(self, client: Client) -> None:
        """Insert. Raises ``ConflictError`` if the id is taken in the tenant."""
        ...

    def update(self, client: Client) -> None:
        """Overwrite. Raises ``NotFoundError`` if missing."""
        ...

    def delete(self, tenant_id: str, client_id: str) -> bool:
        """Delete; return whether it existed."""
        ...

    def list(self, tenant_id: str, after: str | None, limit: int) -> list[Client]:
        """Return up to ``limit`` clients with client_id > ``after``, ordered by client_id."""
        ...


class RefreshTokenRepo(Protocol):
    """Refresh tokens (keyed hashes) inside a transaction (``tx.refresh_tokens``)."""

    def delete_all(self, tenant_id: str) -> int:
        """Delete every row of a tenant that is being deleted; return how many."""
        ...

    def get(self, tenant_id: str, token_hash: bytes) -> RefreshToken | None:
        """Return the stored token or None."""
        ...

    def insert(self, token: RefreshToken) -> None:
        """Store a new token."""
        ...

    def mark_used(
        self, tenant_id: str, token_hash: bytes, used_at: int, replaced_by: bytes
    ) -> bool:
        """Mark exchanged; False if it was already used or revoked (one racer wins)."""
        ...

    def revoke(self, tenant_id: str, token_hash: bytes, at: int) -> bool:
        """Revoke one token; return whether it was live."""
        ...

    def revoke_family(self, tenant_id: str, family_id: str, at: int) -> int:
        """Revoke every token of a family; return how many."""
        ...

    def revoke_user(self, tenant_id: str, username: str, at: int) -> int:
        """Revoke every refresh token of a user; return how many."""
        ...


class RevocationRepo(Protocol):
    """Subject revocation versions and denylisted jtis (``tx.revocations``)."""

    def subject_version(self, tenant_id: str, subject: str) -> int:
        """Return the subject's revocation version (0 if it was never revoked)."""
        ...

    def bump_subject(self, tenant_id: str, subject: str, revoked_at: int) -> int:
        """Raise the subject's revocation version by one (creating it at 1); return it.

        Concurrent bumps of one subject serialise on its row.
        """
        ...

    def revoke_jti(self, tenant_id: str, jti: str, expires_at: int, revoked_at: int) -> None:
        """Denylist ``jti`` until ``expires_at`` (idempotent)."""
        ...


class KeyPolicyRepo(Protocol):
    """Scheduled rollover policies (``tx.key_policies``)."""

    def get(self, tenant_id: str) -> KeyPolicy | None:
        """The tenant's policy, or None."""
        ...

    def put(self, policy: KeyPolicy, updated_at: datetime) -> None:
        """Set the tenant's policy, replacing any."""
        ...

    def delete_all(self, tenant_id: str) -> int:
        """Remove the tenant's policy; return how many rows went (0 or 1)."""
        ...

    def page(self, after: str, limit: int) -> list[KeyPolicy]:
        """Up to ``limit`` policies of tenants with ids above ``after``, in id order."""
        ...


class Tx(Protocol):
    """One database transaction. Tenant rows include tombstones (status ``deleted``).

    Accounts and revocations live in per-aggregate repositories: ``users``, ``clients``,
    ``refresh_tokens``, ``revocations``.
    """

    @property
    def users(self) -> UserRepo:
        """The users of this transaction."""
        ...

    @property
    def clients(self) -> ClientRepo:
        """The OAuth clients of this transaction."""
        ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepo:
        """The refresh tokens of this transaction."""
        ...

    @property
    def key_policies(self) -> KeyPolicyRepo:
        """The scheduled rollover policies of this transaction."""
        ...

    @property
    def revocations(self) -> RevocationRepo:
        """The subject revocations and jti denylist of this transaction."""
        ...

    @property
    def admin_keys(self) -> AdminKeyRepo:
        """The admin API keys of this transaction."""
        ...

    @property
    def resource_servers(self) -> ResourceServerRepo:
        """The resource servers of this transaction."""
        ...

    @property
    def audit(self) -> AuditRepo:
        """The audit chain of this transaction."""
        ...

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

    def replace_keys(
        self, tenant_id: str, keys: tuple[TenantKey, ...], created_at: datetime
    ) -> None:
        """Make ``keys`` the tenant's other keys (``Tenant.others``), replacing those stored.
        Raises ``StorageUnavailableError``."""
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

    def load_verification_state(
        self, tenant_id: str, subject: str, jti: str
    ) -> VerificationState | None:
        """Return the tenant's key record, the subject's revocation version and whether the
        jti is denylisted, in one round trip; None if the tenant id was never created."""
        ...

    def load_client_state(self, tenant_id: str, client_id: str) -> ClientState | None:
        """Return the tenant row, its client ``client_id`` (None if there is none), the
        revocation version of the subject ``client_id`` and the status of a user of that name,
        in one round trip and one snapshot; None if the tenant id was never created. The
        token endpoint's read (client authentication and the ``client_credentials`` grant)."""
        ...

    def load_revocations(
        self, tenant_id: str, *, revoked_since: int, expiring_after: int
    ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        """Return the tenant's subject revocations made at or after ``revoked_since`` as
        (subject, version, revoked_at), and its denylisted jtis whose token expires after
        ``expiring_after`` as (jti, expires_at)."""
        ...

    def load_snapshot_page(
        self, after: str, limit: int, *, revoked_since: int, expiring_after: int
    ) -> list[StoredTenant]:
        """Return up to ``limit`` tenants that are not deleted, with ids above ``after`` in id
        order, each with its revocations as ``load_revocations`` gives them (the same
        horizons): the pages that warm a worker's memory. An empty list ends the scan."""
        ...

    def load_tenant_ids(self, limit: int) -> frozenset[str] | None:
        """Return the id of every tenant that is not deleted, or None if there are more than
        ``limit`` (the tenant directory, docs/design.md, then stays out of the way)."""
        ...

    def memory_declared(self) -> bool:
        """Whether any worker ever declared that it verifies from memory (docs/design.md,
        "Verifying from memory"): writers publish invalidations only once it has. Nothing
        removes the declaration. Raises ``StorageUnavailableError``."""
        ...

    def declare_memory(self) -> None:
        """Record, committed when this returns, that a worker verifies from memory.

        Raises ``StorageUnavailableError``."""
        ...

    def legacy_issuer_until(self) -> datetime | None:
        """Until when tokens carrying the service-wide legacy ``iss`` were issued (docs/
        design.md, "One issuer per tenant"), or None if this database never had them.
        Fixed once migrated. Raises ``StorageUnavailableError``."""
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

    def get_state(self, tenant_id: str, subject: str, jti: str) -> CacheRead:
        """Return the tenant's record with the subject's version and the jti's denylisting,
        in one round trip, and the ticket a later ``fill`` must carry ("" when the tenant has
        no incarnation on this cache yet: ``claim`` starts one) and the directory incarnation
        (see ``directory``; "" if there is none yet). The state is None when the
        tenant entry is missing or was written in an earlier incarnation of the cache (then
        storage must answer all three, since revocations are only trusted next to their
        tenant's entry).

        Raises ``CacheUnavailableError``.
        """
        ...

    def claim(self, tenant_id: str) -> str:
        """Return the tenant's current incarnation on this cache, starting one if it has none:
        the ticket for a fill of what is read from storage *after* this call. "" when the
        cache cannot vouch for one (then nothing read now may be cached).

        Raises ``CacheUnavailableError``.
        """
        ...

    def directory(self) -> str:
        """Return the current *directory incarnation*, starting one if there is none: a token
        that changes whenever a tenant may have been created since (``renew_directory``) and
        whenever the cache restarted or was replaced. "" when the cache cannot vouch for one.

        Raises ``CacheUnavailableError``.
        """
        ...

    def renew_directory(self) -> None:
        """After a tenant was created (and committed): end the directory incarnation, so every
        verifier re-reads the tenant ids before it rules any id out.

        Raises ``CacheUnavailableError``.
        """
        ...

    def fill(
        self,
        record: KeyRecord,
        ttl_seconds: float,
        revocations: Revocations | None = None,
        *,
        ticket: str,
    ) -> bool:
        """Store ``record`` — with ``revocations``, atomically — unless the tenant's fence or a
        newer entry forbids it, or the cache is no longer the incarnation ``ticket`` names
        (a ``CacheRead.ticket`` obtained *before* the record was read from storage).
        Subject versions never decrease; jti marks are only added.

        Returns whether the entry was stored. Raises ``CacheUnavailableError``.
        """
        ...

    def revoke_subject(self, tenant_id: str, subject: str, version: int, ttl_seconds: int) -> None:
        """Record that tokens of ``subject`` with ``uv`` below ``version`` are revoked, for
        ``ttl_seconds`` (relative, so Redis' clock cannot shorten it). Never lowers a version.
        Raises ``CacheUnavailableError``.
        """
        ...

    def revoke_jti(self, tenant_id: str, jti: str, ttl_seconds: int) -> None:
        """Denylist ``jti`` for ``ttl_seconds`` (relative).

        Raises ``CacheUnavailableError``.
        """
        ...

    def fence(self, tenant_id: str, stored_generation: int) -> int:
        """Bar every entry older than the next generation and drop the current entry.

        Returns the new generation, ``max(fence, stored_generation) + 1``, which the caller
        must commit as the tenant's generation. Raises ``CacheUnavailableError``; the caller
        must then abort its change (nothing may commit without a fence).
        """
        ...

    def seal(self, tenant_id: str, generation: int) -> None:
        """After a change committed ``generation``: bar older entries again and drop any.

        Repeats the fence's effect on whatever cache answers now, which covers a cache that
        restarted between the fence and the commit (docs/design.md, "Cache incarnations").
        Never lowers the fence. Raises ``CacheUnavailableError``.
        """
        ...

    def ping(self) -> None:
        """Raise ``CacheUnavailableError`` unless the cache answers."""
        ...

    def eviction_policy(self) -> str:
        """Return the cache server's eviction policy ("" when it will not say, or there is
        no server). Raises ``CacheUnavailableError`` unless the cache answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class LeaseRegistry(Protocol):
    """Worker leases and the invalidation stream (docs/design.md, "Verifying from memory").

    Every method is one atomic step on the shared server; times are the server's own clock.
    Every method raises ``CacheUnavailableError`` when the server cannot answer.
    """

    def register(self, worker_id: str) -> Registration:
        """Make ``worker_id`` a member with a fresh lease and ack = the stream's current
        seq (starting a registry incarnation if there is none of this server); return it."""
        ...

    def read(self, cursor: str, block_seconds: float) -> tuple[list[Invalidation], str]:
        """Return the stream entries after ``cursor`` (waiting up to ``block_seconds`` for
        one) and the cursor after them."""
        ...

    def renew(self, worker_id: str, incarnation: str, applied: int) -> bool:
        """Extend the lease and record ack = ``applied``; False (nothing changed) if the
        registry is no longer ``incarnation``, the worker is no member, or its lease has
        already expired: the worker must register again."""
        ...

    def deregister(self, worker_id: str) -> None:
        """Remove the worker (it has stopped trusting its memory): writers stop waiting."""
        ...

    def publish(self, tenant_id: str) -> Publication:
        """Append an invalidation of ``tenant_id`` (starting a registry incarnation if there
        is none of this server) and return it."""
        ...

    def acks(self, publication: Publication) -> AckStatus:
        """Count the live leases whose ack is below ``publication.seq``."""
        ...

    def wait_acknowledged(self, publication: Publication, seconds: float) -> bool:
        """Block until the last of the ``publication.awaited`` leases has acknowledged it
        (True) or ``seconds`` have passed (False). A wake-up only: a lease that expired
        instead never says so, and only ``acks`` tells whether the writer may return."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
