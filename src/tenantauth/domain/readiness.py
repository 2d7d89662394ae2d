"""What "ready" means (docs/design.md, "Readiness"): which answers a pod can still give
correctly with the dependencies it can reach right now.

Pure decisions only; the probing itself (timing the pings) happens in api/health.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: The only Redis ``maxmemory-policy`` under which a revocation mark cannot be evicted
#: (an evicted mark could let a revoked token through: docs/design.md, "Cache").
REQUIRED_EVICTION_POLICY = "noeviction"


class Readiness(Enum):
    """A pod's readiness: whether it belongs in the load balancer's rotation."""

    READY = "ready"  # every dependency answers
    DEGRADED = "degraded"  # one is down, but what the pod answers is still correct
    UNAVAILABLE = "unavailable"  # nothing useful can be answered: leave the rotation


@dataclass(frozen=True)
class DependencyState:
    """The outcome of one bounded probe of a dependency."""

    configured: bool
    ok: bool
    latency_ms: float | None = None
    eviction_policy: str | None = None  # the cache's policy ("" when it cannot be read)


def eviction_policy_problem(policy: str | None) -> str | None:
    """Return why ``policy`` is unsafe, or None when it is ``noeviction`` or unknown
    (``""``/None: the server will not say; the start-up check has already warned)."""
    if not policy or policy == REQUIRED_EVICTION_POLICY:
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}: it may evict revocation marks; "
        f"{REQUIRED_EVICTION_POLICY!r} is required"
    )


def assess(database: DependencyState, cache: DependencyState) -> tuple[Readiness, list[str]]:
    """Return the readiness the two probes allow and the reasons for anything less.

    Database down, cache up: verification of warm tenants is still exact (their entries and
    revocation marks are in Redis), cold tenants and changes answer 503 — ready, degraded.
    Cache down, database up: everything still works from PostgreSQL at a higher cost —
    ready, degraded. Both down: no verification can be answered — unavailable. A cache that
    may evict revocation marks is unavailable whatever else answers (fail closed).
    """
    reasons: list[str] = []
    unsafe = eviction_policy_problem(cache.eviction_policy) if cache.ok else None
    if unsafe:
        return Readiness.UNAVAILABLE, [unsafe]
    cache_down = cache.configured and not cache.ok
    if not database.ok:
        if not cache.configured or cache_down:
            return Readiness.UNAVAILABLE, [
                "database and cache are both unavailable"
                if cache_down
                else "the database is unavailable"
            ]
        reasons.append(
            "database unavailable: only tenants warm in the cache verify; "
            "cold tenants and every change answer 503"
        )
    if cache_down:
        reasons.append(
            "cache unavailable: verification reads the database (slower); "
            "changes that cannot be confirmed in the cache answer 503"
        )
    return (Readiness.DEGRADED if reasons else Readiness.READY), reasons
