"""RFC 9457 problem details, with the statuses of ``api.statuses`` (the only table from error
class to HTTP status).

Every error response of the service, ours or werkzeug's, leaves through ``problem_response``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from tenantauth import errors
from tenantauth.api.context import EXTENSION
from tenantauth.api.statuses import status_for
from tenantauth.crypto.random_ids import REQUEST_IDS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
#: Blueprints whose errors also carry RFC 6749 §5.2 ``error``/``error_description`` members and
#: are served as ``application/json``, the type OAuth client libraries parse.
OAUTH_BLUEPRINT = "oauth"
INTROSPECTION_BLUEPRINT = "introspection"
OAUTH_BLUEPRINTS = frozenset({OAUTH_BLUEPRINT, INTROSPECTION_BLUEPRINT})

#: The Bearer challenge (RFC 6750 §3) of every 401 that asks for a bearer token.
BEARER_REALM = 'Bearer realm="tenantauth"'
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build an ``application/problem+json`` response (RFC 9457 §3.1 members + ours)."""
    issuer = current_app.extensions[EXTENSION]["settings"].issuer
    g.problem_code = code  # for the request's log line
    status, body, mimetype = problem_document(
        Problem(status, code, title, detail, headers or {}, extra),
        issuer=issuer,
        instance=request.path,
        request_id=request_id(),
        oauth=request.blueprint in OAUTH_BLUEPRINTS,
    )
    response = Response(json.dumps(body), status=status, mimetype=mimetype)
    response.headers.update(headers or {})
    return response


@dataclass(frozen=True, slots=True)
class Problem:
    """What an error answers: status, our code, title, detail, extra headers and members."""

    status: int
    code: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def problem_document(
    problem: Problem, *, issuer: str, instance: str, request_id: str, oauth: bool
) -> tuple[int, dict[str, Any], str]:
    """Return the status, body and media type answering ``problem`` (no Flask needed).

    ``oauth``: the RFC 6749 §5.2 shape of the OAuth blueprints (``oauth_error_body``, served
    as ``application/json``, 422 answered as 400); else RFC 9457 ``application/problem+json``.
    """
    status = problem.status
    body = {
        "type": problem_type_uri(issuer, problem.code),
        "title": problem.title,
        "status": status,
        "detail": problem.detail,
        "instance": instance,
        "code": problem.code,
        "request_id": request_id,
        **problem.extra,
    }
    if not oauth:
        return status, body, PROBLEM_JSON
    body = oauth_error_body(body)
    body["status"] = status = 400 if status == 422 else status  # §5.2 knows no 422
    return status, body, "application/json"


def oauth_error_body(body: dict[str, Any]) -> dict[str, Any]:
    """Return a problem body with RFC 6749 §5.2 ``error`` and ``error_description`` added.

    ``error`` is our code for OAuth errors and ``invalid_request`` for other request errors,
    a body that is not a form (415) included (§5.2: "or is otherwise malformed"); a 503 is
    ``temporarily_unavailable`` and a 500 ``server_error`` (the RFC 6749 §4.1.2.1 values);
    anything else (404, 413, 429) keeps our code. The description is reduced to the
    characters §5.2 allows (printable ASCII without '"' and '\\').
    """
    code, status = body["code"], body["status"]
    if status in (400, 415, 422):
        error = code if code in _OAUTH_CODES else "invalid_request"
    elif status >= 500:
        error = "server_error" if status == 500 else "temporarily_unavailable"
    else:
        error = code
    description = _NOT_NQSCHAR.sub("?", str(body["detail"]))
    return {"error": error, "error_description": description, **body}


_OAUTH_CODES = frozenset(
    {"invalid_request", "invalid_grant", "unauthorized_client", "unsupported_grant_type"}
    | {"invalid_scope", "unsupported_token_type"}
)
_NOT_NQSCHAR = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def problem_type(code: str) -> str:
    """Return the problem type URI: under the configured issuer, never the client's Host."""
    return problem_type_uri(current_app.extensions[EXTENSION]["settings"].issuer, code)


def problem_type_uri(issuer: str, code: str) -> str:
    """Return the problem type URI of ``code`` under ``issuer``."""
    return f"{issuer.rstrip('/')}/problems/{code}"


def request_id() -> str:
    """Return this request's id: a sane incoming ``X-Request-Id`` or a fresh random id."""
    rid: str | None = g.get("request_id")
    if rid is None:
        rid = g.request_id = request_id_from(request.headers.get("X-Request-Id", ""))
    return rid


def request_id_from(incoming: str) -> str:
    """Return the request id for an ``X-Request-Id`` value ("" when absent): the value when it
    is sane (``REQUEST_ID_RE``), else a fresh random id (32 hex digits, ``RandomIds``). For
    the Flask and the lean paths."""
    return incoming if REQUEST_ID_RE.fullmatch(incoming) else REQUEST_IDS.new()


def register(app: Flask) -> None:
    """Install the handlers that turn every error into a problem response."""
    app.register_error_handler(errors.TenantAuthError, _from_domain)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(RecursionError, _from_recursion)
    app.register_error_handler(Exception, _from_bug)


def _from_domain(exc: errors.TenantAuthError) -> Response:
    if isinstance(exc, errors.InvalidTokenError):
        # The reason goes to the request's log line and metrics only (uniform failures,
        # RFC 8725).
        g.rejected = exc
    return _respond(domain_problem(exc, request.method))


def _respond(problem: Problem) -> Response:
    return problem_response(
        problem.status,
        problem.code,
        problem.title,
        problem.detail,
        problem.headers,
        **problem.extra,
    )


def domain_problem(exc: errors.TenantAuthError, method: str) -> Problem:
    """Return the problem answering ``exc`` to a ``method`` request; log it if it is a 5xx.

    The one mapping from our errors to statuses and headers, for the Flask error handler and
    the lean WSGI paths alike.
    """
    status = status_for(exc)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.InvalidTokenError):
        headers["WWW-Authenticate"] = bearer_challenge(exc)  # RFC 6750 §3
    elif isinstance(exc, errors.InvalidClientError):
        # RFC 6749 §5.2 (and RFC 9110 §15.5.2: a 401 names its scheme), whichever method failed.
        headers["WWW-Authenticate"] = 'Basic realm="tenantauth", charset="UTF-8"'
    elif isinstance(exc, errors.AuthenticationError):
        headers["WWW-Authenticate"] = BEARER_REALM
    elif isinstance(exc, errors.RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, errors.UnsupportedMediaTypeError):
        # RFC 9110 §15.5.16 says what to send; RFC 5789 §2.2 names Accept-Patch for PATCH,
        # and Accept-Post (W3C LDP §7.1, IANA-registered) is its counterpart for POST.
        headers["Accept-Patch" if method == "PATCH" else "Accept-Post"] = exc.accept
    elif isinstance(exc, errors.InvalidRequestError) and exc.errors is not None:
        extra["errors"] = exc.errors
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.detail)
    return Problem(status, exc.code, exc.title, exc.detail, headers, extra)


def bearer_challenge(exc: errors.InvalidTokenError) -> str:
    """Return the ``WWW-Authenticate`` value for a rejected bearer credential (RFC 6750 §3).

    ``error="invalid_token"`` when a credential was presented; no error code when there was
    none at all (§3.1: the client already knows it sent nothing, so this tells it nothing).
    """
    if isinstance(exc, errors.MissingTokenError):
        return BEARER_REALM
    return f'{BEARER_REALM}, error="invalid_token"'


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:  # webargs validation errors, via flask-smorest's abort()
        return problem_response(
            status,
            "invalid_request",
            "Invalid request",
            "The request did not match the schema; see errors.",
            headers,
            errors=messages,
        )
    code = (exc.name or "error").lower().replace(" ", "_")
    return problem_response(status, code, exc.name or "Error", exc.description or "", headers)


def _from_recursion(exc: RecursionError) -> Response:
    return _respond(TOO_DEEP)


def _from_bug(exc: Exception) -> Response:
    return _respond(bug_problem(request_id()))


#: json.loads recurses per nesting level; a deeply nested body must be a 400, not a 500.
TOO_DEEP = Problem(400, "invalid_request", "Invalid request", "The JSON body is nested too deeply.")


def bug_problem(rid: str) -> Problem:
    """Log the exception being handled (with request ``rid``); return the generic 500 problem:
    the traceback is logged, never shown."""
    log.exception("unhandled error (request %s)", rid)
    return Problem(
        500,
        "internal_error",
        "Internal server error",
        "An unexpected error occurred; it has been logged with this request id.",
    )
