"""Revocation when Redis is unreachable: a revoke that cannot write its cache mark is a 503
that changes nothing, and revocations already made are still enforced (PostgreSQL answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tenantauth.app import create_app
from tenantauth.domain.services import Services
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
    issue,
)
from tests.support import Backend, FixedClock, make_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once
ACME = f"{TENANTS}/acme"


@pytest.fixture
def healthy(postgres_backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app on real PostgreSQL and Redis, with tenant acme."""
    application = create_app(make_settings(postgres_backend, tmp_path), clock=clock)
    create_tenant(application.test_client(), "acme")
    yield application
    application.extensions["tenantauth"]["services"].close()


@pytest.fixture
def degraded(
    healthy: Flask, postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> Iterator[Flask]:
    """An app on the same PostgreSQL database whose Redis is unreachable."""
    settings = make_settings(postgres_backend, tmp_path, redis_url=DEAD_REDIS, redis_timeout=0.2)
    application = create_app(settings, clock=clock)
    yield application
    application.extensions["tenantauth"]["services"].close()


def status(client: FlaskClient, token: str) -> int:
    """The status of GET /v1/verify for ``token`` (POST must agree)."""
    got = client.get("/v1/verify", headers=bearer(token)).status_code
    assert client.post("/v1/verify", json={"token": token}).status_code == got
    return got


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token, unverified."""
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def services_of(app: Flask) -> Services:
    """The Services bundle of ``app``."""
    return app.extensions["tenantauth"]["services"]  # type: ignore[no-any-return]


def test_user_revoke_with_redis_down_is_503_and_changes_nothing(
    healthy: Flask, degraded: Flask
) -> None:
    """Without Redis a user revoke is a 503 problem and commits nothing: the token verifies."""
    # Checked three ways: cached and database verdicts, uv of new tokens, the next version.
    good, bad = healthy.test_client(), degraded.test_client()
    token = issue(good, "acme", sub="alice")
    assert status(good, token) == 200  # warm entry in Redis
    r = bad.post(f"{ACME}/users/alice/revoke", headers=ADMIN)
    assert_problem(r, 503, "cache_unavailable")
    assert status(good, token) == 200
    assert status(bad, token) == 200  # the database: nothing was committed
    services_of(healthy).cache.fence("acme", 10**6)  # no entry from now on: PostgreSQL answers
    assert status(good, token) == 200
    assert "uv" not in claims_of(issue(good, "acme", sub="alice"))
    body = assert_json(good.post(f"{ACME}/users/alice/revoke", headers=ADMIN), 200)
    assert body["version"] == 1
    assert status(good, token) == 401


def test_token_revoke_with_redis_down_is_503_and_changes_nothing(
    healthy: Flask, degraded: Flask
) -> None:
    """Without Redis a token revoke is a 503 problem and commits nothing: the token verifies."""
    good, bad = healthy.test_client(), degraded.test_client()
    token = issue(good, "acme", sub="alice")
    assert status(good, token) == 200
    r = bad.post(f"{ACME}/tokens/revoke", json={"token": token}, headers=ADMIN)
    assert_problem(r, 503, "cache_unavailable")
    assert status(good, token) == 200
    assert status(bad, token) == 200
    services_of(healthy).cache.fence("acme", 10**6)
    assert status(good, token) == 200
    r = good.post(f"{ACME}/tokens/revoke", json={"token": token}, headers=ADMIN)
    assert assert_json(r, 200) == {"revoked": True}
    assert status(good, token) == 401


def test_revocations_made_earlier_hold_with_redis_down(healthy: Flask, degraded: Flask) -> None:
    """With Redis down, tokens revoked earlier (user and jti) are 401; other tokens are 200."""
    good, bad = healthy.test_client(), degraded.test_client()
    alice, bob = issue(good, "acme", sub="alice"), issue(good, "acme", sub="bob")
    bob_too = issue(good, "acme", sub="bob")
    assert status(bad, alice) == status(bad, bob) == 200  # the database answers, accepting
    assert_json(good.post(f"{ACME}/users/alice/revoke", headers=ADMIN), 200)
    r = good.post(f"{ACME}/tokens/revoke", json={"token": bob}, headers=ADMIN)
    assert assert_json(r, 200) == {"revoked": True}
    for _ in range(2):  # the first failure opens the breaker; both paths must agree
        assert_problem(bad.get("/v1/verify", headers=bearer(alice)), 401, "invalid_token")
        assert_problem(bad.get("/v1/verify", headers=bearer(bob)), 401, "invalid_token")
        assert status(bad, bob_too) == 200
    assert status(bad, issue(good, "acme", sub="alice")) == 200
    ready = bad.get("/readyz").json  # it really ran without Redis
    assert ready["dependencies"]["cache"]["ok"] is False  # type: ignore[index]
