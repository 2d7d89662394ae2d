"""SqliteStorage: the embedded default (stdlib sqlite3, one file, WAL mode).

One connection per thread (sqlite3 connections must not be shared across threads); write
transactions use ``BEGIN IMMEDIATE`` so concurrent rotations serialise on SQLite's write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from tenantauth.domain.models import (
    ClientState,
    KeyRecord,
    StoredTenant,
    Tenant,
    TenantKey,
    VerificationState,
)
from tenantauth.errors import ConflictError, NotFoundError, StorageUnavailableError
from tenantauth.storage import migrations, rows
from tenantauth.storage.accounts import ClientRows, Dialect, RefreshTokenRows, UserRows
from tenantauth.storage.admin_rows import AdminKeyRows, AuditRows
from tenantauth.storage.client_state import (
    LOAD_CLIENT_STATE,
    client_state_from_row,
    client_state_params,
)
from tenantauth.storage.key_policy_rows import KeyPolicyRows
from tenantauth.storage.resource_server_rows import ResourceServerRows
from tenantauth.storage.revocation_rows import RevocationRows
from tenantauth.storage.rows import (
    key_record_from_row,
    read_snapshot_page,
    replace_keys,
    state_from_row,
    tenant_params,
    tenant_with_keys_from_row,
)

# SQLite keeps a transaction usable after a constraint error, so no savepoint is needed.
DIALECT = Dialect(
    "?",
    (sqlite3.IntegrityError,),
    lambda conn: nullcontext(),
    iso_times=True,
    other_keys=rows.other_keys_sql("group_concat", "hex(k.secret_blob)"),
)
SELECT_TENANT = DIALECT.sql(rows.SELECT_TENANT)
SELECT_KEY = DIALECT.sql(rows.SELECT_KEY)
LIST_TENANTS = DIALECT.sql(rows.LIST_TENANTS)
LIST_TENANT_IDS = DIALECT.sql(rows.LIST_TENANT_IDS)
MEMORY_DECLARED = rows.MEMORY_DECLARED
DECLARE_MEMORY = DIALECT.sql(rows.DECLARE_MEMORY)
INSERT_TENANT = DIALECT.sql(rows.INSERT_TENANT)
UPDATE_TENANT = DIALECT.sql(rows.UPDATE_TENANT)
LOAD_STATE = DIALECT.sql(rows.LOAD_STATE)
LOAD_SUBJECTS = DIALECT.sql(rows.LOAD_SUBJECTS)
LOAD_JTIS = DIALECT.sql(rows.LOAD_JTIS)
PAGE_STATEMENTS = (
    DIALECT.sql(rows.PAGE_KEYS),
    DIALECT.sql(rows.PAGE_SUBJECTS),
    DIALECT.sql(rows.PAGE_JTIS),
)
CLIENT_STATE = DIALECT.sql(LOAD_CLIENT_STATE)
CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


class SqliteTx:
    """A transaction on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap an open connection inside ``BEGIN IMMEDIATE``."""
        self._conn = conn
        self.users = UserRows(conn, DIALECT)
        self.clients = ClientRows(conn, DIALECT)
        self.refresh_tokens = RefreshTokenRows(conn, DIALECT)
        self.revocations = RevocationRows(conn, DIALECT)
        self.key_policies = KeyPolicyRows(conn, DIALECT)
        self.admin_keys = AdminKeyRows(conn, DIALECT)
        self.resource_servers = ResourceServerRows(conn, DIALECT)
        # BEGIN IMMEDIATE already serialises writers, audit appends included.
        self.audit = AuditRows(conn, DIALECT, None)

    def get_tenant(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        """See ``Tx.get_tenant``; BEGIN IMMEDIATE already holds the write lock."""
        row = self._conn.execute(SELECT_TENANT, (tenant_id,)).fetchone()
        return tenant_with_keys_from_row(row) if row else None

    def insert_tenant(self, tenant: Tenant) -> None:
        """See ``Tx.insert_tenant``."""
        try:
            self._conn.execute(INSERT_TENANT, tenant_params(tenant, iso_times=True))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"tenant {tenant.id!r} already exists") from exc

    def update_tenant(self, tenant: Tenant) -> None:
        """See ``Tx.update_tenant``."""
        params = tenant_params(tenant, iso_times=True)
        if self._conn.execute(UPDATE_TENANT, (*params[1:], params[0])).rowcount != 1:
            raise NotFoundError(f"tenant {tenant.id!r} does not exist")

    def list_tenants(self, after: str | None, limit: int) -> list[Tenant]:
        """See ``Tx.list_tenants``."""
        rows = self._conn.execute(LIST_TENANTS, (after or "", limit)).fetchall()
        return [tenant_with_keys_from_row(r) for r in rows]

    def replace_keys(
        self, tenant_id: str, keys: tuple[TenantKey, ...], created_at: datetime
    ) -> None:
        """See ``Tx.replace_keys``."""
        replace_keys(self._conn.execute, DIALECT, tenant_id, keys, created_at)


class SqliteStorage:
    """Storage on a SQLite file (``sqlite:///path``); the embedded default."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        """Remember the file; connections open lazily, one per thread."""
        self._path = str(path)
        self._timeout = timeout
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[SqliteTx]:
        """See ``Storage.transaction``."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        try:
            yield SqliteTx(conn)
        except sqlite3.Error as exc:
            conn.rollback()
            raise StorageUnavailableError(f"SQLite failed: {exc}") from exc
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite commit failed: {exc}") from exc

    def load_key_record(self, tenant_id: str) -> KeyRecord | None:
        """See ``Storage.load_key_record``."""
        try:
            row = self._conn().execute(SELECT_KEY, (tenant_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return key_record_from_row(row) if row else None

    def load_snapshot_page(
        self, after: str, limit: int, *, revoked_since: int, expiring_after: int
    ) -> list[StoredTenant]:
        """See ``Storage.load_snapshot_page``."""
        conn = self._conn()
        try:
            return read_snapshot_page(
                lambda sql, params: conn.execute(sql, params).fetchall(),
                PAGE_STATEMENTS,
                after,
                limit,
                revoked_since=revoked_since,
                expiring_after=expiring_after,
            )
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc

    def load_tenant_ids(self, limit: int) -> frozenset[str] | None:
        """See ``Storage.load_tenant_ids``."""
        try:
            found = self._conn().execute(LIST_TENANT_IDS, (limit + 1,)).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return frozenset(row[0] for row in found) if len(found) <= limit else None

    def load_verification_state(
        self, tenant_id: str, subject: str, jti: str
    ) -> VerificationState | None:
        """See ``Storage.load_verification_state``."""
        try:
            row = self._conn().execute(LOAD_STATE, (subject, jti, tenant_id)).fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return state_from_row(row) if row else None

    def load_client_state(self, tenant_id: str, client_id: str) -> ClientState | None:
        """See ``Storage.load_client_state``: one statement, so one snapshot."""
        params = client_state_params(tenant_id, client_id)
        try:
            row = self._conn().execute(CLIENT_STATE, params).fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return client_state_from_row(row) if row else None

    def load_revocations(
        self, tenant_id: str, *, revoked_since: int, expiring_after: int
    ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        """See ``Storage.load_revocations``."""
        conn = self._conn()
        try:
            subjects = conn.execute(LOAD_SUBJECTS, (tenant_id, revoked_since)).fetchall()
            jtis = conn.execute(LOAD_JTIS, (tenant_id, expiring_after)).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return [tuple(r) for r in subjects], [tuple(r) for r in jtis]

    def ping(self) -> None:
        """See ``Storage.ping``."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc

    def memory_declared(self) -> bool:
        """See ``Storage.memory_declared``."""
        try:
            return self._conn().execute(MEMORY_DECLARED).fetchone() is not None
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc

    def declare_memory(self) -> None:
        """See ``Storage.declare_memory``."""
        with self.transaction() as tx:
            tx._conn.execute(DECLARE_MEMORY, (datetime.now(UTC).isoformat(),))

    def legacy_issuer_until(self) -> datetime | None:
        """See ``Storage.legacy_issuer_until``."""
        try:
            row = self._conn().execute(rows.LEGACY_ISSUER_UNTIL).fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"SQLite is unavailable: {exc}") from exc
        return None if row is None else datetime.fromisoformat(row[0])

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        conn = self._conn()
        with self.transaction():
            conn.execute(CREATE_MIGRATIONS)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for m in migrations.load("sqlite"):
                if m.version in done:
                    continue
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
                    (m.version, m.name),
                )
                applied.append(m.version)
        return applied

    def pending_migrations(self) -> list[int]:
        """Return versions not yet applied."""
        conn = self._conn()
        conn.execute(CREATE_MIGRATIONS)
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        return [m.version for m in migrations.load("sqlite") if m.version not in done]

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StorageUnavailableError(f"cannot open SQLite {self._path}: {exc}") from exc
            self._local.conn = conn
        return conn


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, line by line, with SQLite's own tokenizer deciding
    where a statement ends (so ';' inside comments or strings is harmless)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        statements.append(buffer.strip())  # let SQLite report the unterminated statement
    return statements
