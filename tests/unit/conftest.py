"""Unit fixtures: Services on a SQLite file and RedisCache over fakeredis; no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest

from tenantauth.cache.redis import RedisCache
from tenantauth.domain.models import Tenant
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import create_tenant
from tests.support import FixedClock
from tests.unit.helpers import ACME_SECRET, OTHER_SECRET, make_services, secret_text


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    """A fakeredis client on its own private server."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def cache(fake_redis: fakeredis.FakeRedis) -> RedisCache:
    """A RedisCache whose client is ``fake_redis``."""
    return RedisCache("redis://fakeredis.invalid/0", client=fake_redis)


@pytest.fixture
def svc(tmp_path: Path, clock: FixedClock, cache: RedisCache) -> Iterator[Services]:
    """Services on a migrated SQLite file, fakeredis and the fixed clock."""
    services = make_services(tmp_path / "unit.db", clock, cache)
    yield services
    services.close()


@pytest.fixture
def acme(svc: Services) -> Tenant:
    """Tenant ``acme`` with the known secret ACME_SECRET."""
    return create_tenant(svc, "acme", "Acme", secret=secret_text(ACME_SECRET))


@pytest.fixture
def other(svc: Services) -> Tenant:
    """Tenant ``other`` with the known secret OTHER_SECRET."""
    return create_tenant(svc, "other", "Other", secret=secret_text(OTHER_SECRET))
