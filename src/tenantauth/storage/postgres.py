"""PostgresStorage: psycopg 3 with a psycopg_pool connection pool.

The pool is created closed and opened on first use in each process, so gunicorn workers never
share sockets inherited across ``fork``. Connections run in autocommit; ``transaction()`` opens
an explicit transaction in pipeline mode (``pipelined_transaction``), and the hot-path read is
a single statement with no BEGIN/COMMIT.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout

from tenantauth.domain.models import (
    ClientState,
    KeyRecord,
    StoredTenant,
    Tenant,
    TenantKey,
    VerificationState,
)
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    StorageUnavailableError,
)
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

log = logging.getLogger(__name__)


def settled_rowcount(cur: psycopg.Cursor[Any]) -> int:
    """The rows ``cur``'s last statement touched. In pipeline mode a statement's result comes
    back only when the pipeline is synced, so this syncs first (one round trip; the statements
    queued before it run, in order, and the transaction stays open)."""
    pipeline: psycopg.Pipeline | None = getattr(cur.connection, "open_pipeline", None)
    if pipeline is not None:
        pipeline.sync()
    return cur.rowcount


# A failed statement aborts a PostgreSQL transaction: inserts that may conflict run in a
# savepoint (conn.transaction() nested) so the outer transaction survives the ConflictError.
DIALECT = Dialect(
    "%s",
    (psycopg.errors.UniqueViolation,),
    lambda conn: conn.transaction(),
    rowcount=settled_rowcount,
    iso_times=False,
    row_lock=" FOR UPDATE",
    other_keys=rows.other_keys_sql("string_agg", "encode(k.secret_blob, 'hex')"),
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
# Locks the tenant row before it is read: see ``PostgresTx.get_tenant``.
LOCK_TENANT = "SELECT 1 FROM tenants WHERE id = %s FOR UPDATE"
CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
)
# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x7E7A47A0
# Audit appends serialise on a transaction-scoped advisory lock rather than a chain-head row:
# it needs no seeded row, and readers of audit_log never wait for it (docs/design.md).
_AUDIT_LOCK = 0x7E7A4A0D
AUDIT_LOCK_SQL = f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK})"


@contextmanager
def pipelined_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run the block as one transaction in pipeline mode (PostgreSQL, libpq "Pipeline Mode").

    A statement is sent when it is executed, but the server is waited for only when a result
    is read (``fetch*``, ``settled_rowcount``) or at the end. So BEGIN goes out with the first
    statement whose result is read, and COMMIT with the writes after the last read: a
    read-then-write transaction waits for the server twice instead of once per statement,
    which matters where the database is a network hop away (docs/design.md, "Changes under
    load": what this saves, and why a CPU-saturated worker's changes did not get faster).
    Statements still run one at a time in the order sent, and a read still waits for its own
    result, so every step that must happen before something outside the transaction (the
    fence in Redis after the row lock) still does.

    Commits when the block returns; the COMMIT's answer is awaited before this returns.
    When the block raises, or a queued statement failed (the server then skips the rest,
    COMMIT included, and its error is raised here), the transaction is rolled back.
    """
    try:
        with conn.pipeline() as pipeline:
            conn.open_pipeline = pipeline  # type: ignore[attr-defined]  # settled_rowcount's
            conn.execute(b"BEGIN")
            yield
            conn.execute(b"COMMIT")
    finally:
        conn.open_pipeline = None  # type: ignore[attr-defined]
        _roll_back_unless_idle(conn)


def _roll_back_unless_idle(conn: psycopg.Connection[Any]) -> None:
    """Roll back an open (or failed) transaction so the pool gets the connection back clean.
    A connection too broken for that is left to the pool, which discards it."""
    if conn.closed or conn.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute(b"ROLLBACK")
    except psycopg.Error:
        log.debug("rollback failed; the pool discards the connection", exc_info=True)


class PostgresTx:
    """A transaction on one pooled connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        """Wrap a connection that is inside ``pipelined_transaction``."""
        self._conn = conn
        self.users = UserRows(conn, DIALECT)
        self.clients = ClientRows(conn, DIALECT)
        self.refresh_tokens = RefreshTokenRows(conn, DIALECT)
        self.revocations = RevocationRows(conn, DIALECT)
        self.key_policies = KeyPolicyRows(conn, DIALECT)
        self.admin_keys = AdminKeyRows(conn, DIALECT)
        self.resource_servers = ResourceServerRows(conn, DIALECT)
        self.audit = AuditRows(conn, DIALECT, AUDIT_LOCK_SQL)

    def get_tenant(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        """See ``Tx.get_tenant``; ``for_update`` takes the row lock first (SELECT ... FOR
        UPDATE), then reads the tenant with its other keys in a statement of its own.

        Why two statements: under READ COMMITTED, a ``SELECT … FOR UPDATE`` that waited for
        another change's lock returns the row's new version but evaluates the rest of its
        select list — the ``tenant_keys`` aggregate — in its own, older snapshot; a change
        decided on that would lose the other change's keys (two schedule runs both publishing
        a next key: tests/integration/test_rollover_api.py). Every write of ``tenant_keys``
        holds this lock, so the read after it is the state the change starts from. Both go
        out together (pipeline mode); the server runs the read once it holds the lock.
        """
        lock = self._conn.execute(LOCK_TENANT, (tenant_id,)) if for_update else None
        read = self._conn.execute(SELECT_TENANT, (tenant_id,))
        if lock is not None and lock.fetchone() is None:
            return None
        row = read.fetchone()
        return tenant_with_keys_from_row(row) if row else None

    def insert_tenant(self, tenant: Tenant) -> None:
        """See ``Tx.insert_tenant``."""
        try:
            with self._conn.transaction():  # a savepoint, so the outer tx survives a conflict
                self._conn.execute(INSERT_TENANT, tenant_params(tenant, iso_times=False))
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"tenant {tenant.id!r} already exists") from exc

    def update_tenant(self, tenant: Tenant) -> None:
        """See ``Tx.update_tenant``."""
        params = tenant_params(tenant, iso_times=False)
        cur = self._conn.execute(UPDATE_TENANT, (*params[1:], params[0]))
        if settled_rowcount(cur) != 1:
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


#: The psycopg exception of a wait that ran out of time (``Connection.wait``'s ``timeout``).
_WAIT_TIMEOUT: type[Exception] = getattr(psycopg.errors, "_WaitTimeout", psycopg.OperationalError)


#: A connection back in the pool for less than this is handed out again without the pool's
#: check (an empty query: a round trip, and CPU of both processes, on every checkout). Under
#: load every connection is this fresh; one that sat idle longer is checked, as before
#: (docs/design.md, "Built: the token endpoint without the framework").
FRESH_SECONDS = 1.0


def check_unless_fresh(conn: psycopg.Connection[Any]) -> None:
    """The pool's ``check``: ``ConnectionPool.check_connection`` unless ``conn`` was handed
    back less than ``FRESH_SECONDS`` ago. Raises what the check raises (the pool then
    replaces the connection)."""
    returned_at = getattr(conn, "returned_at", None)
    if returned_at is not None and time.monotonic() - returned_at < FRESH_SECONDS:
        return
    ConnectionPool.check_connection(conn)


class BoundedConnection(psycopg.Connection[Any]):
    """A connection on which no network wait lasts longer than ``op_timeout`` seconds.

    ``statement_timeout`` is enforced by the server, so it cannot end a wait for a server that
    no longer answers at all (hung, or a network path that swallows packets while the TCP
    peer still acknowledges them). This bound is the client-side backstop: the connection is
    closed (the pool then replaces it) and the caller gets an error, 503 upstream.
    """

    op_timeout: float = 6.0
    #: When the storage last handed this connection back to the pool (``time.monotonic``).
    returned_at: float | None = None
    #: The pipeline of the ``pipelined_transaction`` running on this connection, if any.
    open_pipeline: psycopg.Pipeline | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """See ``psycopg.Connection.wait``; bounded by ``op_timeout`` when no timeout is given."""
        try:
            return super().wait(gen, interval, self.op_timeout if timeout is None else timeout)
        except _WAIT_TIMEOUT:
            # Mid-protocol: the connection cannot be used again.
            self.pgconn.finish()
            raise


class PostgresStorage:
    """Storage on PostgreSQL (``postgresql://...``)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        statement_timeout_ms: int = 5000,
        telemetry: Telemetry = NULL_TELEMETRY,
    ) -> None:
        """Create the (closed) pool; it opens on first use in this process. ``telemetry`` is
        told each call's latency and outcome, and the pool's use after it."""
        # Waits end a second after the server's own statement timeout would have.
        bounded = type(
            "Bounded", (BoundedConnection,), {"op_timeout": statement_timeout_ms / 1000 + 1}
        )
        self._pool = ConnectionPool(
            url,
            connection_class=bounded,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # psycopg_pool retries a lost connection with a doubling delay and no cap until
            # reconnect_timeout (default 5 min): after a minute-long outage the next attempt
            # could be a minute away. Giving up early instead lets the next request start a
            # fresh attempt at once, so recovery follows the database within seconds.
            reconnect_timeout=max(10.0, 2 * timeout),
            open=False,
            check=check_unless_fresh,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(timeout)),
                "options": f"-c statement_timeout={statement_timeout_ms}",
                # A server that vanishes mid-query (host down, packets dropped) would leave
                # the read blocked forever: the kernel gives up on unacknowledged data after
                # tcp_user_timeout, and keepalives find a dead idle peer (libpq, Linux).
                "tcp_user_timeout": max(1000, int(timeout * 1000)),
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "application_name": "tenantauth",
            },
            name="tenantauth",
        )
        self._open_lock = threading.Lock()
        self._opened = False
        self._telemetry = telemetry

    @contextmanager
    def transaction(self) -> Iterator[PostgresTx]:
        """See ``Storage.transaction``."""
        with self._guard(), self._connection() as conn, pipelined_transaction(conn):
            yield PostgresTx(conn)

    def load_key_record(self, tenant_id: str) -> KeyRecord | None:
        """See ``Storage.load_key_record``."""
        with self._guard(), self._connection() as conn:
            row = conn.execute(SELECT_KEY, (tenant_id,)).fetchone()
        return key_record_from_row(row) if row else None

    def load_verification_state(
        self, tenant_id: str, subject: str, jti: str
    ) -> VerificationState | None:
        """See ``Storage.load_verification_state``."""
        # `subject` and `jti` come from a token whose signature is not checked yet. PostgreSQL
        # text cannot hold NUL, so no revocation row names such a value: ask for NULL, which
        # matches nothing, rather than fail the query (a valid token may carry NUL).
        params = (_nul_free(subject), _nul_free(jti), tenant_id)
        with self._guard(), self._connection() as conn:
            row = conn.execute(LOAD_STATE, params).fetchone()
        return state_from_row(row) if row else None

    def load_client_state(self, tenant_id: str, client_id: str) -> ClientState | None:
        """See ``Storage.load_client_state``: one statement, so no BEGIN/COMMIT."""
        params = client_state_params(tenant_id, client_id)
        with self._guard(), self._connection() as conn:
            row = conn.execute(CLIENT_STATE, params).fetchone()
        return client_state_from_row(row) if row else None

    def load_revocations(
        self, tenant_id: str, *, revoked_since: int, expiring_after: int
    ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        """See ``Storage.load_revocations``."""
        with self._guard(), self._connection() as conn:
            subjects = conn.execute(LOAD_SUBJECTS, (tenant_id, revoked_since)).fetchall()
            jtis = conn.execute(LOAD_JTIS, (tenant_id, expiring_after)).fetchall()
        return [tuple(r) for r in subjects], [tuple(r) for r in jtis]

    def load_snapshot_page(
        self, after: str, limit: int, *, revoked_since: int, expiring_after: int
    ) -> list[StoredTenant]:
        """See ``Storage.load_snapshot_page``."""
        with self._guard(), self._connection() as conn:
            return read_snapshot_page(
                lambda sql, params: conn.execute(sql, params).fetchall(),
                PAGE_STATEMENTS,
                after,
                limit,
                revoked_since=revoked_since,
                expiring_after=expiring_after,
            )

    def load_tenant_ids(self, limit: int) -> frozenset[str] | None:
        """See ``Storage.load_tenant_ids``."""
        with self._guard(), self._connection() as conn:
            found = conn.execute(LIST_TENANT_IDS, (limit + 1,)).fetchall()
        return frozenset(row[0] for row in found) if len(found) <= limit else None

    def ping(self) -> None:
        """See ``Storage.ping``."""
        with self._guard(), self._connection() as conn:
            conn.execute("SELECT 1")

    def memory_declared(self) -> bool:
        """See ``Storage.memory_declared``."""
        with self._guard(), self._connection() as conn:
            return conn.execute(MEMORY_DECLARED).fetchone() is not None

    def declare_memory(self) -> None:
        """See ``Storage.declare_memory``."""
        with self.transaction() as tx:
            tx._conn.execute(DECLARE_MEMORY, (datetime.now(UTC),))

    def legacy_issuer_until(self) -> datetime | None:
        """See ``Storage.legacy_issuer_until``."""
        with self._guard(), self._connection() as conn:
            row = conn.execute(rows.LEGACY_ISSUER_UNTIL).fetchone()
        return None if row is None else row[0]

    def migrate(self) -> list[int]:
        """Apply pending migrations under an advisory lock; return the versions applied."""
        applied = []
        # Not pipelined: a migration file holds several statements, which only the simple
        # query protocol takes.
        with self._guard(), self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(CREATE_MIGRATIONS)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for m in migrations.load("postgres"):
                if m.version in done:
                    continue
                conn.execute(m.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, now())", (m.version, m.name)
                )
                applied.append(m.version)
        return applied

    def pending_migrations(self) -> list[int]:
        """Return versions not yet applied."""
        with self._guard(), self._connection() as conn:
            conn.execute(CREATE_MIGRATIONS)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        return [m.version for m in migrations.load("postgres") if m.version not in done]

    def close(self) -> None:
        """Close the pool."""
        if self._opened:
            self._pool.close()
            self._opened = False

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True
        with self._pool.connection() as conn:
            try:
                yield conn
            finally:
                # Stamped before the pool takes it back; a broken connection is discarded
                # by the pool there, whatever the stamp.
                conn.returned_at = time.monotonic()  # type: ignore[attr-defined]

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn driver and pool failures into ``StorageUnavailableError``; report the call."""
        started, outage = time.perf_counter(), False
        try:
            yield
        except PoolTimeout as exc:
            outage = True
            raise StorageUnavailableError("no database connection available in time") from exc
        except (psycopg.errors.UniqueViolation, psycopg.errors.IntegrityError) as exc:
            raise ConflictError("the change conflicts with existing data") from exc
        except psycopg.DataError as exc:
            # A value PostgreSQL cannot store (e.g. NUL in text) is bad input, not an outage.
            raise InvalidRequestError("a value cannot be stored as given") from exc
        except psycopg.Error as exc:
            outage = True
            log.warning("database error: %s", type(exc).__name__)
            raise StorageUnavailableError("the database is unavailable") from exc
        finally:
            # Conflicts, bad values and the domain's own errors are answers, not outages.
            self._report(time.perf_counter() - started, ok=not outage)

    def _report(self, seconds: float, *, ok: bool) -> None:
        """Tell telemetry how the call went and how full the pool is now."""
        self._telemetry.dependency_call("database", seconds, ok=ok)
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        self._telemetry.pool(
            in_use=size - idle,
            idle=idle,
            waiting=stats.get("requests_waiting", 0),
            maximum=self._pool.max_size,
        )


def _nul_free(text: str) -> str | None:
    """Return ``text``, or None (matches no row) if it holds NUL, which PostgreSQL text cannot."""
    return None if "\x00" in text else text
