"""Liveness and readiness probes (docs/design.md, "Readiness")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Response, json

from tenantauth.api import schemas
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services, settings
from tenantauth.api.problems import problem_response
from tenantauth.domain.readiness import DependencyState, Readiness, assess
from tenantauth.errors import DependencyUnavailableError

bp = Blueprint("health", __name__, description="Probes.")


@bp.get("/healthz")
@bp.response(200, schemas.HealthResponseSchema)
def healthz() -> Response:
    """The process is alive. Touches no dependency (a dependency outage must not restart
    pods: that would only add cold caches and boot storms to it)."""
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@bp.get("/readyz")
@bp.response(200, schemas.ReadinessSchema)
@bp.alt_response(503, schema=schemas.ProblemSchema, content_type="application/problem+json")
def readyz() -> Response:
    """Ready (200, "ready" or "degraded") while the pod can answer some verifications
    correctly; 503 "unavailable" when it can answer none (database and cache both down), or
    when the cache may evict revocation marks. Each probe is bounded by its dependency's
    timeout; the body names no URL or secret."""
    svc = services()
    cache = _cache_state(svc.cache.eviction_policy, configured=bool(settings().redis_url))
    database = _database_state(svc.storage.ping)
    svc.telemetry.dependency_state("database", up=database.ok)
    if cache.configured:
        svc.telemetry.dependency_state("cache", up=cache.ok)
    readiness, reasons = assess(database, cache)
    dependencies = {"database": _describe(database), "cache": _describe(cache)}
    if readiness is Readiness.UNAVAILABLE:
        return problem_response(
            503,
            "not_ready",
            "Not ready",
            "; ".join(reasons),
            readiness=readiness.value,
            reasons=reasons,
            dependencies=dependencies,
        )
    body = {"status": readiness.value, "reasons": reasons, "dependencies": dependencies}
    return Response(json.dumps(body), mimetype="application/json")


def _database_state(ping: Callable[[], None]) -> DependencyState:
    ok, latency, _ = _timed(ping)
    return DependencyState(configured=True, ok=ok, latency_ms=latency)


def _cache_state(read_policy: Callable[[], str], *, configured: bool) -> DependencyState:
    """Probe the cache by reading its eviction policy (one round trip, or two when CONFIG
    is refused and INFO answers instead)."""
    if not configured:
        return DependencyState(configured=False, ok=True)
    ok, latency, policy = _timed(read_policy)
    return DependencyState(configured=True, ok=ok, latency_ms=latency, eviction_policy=policy)


def _timed(call: Callable[[], Any]) -> tuple[bool, float, Any]:
    """Run ``call``; return (answered, milliseconds taken, its result or None)."""
    start = time.perf_counter()
    try:
        result, ok = call(), True
    except DependencyUnavailableError:
        result, ok = None, False
    return ok, round((time.perf_counter() - start) * 1000, 2), result


def _describe(state: DependencyState) -> dict[str, Any]:
    if not state.configured:
        return {"configured": False}
    out: dict[str, Any] = {"configured": True, "ok": state.ok, "latency_ms": state.latency_ms}
    if state.ok and state.eviction_policy is not None:
        out["eviction_policy"] = state.eviction_policy or "unknown"
    return out
