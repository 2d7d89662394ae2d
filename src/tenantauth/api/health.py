"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Response, json

from tenantauth.api import schemas
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.problems import problem_response
from tenantauth.errors import DependencyUnavailableError

bp = Blueprint("health", __name__, description="Probes.")


@bp.get("/healthz")
@bp.response(200, schemas.HealthResponseSchema)
def healthz() -> Response:
    """The process is alive. Touches no dependency."""
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@bp.get("/readyz")
@bp.response(200, schemas.HealthResponseSchema)
@bp.alt_response(503, schema=schemas.ProblemSchema, content_type="application/problem+json")
def readyz() -> Response:
    """Storage and cache both answer."""
    svc = services()
    checks: dict[str, str] = {}
    for name, ping in (("storage", svc.storage.ping), ("cache", svc.cache.ping)):
        try:
            ping()
            checks[name] = "ok"
        except DependencyUnavailableError as exc:
            checks[name] = exc.detail
    if all(v == "ok" for v in checks.values()):
        return Response(json.dumps({"status": "ok", "checks": checks}), mimetype="application/json")
    return problem_response(
        503, "not_ready", "Not ready", "A dependency is unavailable.", checks=checks
    )
