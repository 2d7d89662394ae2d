"""Fail closed: what the API answers when Redis and/or PostgreSQL are unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tenantauth.app import create_app
from tests.support import Backend, FixedClock, admin_headers, make_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once
DEAD_POSTGRES = "postgresql://nobody@127.0.0.1:1/none"
# kid "acme", payload {"sub": "u1", "jti": "j1"}, a made-up signature: well-formed enough that
# the verifier has to look the tenant up before it can reject it.
FORGED = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFjbWUiLCJ0eXAiOiJKV1QifQ."
    "eyJzdWIiOiJ1MSIsImp0aSI6ImoxIn0." + "A" * 43
)


def app_on(backend: Backend, tmp_path: Path, clock: FixedClock, **overrides: object) -> Flask:
    """An app on backend with some settings overridden."""
    return create_app(make_settings(backend, tmp_path, **overrides), clock=clock)


@pytest.fixture
def healthy(postgres_backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app on real PostgreSQL and Redis."""
    application = app_on(postgres_backend, tmp_path, clock)
    yield application
    application.extensions["tenantauth"]["services"].close()


def seed(app: Flask) -> str:
    """Create tenant acme and return a token of it."""
    client = app.test_client()
    r = client.post(
        "/v1/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin_headers()
    )
    assert r.status_code == 201
    r = client.post("/v1/admin/tenants/acme/tokens", json={"sub": "u1"}, headers=admin_headers())
    return r.json["access_token"]  # type: ignore[no-any-return, index]


def bearer(token: str) -> dict[str, str]:
    """Authorization header for token."""
    return {"Authorization": f"Bearer {token}"}


def test_redis_down_verification_answers_from_postgres(
    healthy: Flask, postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """With Redis unreachable, valid tokens still get 200 and bad ones 401 (never 5xx)."""
    token = seed(healthy)
    degraded = app_on(postgres_backend, tmp_path, clock, redis_url=DEAD_REDIS, redis_timeout=0.2)
    client = degraded.test_client()
    for _ in range(3):
        assert client.get("/v1/verify", headers=bearer(token)).status_code == 200
    assert client.get("/v1/verify", headers=bearer(token[:-2] + "AA")).status_code == 401
    ready = client.get("/readyz")
    assert ready.status_code == 200  # still in rotation: PostgreSQL answers everything
    assert ready.json["status"] == "degraded"  # type: ignore[index]


def test_redis_down_rotation_is_refused_and_nothing_changes(
    healthy: Flask, postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """A change that cannot fence the cache is a 503 that leaves the tenant as it was."""
    token = seed(healthy)
    degraded = app_on(postgres_backend, tmp_path, clock, redis_url=DEAD_REDIS, redis_timeout=0.2)
    client = degraded.test_client()
    r = client.post("/v1/admin/tenants/acme/rotate", headers=admin_headers())
    assert r.status_code == 503
    assert r.content_type == "application/problem+json"
    r = client.patch(
        "/v1/admin/tenants/acme", json={"status": "suspended"}, headers=admin_headers()
    )
    assert r.status_code == 503
    shown = healthy.test_client().get("/v1/admin/tenants/acme", headers=admin_headers()).json
    assert shown["key_version"] == 1  # type: ignore[index]
    assert shown["status"] == "active"  # type: ignore[index]
    assert healthy.test_client().get("/v1/verify", headers=bearer(token)).status_code == 200


def test_postgres_down_with_cold_cache_is_503(
    healthy: Flask, postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """No cache entry and no database: 503 problem, never 200 or 401."""
    token = seed(healthy)
    healthy.extensions["tenantauth"]["services"].cache.fence("acme", 10**6)  # evict for sure
    broken = app_on(
        postgres_backend,
        tmp_path,
        clock,
        database_url=DEAD_POSTGRES,
        auto_migrate=False,
        db_timeout=1.0,
    )
    r = broken.test_client().get("/v1/verify", headers=bearer(token))
    assert r.status_code == 503
    assert r.content_type == "application/problem+json"
    assert "Traceback" not in r.get_data(as_text=True)


def test_postgres_down_with_warm_cache_still_answers(
    healthy: Flask, postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """A warm Redis entry answers while PostgreSQL is down; admin writes are 503."""
    token = seed(healthy)
    client = healthy.test_client()
    assert client.get("/v1/verify", headers=bearer(token)).status_code == 200  # warm
    broken = app_on(
        postgres_backend,
        tmp_path,
        clock,
        database_url=DEAD_POSTGRES,
        auto_migrate=False,
        db_timeout=1.0,
    )
    bclient = broken.test_client()
    assert bclient.get("/v1/verify", headers=bearer(token)).status_code == 200
    r = bclient.post("/v1/admin/tenants/acme/rotate", headers=admin_headers())
    assert r.status_code == 503


def test_both_down_is_503_and_healthz_stays_up(
    postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """Both dependencies down: verify and readyz are 503, healthz is 200."""
    broken = app_on(
        postgres_backend,
        tmp_path,
        clock,
        database_url=DEAD_POSTGRES,
        redis_url=DEAD_REDIS,
        auto_migrate=False,
        db_timeout=1.0,
        redis_timeout=0.2,
    )
    client = broken.test_client()
    token = FORGED
    assert client.get("/v1/verify", headers=bearer(token)).status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_an_unknown_id_is_known_as_soon_as_it_is_created(healthy: Flask) -> None:
    """An unknown id is ruled out by the tenant directory (nothing cached for it), yet its
    first token verifies as soon as the tenant exists."""
    client = healthy.test_client()
    ghost = FORGED
    assert client.get("/v1/verify", headers=bearer(ghost)).status_code == 401
    cache = healthy.extensions["tenantauth"]["services"].cache
    assert cache.get("acme") is None
    token = seed(healthy)
    assert client.get("/v1/verify", headers=bearer(token)).status_code == 200
