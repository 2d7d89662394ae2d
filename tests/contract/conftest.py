"""Contract fixtures: every storage adapter, every cache adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.redis import RedisCache
from tenantauth.storage import MigratableStorage, open_storage
from tests.faults.harness import TcpProxy

#: The lease of the memory protocol's contract tests (test_memory_race, test_memory_warming):
#: short, so that a test waiting one out stays quick.
MEMORY_LEASE = 0.5


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MigratableStorage]:
    """Each storage adapter, migrated and empty."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    adapter = open_storage(url)
    adapter.migrate()
    yield adapter
    adapter.close()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    """The fault suite's relay in front of the run's own database (the shared server itself
    is never touched): it can cut, black-hole or delay the path, and counts round trips."""
    parts = urlsplit(pg_url)
    running = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield running
    running.close()


@pytest.fixture
def redis_cache(redis_url: str) -> Iterator[RedisCache]:
    """RedisCache on our own (flushed) DB of the real Redis server."""
    cache = RedisCache(redis_url, timeout=2.0)
    yield cache
    cache.close()


@pytest.fixture
def leases(redis_url: str) -> Iterator[RedisLeases]:
    """The lease registry on the test's own Redis DB, with ``MEMORY_LEASE``."""
    registry = RedisLeases(redis_url, lease_seconds=MEMORY_LEASE, timeout=2.0)
    yield registry
    registry.close()
