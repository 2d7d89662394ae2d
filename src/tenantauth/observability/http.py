"""Per-request metrics and the request log line: ``RequestTelemetry.record`` for one answered
request, and the Flask hooks that describe each request the Flask app answers.

One line per request (``event: "request"``): request id, method, route template, status,
duration, client address, tenant id when known, and for a rejected token its reason category
and text (never the token). The raw path is not logged: it may carry user names, and below
the gateway endpoint it is the protected request's own path. Accepted verifications may be
sampled (``TENANTAUTH_LOG_SAMPLE_ACCEPTED``); everything else is always logged, and metrics
always count everything.

What the views know travels on ``flask.g``: ``tenant_id`` (the verified token's tenant),
``rejected`` (the ``InvalidTokenError`` answered, set by ``api.problems``),
``introspection_active`` (RFC 7662's answer) and ``problem_code``. The lean verify path
(``api.lean_verify``) builds the same ``RequestFacts`` itself.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from itertools import combinations
from json.encoder import encode_basestring_ascii
from typing import Any

from flask import Flask, Response, g, request

from tenantauth.domain.models import is_tenant_id
from tenantauth.domain.telemetry import RequestFacts
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
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED = "<unmatched>"
_log = logging.getLogger("tenantauth.request")


@dataclass(frozen=True)
class RequestTelemetry:
    """Counts and logs every answered request.

    ``metrics`` None: nothing counted (metrics off); ``writer`` None: no request lines.
    """

    metrics: PrometheusTelemetry | None
    writer: LogWriter | None
    sample_accepted: float = 1.0

    def install(self, app: Flask) -> None:
        """Register the Flask hooks; call before any other ``before_request`` so the
        duration covers every check (and its ``after_request`` then runs last)."""
        app.before_request(_start_clock)
        app.after_request(self.finish)

    def finish(self, response: Response) -> Response:
        """``after_request``: record the request the Flask app answered; return ``response``."""
        rule = request.url_rule
        rejected = g.get("rejected")
        tenant = g.get("tenant_id") or (request.view_args or {}).get("tenant_id")
        self.record(
            RequestFacts(
                route=rule.rule if rule is not None else _UNMATCHED,
                method=request.method if request.method in METHODS else "other",
                status=response.status_code,
                seconds=time.perf_counter() - g.get("started", time.perf_counter()),
                request_id=response.headers.get("X-Request-Id"),
                client=request.remote_addr,
                verifier=VERIFY_ENDPOINTS.get(request.endpoint or "", ""),
                tenant_id=tenant if isinstance(tenant, str) else None,
                reject_kind=str(rejected.kind) if rejected is not None else None,
                reject_reason=rejected.reason if rejected is not None else None,
                code=g.get("problem_code"),
                introspection_active=g.get("introspection_active", True),
            )
        )
        return response

    def record(self, facts: RequestFacts) -> None:
        """Count one answered request and queue its log line (if it gets one)."""
        outcome, reason = _outcome(facts) if facts.verifier else ("", "")
        if self.metrics is not None:
            self.metrics.request(facts.route, facts.method, facts.status, facts.seconds)
            if facts.verifier:
                self.metrics.verify(facts.verifier, outcome, reason)
        if self.writer is not None and self._logged(outcome, facts.status):
            self.writer.put(_line(facts))

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


def _outcome(facts: RequestFacts) -> tuple[str, str]:
    """Return (outcome, reason category) of a request to a verifying endpoint."""
    if facts.reject_kind is not None:
        return "rejected", facts.reject_kind
    if facts.status == 200:
        if not facts.introspection_active:
            return "rejected", "inactive"
        return "accepted", "none"
    if facts.status == 503:
        return "unavailable", "none"
    return "bad_request", "none"


def _line(facts: RequestFacts) -> dict[str, Any]:
    """The request's log event (rendered later, by the writer thread)."""
    event: dict[str, Any] = {
        "_at": time.time() - facts.seconds,
        "level": "error" if facts.status >= 500 else "info",
        "event": "request",
        "request_id": facts.request_id,
        "method": facts.method,
        "route": facts.route,
        "status": facts.status,
        "duration_ms": round(facts.seconds * 1000, 3),
        "client": facts.client,
    }
    if facts.tenant_id is not None and is_tenant_id(facts.tenant_id):  # never echo junk
        event["tenant_id"] = facts.tenant_id
    if facts.reject_kind is not None:
        event["reason"] = facts.reject_kind
        event["detail"] = facts.reject_reason
    if facts.code is not None:
        event["code"] = facts.code
    return event


#: The keys of a request event as ``_line`` orders them (after ``_at``): always these ...
_HEAD = (
    "level",
    "event",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "client",
)
#: ... then some of these, in this order (``reason`` and ``detail`` together).
_TAIL = ("tenant_id", "reason", "detail", "code")
_SHAPES = frozenset(
    _HEAD + tail
    for n in range(len(_TAIL) + 1)
    for tail in combinations(_TAIL, n)
    if ("reason" in tail) == ("detail" in tail)
)


def request_json(timestamp: str, event: dict[str, Any]) -> str | None:
    """Return the JSON line of a request event (``_line``'s, ``_at`` taken out) with
    ``timestamp`` first: what the writer's generic encoder writes for it, byte for byte (keys
    in order, ASCII escapes: tests/unit/test_request_line.py), at about a quarter of its cost
    (2.3 µs of ~7 per request on the 2-core machine; docs/design.md, "The cost of metrics
    and request logs (measured)"). Returns None for an event of any other shape or type,
    which the generic encoder then writes."""
    keys = tuple(event)
    if keys not in _SHAPES or event["event"] != "request":
        return None
    status, duration = event["status"], event["duration_ms"]
    if type(status) is not int or type(duration) is not float or not math.isfinite(duration):
        return None
    try:
        parts = [
            f'{{"timestamp": {_text(timestamp)}, "level": {_text(event["level"])}, '
            f'"event": "request", "request_id": {_text(event["request_id"])}, '
            f'"method": {_text(event["method"])}, "route": {_text(event["route"])}, '
            f'"status": {status}, "duration_ms": {float.__repr__(duration)}, '
            f'"client": {_text(event["client"])}'
        ]
        parts += [f', "{key}": {_text(event[key])}' for key in keys[len(_HEAD) :]]
    except TypeError:  # a value neither a string nor None
        return None
    parts.append("}")
    return "".join(parts)


def _text(value: str | None) -> str:
    """A string or None as JSON writes it (``ensure_ascii``); TypeError for anything else."""
    return "null" if value is None else encode_basestring_ascii(value)
