"""Admin API keys and the audit chain inside a transaction (``tx.admin_keys``, ``tx.audit``),
shared by both SQL adapters through the same ``Dialect`` as the account repositories.

Audit times are written as UTC with microseconds in both adapters, so SQLite's ISO text
compares in time order and the chain's canonical encoding reads back exactly what was hashed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenantauth.domain.admin.admin_models import AdminKey, AuditEntry, AuditEvent, AuditQuery
from tenantauth.storage.accounts import Dialect, Rows

KEY_COLUMNS = "id, name, tenant_id, key_hash, created_at, expires_at, revoked_at, last_used_at"
AUDIT_COLUMNS = (
    "seq, occurred_at, actor, tenant_id, action, target, request_id, outcome, prev_hash, entry_hash"
)
# Optional listing filters: fixed SQL fragments, chosen by which filters are given (the values
# are always parameters). "IS NULL OR" with untyped parameters would not plan in PostgreSQL.
_FILTERS = (
    ("tenant_id", "tenant_id = {}"),
    ("action", "action = {}"),
    ("actor", "actor = {}"),
    ("since", "occurred_at >= {}"),
    ("until", "occurred_at <= {}"),
)


def _dt(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value is not None else None
    return datetime.fromisoformat(value).astimezone(UTC)


class AdminKeyRows(Rows):
    """Admin API keys (keyed hashes only)."""

    _table = "admin_keys"

    def insert(self, key: AdminKey) -> None:
        """Insert a key. Raises ``ConflictError`` on an (astronomically unlikely) id clash."""
        text = f"INSERT INTO admin_keys ({KEY_COLUMNS}) VALUES ({', '.join(['{}'] * 8)})"  # noqa: S608
        times = (key.created_at, key.expires_at, key.revoked_at, key.last_used_at)
        params = (key.id, key.name, key.tenant_id, key.key_hash, *map(self._opt_time, times))
        self._insert(text, params, f"admin key {key.id!r}")

    def get(self, key_id: str) -> AdminKey | None:
        """Return the key or None."""
        row = self._one(f"SELECT {KEY_COLUMNS} FROM admin_keys WHERE id = {{}}", (key_id,))  # noqa: S608
        return self._key(row) if row else None

    def list(self, after: str | None, limit: int) -> list[AdminKey]:
        """Return up to ``limit`` keys with id > ``after``, ordered by id (revoked ones too)."""
        text = f"SELECT {KEY_COLUMNS} FROM admin_keys WHERE id > {{}} ORDER BY id LIMIT {{}}"  # noqa: S608
        return [self._key(r) for r in self._all(text, (after or "", limit))]

    def revoke(self, key_id: str, at: datetime) -> bool:
        """Mark the key revoked at ``at`` unless it already is; return whether it changed."""
        text = "UPDATE admin_keys SET revoked_at = {} WHERE id = {} AND revoked_at IS NULL"
        return self._count(text, (self._time(at), key_id)) == 1

    def touch(self, key_id: str, at: datetime, unless_since: datetime) -> bool:
        """Set ``last_used_at`` to ``at`` unless it is already ``unless_since`` or later (so a
        busy key costs one write a minute, not one per request); return whether it changed."""
        text = (
            "UPDATE admin_keys SET last_used_at = {} WHERE id = {} "
            "AND (last_used_at IS NULL OR last_used_at < {})"
        )
        return self._count(text, (self._time(at), key_id, self._time(unless_since))) == 1

    def rehash(self, key_id: str, old_hash: bytes, new_hash: bytes) -> bool:
        """Replace the stored hash if it is still ``old_hash``; return whether it did."""
        text = "UPDATE admin_keys SET key_hash = {} WHERE id = {} AND key_hash = {}"
        return self._count(text, (new_hash, key_id, old_hash)) == 1

    def _opt_time(self, value: datetime | None) -> Any:
        return None if value is None else self._time(value)

    @staticmethod
    def _key(row: Any) -> AdminKey:
        kid, name, tenant_id, key_hash, created, expires, revoked, used = row
        created_at = _dt(created)
        assert created_at is not None  # noqa: S101 - NOT NULL column
        return AdminKey(
            kid, name, tenant_id, bytes(key_hash), created_at, _dt(expires), _dt(revoked), _dt(used)
        )


class AuditRows(Rows):
    """The audit chain: appends are serialised by ``lock_head``."""

    _table = "audit_log"

    def __init__(self, conn: Any, dialect: Dialect, lock_sql: str | None) -> None:
        """``lock_sql`` serialises appenders until the transaction ends (None: the adapter's
        transactions are already serialised, as SQLite's ``BEGIN IMMEDIATE`` is)."""
        super().__init__(conn, dialect)
        self._lock_sql = lock_sql

    def lock_head(self) -> AuditEntry | None:
        """Take the append lock (held until the transaction ends); return the last entry, or
        None for an empty chain."""
        if self._lock_sql is not None:
            self._conn.execute(self._lock_sql)
        row = self._one(
            f"SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1",  # noqa: S608
            (),
        )
        return self._entry(row) if row else None

    def append(self, entry: AuditEntry) -> None:
        """Insert the next link. Raises ``ConflictError`` if its ``seq`` is taken (an appender
        that did not hold the lock); on PostgreSQL the transaction is then aborted, and the
        error comes when it ends (the insert is pipelined with the COMMIT).

        No savepoint, unlike ``_insert``: every appender commits right after this, so a
        transaction that survives the conflict is of no use, and the savepoint's two round
        trips were 2 of the ~20 sequential waits of every audited admin change under load
        (docs/design.md, "Changes under load wait for the GIL")."""
        e = entry.event
        params = (
            entry.seq,
            self._audit_time(entry.occurred_at),
            e.actor,
            e.tenant_id,
            e.action,
            e.target,
            e.request_id,
            e.outcome,
            entry.prev_hash,
            entry.entry_hash,
        )
        text = f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ({', '.join(['{}'] * 10)})"  # noqa: S608
        self._insert(text, params, f"audit entry {entry.seq}", savepoint=False)

    def search(self, query: AuditQuery, before: int | None, limit: int) -> list[AuditEntry]:
        """Return up to ``limit`` entries matching ``query`` with seq < ``before``, newest
        first."""
        conditions, params = ["seq < {}"], [before if before is not None else 2**63 - 1]
        for name, fragment in _FILTERS:
            value = getattr(query, name)
            if value is not None:
                conditions.append(fragment)
                params.append(self._audit_time(value) if isinstance(value, datetime) else value)
        text = (
            f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {' AND '.join(conditions)} "  # noqa: S608
            "ORDER BY seq DESC LIMIT {}"
        )
        return [self._entry(r) for r in self._all(text, (*params, limit))]

    def walk(self, after: int, limit: int) -> list[AuditEntry]:
        """Return up to ``limit`` entries with seq > ``after`` in chain order (for verifying)."""
        text = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > {{}} ORDER BY seq LIMIT {{}}"  # noqa: S608
        return [self._entry(r) for r in self._all(text, (after, limit))]

    def _audit_time(self, value: datetime) -> Any:
        utc = value.astimezone(UTC)
        return utc.isoformat(timespec="microseconds") if self._d.iso_times else utc

    @staticmethod
    def _entry(row: Any) -> AuditEntry:
        seq, at, actor, tenant_id, action, target, request_id, outcome, prev, digest = row
        occurred_at = _dt(at)
        assert occurred_at is not None  # noqa: S101 - NOT NULL column
        event = AuditEvent(actor, tenant_id, action, target, request_id, outcome)
        return AuditEntry(int(seq), occurred_at, event, bytes(prev), bytes(digest))
