"""Per-request metrics and the request log line, as Flask hooks.

One line per request (``event: "request"``): request id, method, route template, status,
duration, client address, tenant id when known, and for a rejected token its reason category
and text (never the token). The raw path is not logged: it may carry user names, and below
the gateway endpoint it is the protected request's own path. Accepted verifications may be
sampled (``TENANTAUTH_LOG_SAMPLE_ACCEPTED``); everything else is always logged, and metrics
always count everything.

What the views know travels on ``flask.g``: ``tenant_id`` (the verified token's tenant),
``rejected`` (the ``InvalidTokenError`` answered, set by ``api.problems``) and
``introspection_active`` (RFC 7662's answer).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from tenantauth.domain.models import is_tenant_id
from tenantauth.observability.logs import LogWriter
from tenantauth.observability.metrics import PrometheusTelemetry

#: Flask endpoints that verify a token, and the ``endpoint`` label each counts under.
VERIFY_ENDPOINTS = {
    "verify.verify_header": "verify",
    "verify.verify_forwarded": "verify",
    "verify.verify_body": "verify",
    "introspection.introspect": "introspect",
    "introspection.introspect_any_tenant": "introspect",
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED = "<unmatched>"
_log = logging.getLogger("tenantauth.request")


@dataclass(frozen=True)
class RequestTelemetry:
    """Counts and logs every request the app answers.

    ``metrics`` None: nothing counted (metrics off); ``writer`` None: no request lines.
    """

    metrics: PrometheusTelemetry | None
    writer: LogWriter | None
    sample_accepted: float = 1.0

    def install(self, app: Flask) -> None:
        """Register the hooks; call before any other ``before_request`` so the duration
        covers every check (and its ``after_request`` then runs last)."""
        app.before_request(_start_clock)
        app.after_request(self.finish)

    def finish(self, response: Response) -> Response:
        """``after_request``: count the request and queue its log line; return ``response``."""
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        rule = request.url_rule
        route = rule.rule if rule is not None else _UNMATCHED
        method = request.method if request.method in _METHODS else "other"
        status = response.status_code
        verifier = VERIFY_ENDPOINTS.get(request.endpoint or "")
        outcome, reason = _outcome(verifier, status) if verifier else ("", "")
        if self.metrics is not None:
            self.metrics.request(route, method, status, seconds)
            if verifier:
                self.metrics.verify(verifier, outcome, reason)
        if self.writer is not None and self._logged(outcome, status):
            line = _line(
                response, route=route, method=method, status=status, seconds=seconds, reason=reason
            )
            self.writer.put(line)
        return response

    def _logged(self, outcome: str, status: int) -> bool:
        """Whether this request gets a line: its level is on, and it is not an accepted
        verification left out by sampling. Decided before anything is formatted."""
        if not _log.isEnabledFor(logging.ERROR if status >= 500 else logging.INFO):
            return False
        if outcome == "accepted" and self.sample_accepted < 1.0:
            return random.random() < self.sample_accepted  # noqa: S311 - sampling, not secrets
        return True


def _start_clock() -> None:
    g.started = time.perf_counter()


def _outcome(verifier: str, status: int) -> tuple[str, str]:
    """Return (outcome, reason category) of a request to a verifying endpoint."""
    rejected = g.get("rejected")
    if rejected is not None:
        return "rejected", str(rejected.kind)
    if status == 200:
        if verifier == "introspect" and not g.get("introspection_active", True):
            return "rejected", "inactive"
        return "accepted", "none"
    if status == 503:
        return "unavailable", "none"
    return "bad_request", "none"


def _line(
    response: Response, *, route: str, method: str, status: int, seconds: float, reason: str
) -> dict[str, Any]:
    """The request's log event (rendered later, by the writer thread)."""
    event: dict[str, Any] = {
        "_at": time.time() - seconds,
        "level": "error" if status >= 500 else "info",
        "event": "request",
        "request_id": response.headers.get("X-Request-Id"),
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": request.remote_addr,
    }
    tenant = g.get("tenant_id") or (request.view_args or {}).get("tenant_id")
    if isinstance(tenant, str) and is_tenant_id(tenant):  # never echo junk from a URL
        event["tenant_id"] = tenant
    rejected = g.get("rejected")
    if rejected is not None:
        event["reason"] = reason
        event["detail"] = rejected.reason
    code = g.get("problem_code")
    if code is not None:
        event["code"] = code
    return event
