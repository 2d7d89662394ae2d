"""What "ready" means per dependency (domain/readiness.py; docs/design.md, "Readiness")."""

from __future__ import annotations

import pytest

from tenantauth.domain.readiness import (
    DependencyState,
    Readiness,
    assess,
    eviction_policy_problem,
)

UP = DependencyState(configured=True, ok=True, latency_ms=1.0)
DOWN = DependencyState(configured=True, ok=False, latency_ms=200.0)
CACHE_UP = DependencyState(configured=True, ok=True, latency_ms=0.5, eviction_policy="noeviction")
NO_CACHE = DependencyState(configured=False, ok=True)


@pytest.mark.parametrize(
    ("database", "cache", "expected"),
    [
        (UP, CACHE_UP, Readiness.READY),
        (UP, NO_CACHE, Readiness.READY),
        (UP, DOWN, Readiness.DEGRADED),
        (DOWN, CACHE_UP, Readiness.DEGRADED),
        (DOWN, DOWN, Readiness.UNAVAILABLE),
        (DOWN, NO_CACHE, Readiness.UNAVAILABLE),
    ],
    ids=["both-up", "embedded", "cache-down", "db-down", "both-down", "embedded-db-down"],
)
def test_readiness_per_dependency(
    database: DependencyState, cache: DependencyState, expected: Readiness
) -> None:
    """One dependency down keeps the pod ready (degraded, with a reason); none left is not."""
    readiness, reasons = assess(database, cache)
    assert readiness is expected
    assert bool(reasons) is (expected is not Readiness.READY)


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl"]
)
def test_an_evicting_cache_is_unavailable_even_with_the_database_up(policy: str) -> None:
    """A Redis that may evict revocation marks makes the pod unavailable, naming the policy."""
    cache = DependencyState(configured=True, ok=True, latency_ms=0.5, eviction_policy=policy)
    readiness, reasons = assess(UP, cache)
    assert readiness is Readiness.UNAVAILABLE
    assert reasons == [eviction_policy_problem(policy)] and repr(policy) in reasons[0]


@pytest.mark.parametrize("policy", ["noeviction", "", None])
def test_noeviction_or_an_unknown_policy_is_no_problem(policy: str | None) -> None:
    """noeviction is required; a policy Redis will not tell ("") is warned about, not fatal."""
    assert eviction_policy_problem(policy) is None
