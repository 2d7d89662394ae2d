"""Helpers shared by the test suites (no fixtures here; see conftest.py)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from tenantauth.settings import Settings

#: Read once at import, before any test scrubs TENANTAUTH_* from the environment.
DATABASE_URL = os.environ.get(
    "TENANTAUTH_TEST_DATABASE_URL",
    "postgresql://tenantauth_test:tenantauth_test@127.0.0.1:5432/postgres",
)
REDIS_URL = os.environ.get("TENANTAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379")
#: Highest Redis DB number a test run may claim (it claims the first free one from here
#: down to 1); only a claimed DB is ever flushed, DB 0 never.
REDIS_DB = int(os.environ.get("TENANTAUTH_TEST_REDIS_DB", "15"))
#: The key a run holds in its claimed DB; outside the tenantauth: key space on purpose.
RUN_LOCK = "tenantauth-test:run-lock"

MASTER_KEY = bytes(range(32))
MASTER_KEY_B64 = base64.b64encode(MASTER_KEY).decode()
ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop"
ISSUER = "https://auth.test"


def flush_claimed_db(client: redis.Redis) -> None:
    """FLUSHDB the run's own claimed DB (what a Redis restart without persistence leaves),
    keeping the run's claim (``RUN_LOCK``, with its expiry) in the same transaction: a bare
    FLUSHDB dropped it, and another test run on the machine could then claim the DB and
    empty it under this one."""
    lock, ttl = client.get(RUN_LOCK), client.pttl(RUN_LOCK)
    with client.pipeline(transaction=True) as pipe:
        pipe.flushdb()
        if lock is not None:
            pipe.set(RUN_LOCK, lock, px=ttl if ttl > 0 else None)
        pipe.execute()


def tenant_issuer(tenant_id: str) -> str:
    """The tenant's issuer identifier under ``ISSUER`` (its tokens' ``iss``, issue 15)."""
    return f"{ISSUER}/v1/tenants/{tenant_id}"


ACME_ISSUER = tenant_issuer("acme")
NOW = 1_800_000_000.0
#: The server the e2e and fault suites run `tenantauth serve` under, unless a test names one:
#: ``TEST_HTTP_SERVER`` (``TEST_HTTP_SERVER=gunicorn make test-faults``), else the default.
HTTP_SERVER = os.environ.get("TEST_HTTP_SERVER", "granian")


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    current: float = NOW

    def now(self) -> float:
        """Return the fixed time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move time forward (or back, with a negative number)."""
        self.current += seconds


@dataclass
class Backend:
    """Where a test's app keeps its data: a database URL and maybe a Redis URL."""

    name: str
    database_url: str
    redis_url: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def redis_db_url(db: int = REDIS_DB) -> str:
    """Return the test Redis URL pointing at our own DB number."""
    return urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{db}"))


def empty_database(database_url: str) -> None:
    """Empty every table of a run's own database but the migrations' record."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(names))


def empty_redis(redis_url: str) -> None:
    """Delete the tenantauth keys of a run's own Redis DB (its run lock stays)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        stale = list(client.scan_iter(match="tenantauth:*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


def make_settings(backend: Backend, state_dir: Path, **overrides: Any) -> Settings:
    """Return Settings for ``backend`` with test secrets; ``overrides`` replace fields."""
    values: dict[str, Any] = {
        "database_url": backend.database_url,
        "redis_url": backend.redis_url,
        "master_key": MASTER_KEY,
        "admin_token": ADMIN_TOKEN,
        "issuer": ISSUER,
        "embedded": False,
        "state_dir": state_dir,
        "auto_migrate": True,
        "log_level": "WARNING",
        # Cheap argon2 for tests (the defaults cost ~64 MiB and tens of ms per hash).
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        # In-process apps verify on the exact path: each test starts with an empty Redis, so
        # with memory on its first change after a verification would wait out a fresh lease
        # registry (2 s). Memory is tested where it is the subject: tests/contract/
        # test_memory_race.py, tests/faults/test_memory_faults.py, and every server-based
        # suite (e2e, gateways, client, faults), whose servers run the production default.
        "verify_memory": False,
    }
    values.update(overrides)
    return Settings(**values)


def admin_headers() -> dict[str, str]:
    """Return the Authorization header of the test admin."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
