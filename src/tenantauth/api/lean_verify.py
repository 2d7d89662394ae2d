"""The gateway endpoint without the framework: ``GET /v1/verify`` answered in plain WSGI.

Issue 14: Flask's request context, routing, hooks and response object cost more than the
verification itself on the hottest route. ``LeanVerify`` sits in front of the Flask app (composed
in ``app.py``) and answers the common gateway requests directly — one well-formed Bearer
credential or none, no query or just ``audience`` — with **the same bytes** the Flask view
answers: status line, headers in the same order, the same JSON and problem+json bodies
(tests/integration/test_lean_verify.py compares them byte for byte). Anything else (HEAD,
another query, an unreadable or repeated credential, headers or a query near the limits, a mounted
``SCRIPT_NAME``) is handed to the Flask app untouched, which answers it as it always has; so
the fast path never has to reproduce a rare answer, only the three common ones (200, the
uniform 401, 503).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.http import HTTP_STATUS_CODES

from tenantauth.api.auth import BEARER_RE
from tenantauth.api.hygiene import SECURITY_HEADERS
from tenantauth.api.problems import domain_problem, problem_document, request_id_from
from tenantauth.api.verify import GATEWAY_PATH, header_safe
from tenantauth.domain.telemetry import RequestFacts
from tenantauth.domain.tokens import TokenVerifier, memoise
from tenantauth.errors import (
    DependencyUnavailableError,
    InvalidTokenError,
    MissingTokenError,
    TenantAuthError,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SECURITY = [(name, value) for name, value in SECURITY_HEADERS.items()]
_AFTER_CACHE_CONTROL = [(n, v) for n, v in _SECURITY if n != "Cache-Control"]


class LeanVerify:
    """WSGI middleware: answers the common ``GET /v1/verify`` requests, passes on the rest."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        verifier: Callable[[], TokenVerifier],
        issuer: str,
        dumps: Callable[[Any], str],
        record: Callable[[RequestFacts], None] | None,
        max_header_fields: int,
        max_header_field_bytes: int,
        max_request_line: int,
    ) -> None:
        """Wrap ``app``. ``verifier`` returns the verifier to use; ``dumps`` is the Flask
        app's JSON encoder (so bodies match); ``record`` receives each answered request's
        facts (metrics and the log line), None to record nothing. Requests whose headers or
        query come within half of the limits are passed on, so the Flask app's checks (414,
        the uniform 401) decide them."""
        self._app = app
        self._verifier = verifier
        self._issuer = issuer
        self._dumps = dumps
        self._record = record
        self._max_fields = max_header_fields // 2
        self._max_bytes = max_header_field_bytes // 2
        self._max_query = max_request_line // 2
        # Token -> the body of its 200: the claims of a verified token are a pure function of
        # the token, so its body is too (the verification itself runs on every request).
        # Bounded like the verifier's parsed-token memo, and filled only by verified tokens.
        self._bodies: dict[str, bytes] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer ``environ`` if it is a common gateway request, else let the app answer."""
        if (
            environ.get("PATH_INFO") != GATEWAY_PATH
            or environ.get("REQUEST_METHOD") != "GET"
            or environ.get("SCRIPT_NAME")
        ):
            return self._app(environ, start_response)
        query = environ.get("QUERY_STRING", "")
        if len(query) > self._max_query:
            return self._app(environ, start_response)
        audience = _audience(query) if query else None
        credential = environ.get("HTTP_AUTHORIZATION")
        token = _token(credential) if credential is not None else None
        fits = headers_fit(environ, self._max_fields, self._max_bytes)
        if audience is _PASS or token is _PASS or not fits:
            return self._app(environ, start_response)
        return self._answer(environ, start_response, token, audience)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        token: Any,
        audience: Any,
    ) -> list[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        facts: dict[str, Any] = {}
        try:
            if token is None:
                raise MissingTokenError
            verdict = self._verifier().verify(token, audience)
        except InvalidTokenError as exc:
            facts = {"reject_kind": str(exc.kind), "reject_reason": exc.reason, "code": exc.code}
            status, headers, body = self._problem(exc, request_id)
        except DependencyUnavailableError as exc:  # 503; domain_problem logs it
            facts = {"code": exc.code}
            status, headers, body = self._problem(exc, request_id)
        else:
            facts = {"tenant_id": verdict.tenant_id}
            status, headers, body = self._ok(verdict, request_id, token)
        start_response(status, headers)
        if self._record is not None:
            self._record(
                RequestFacts(
                    route=GATEWAY_PATH,
                    method="GET",
                    status=int(status[:3]),
                    seconds=time.perf_counter() - started,
                    request_id=request_id,
                    client=environ.get("REMOTE_ADDR"),
                    verifier="verify",
                    **facts,
                )
            )
        return [body]

    def _ok(
        self, verdict: Any, request_id: str, token: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """The 200 of ``api.verify._ok`` with the identity headers of ``_verify_gateway``."""
        body = self._bodies.get(token)
        if body is None:
            body = self._dumps({"active": True, "claims": verdict.claims}).encode()
            memoise(self._bodies, token, body)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Tenant-Id", verdict.tenant_id),
            ("X-Subject", header_safe(verdict.subject)),
        ]
        if verdict.scope is not None:
            headers.append(("X-Scope", header_safe(verdict.scope)))
        headers.append(("X-Request-Id", request_id))
        headers.extend(_AFTER_CACHE_CONTROL)
        return status_line(200), headers, body

    def _problem(
        self, exc: TenantAuthError, request_id: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """The problem response of ``api.problems.problem_response`` for ``exc``, through
        the same mapping (``domain_problem``) and document (``problem_document``)."""
        problem = domain_problem(exc, "GET")
        status, document, media_type = problem_document(
            problem,
            issuer=self._issuer,
            instance=GATEWAY_PATH,
            request_id=request_id,
            oauth=False,
        )
        body = self._dumps(document).encode()
        headers = [("Content-Type", media_type), ("Content-Length", str(len(body)))]
        headers += [*problem.headers.items(), ("X-Request-Id", request_id), *_SECURITY]
        return status_line(status), headers, body


def headers_fit(environ: dict[str, Any], max_fields: int, max_bytes: int) -> bool:
    """Return whether ``environ`` has at most ``max_fields`` headers, each name and value
    within ``max_bytes``: well within the limits ``api.hygiene`` enforces, when given half."""
    fields = 0
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            fields += 1
            if len(key) + len(value) > max_bytes:
                return False
    return fields <= max_fields


_PASS: Any = object()  # "let the Flask app answer this one"


def _audience(query: str) -> Any:
    """The ``audience`` of a query that holds nothing else (as ``request.args`` reads it),
    or ``_PASS``."""
    if not query.isascii():
        return _PASS
    pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
    if len(pairs) != 1 or pairs[0][0] != "audience":
        return _PASS
    return pairs[0][1]


def _token(credential: str) -> Any:
    """The token of exactly one well-formed Bearer credential, or ``_PASS`` (the Flask
    path then answers the uniform 401 with its own reason)."""
    if "," in credential:
        return _PASS
    match = BEARER_RE.fullmatch(credential.strip(" \t"))
    return match[1] if match is not None else _PASS


def status_line(code: int) -> str:
    """Return the status line werkzeug writes for ``code`` (its reason phrases are upper
    case)."""
    return f"{code} {HTTP_STATUS_CODES[code].upper()}"
