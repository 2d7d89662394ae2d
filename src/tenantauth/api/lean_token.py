"""The token endpoint's common request without the framework: ``client_credentials`` in WSGI.

Issue 14: Flask, flask-smorest and webargs cost more CPU per issuance than the grant itself
(docs/design.md, "The token endpoint without the framework"). ``LeanToken`` sits in front of
the Flask app (composed in ``app.py``, beside ``LeanVerify``) and answers the one request
machine clients send over and over — ``POST /v1/tenants/{id}/token`` with
``Content-Type: application/x-www-form-urlencoded``, a small body holding only
``grant_type=client_credentials`` and maybe ``scope``, one HTTP Basic credential (RFC 6749
§4.4.2, §2.3.1), no query — with **the same bytes** the Flask view answers, and the same
metrics and log line.

The split is made so that nothing runs twice. Everything before the grant is parsing without
side effects: any request it does not recognise (another grant, another parameter, a
malformed credential, an odd tenant id, headers near the limits, a body it cannot read as
ASCII) goes to the Flask app untouched, its body handed on in a fresh stream. Once the grant
(``domain.oauth.grants.grant_token``: the failure limiter, the storage read, the secret check) has
run, this path answers every outcome itself — success, each RFC 6749 §5.2 error, 429, 503, a
bug's 500 — through the mapping the Flask error handlers use (``api.problems``), so a failed
attempt is counted by the limiter exactly once.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from tenantauth.api.hygiene import SECURITY_HEADERS
from tenantauth.api.lean_verify import WSGIApp, headers_fit, status_line
from tenantauth.api.oauth import FORM, TOKEN_RESPONSE, TOKEN_RULE, basic_credentials, bp
from tenantauth.api.oauth import token_fields as token_members
from tenantauth.api.problems import (
    Problem,
    bug_problem,
    domain_problem,
    problem_document,
    request_id_from,
)
from tenantauth.domain.models import is_tenant_id
from tenantauth.domain.oauth.grants import CLIENT_CREDENTIALS, GrantRequest, grant_token
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.domain.services import Services
from tenantauth.domain.telemetry import RequestFacts
from tenantauth.errors import InvalidClientError, TenantAuthError

#: The route as the Flask app names it in metrics and log lines.
ROUTE = f"{bp.url_prefix}{TOKEN_RULE}"
_PATH = re.compile(r"/v1/tenants/([^/]+)/token")
#: Bodies longer than this go to Flask: a client_credentials form with the longest scope
#: accepted (``MAX_SCOPE_LENGTH``, 1,024 characters) fits.
MAX_BODY = 4096
_PARAMETERS = frozenset({"grant_type", "scope"})
#: RFC 6749 §5.1 (the blueprint's ``no_store``), then the security headers ``api.hygiene``
#: adds after ``X-Request-Id``, in the order the Flask hooks write them.
_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
_AFTER_REQUEST_ID = [(n, v) for n, v in SECURITY_HEADERS.items() if n not in dict(_NO_STORE)]


class LeanToken:
    """WSGI middleware: answers the common ``client_credentials`` requests, passes on the rest."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        services: Callable[[], Services],
        issuer: str,
        dumps: Callable[..., str],
        record: Callable[[RequestFacts], None] | None,
        max_header_fields: int,
        max_header_field_bytes: int,
    ) -> None:
        """Wrap ``app``. ``services`` returns the bundle the grant runs on; ``dumps`` is the
        Flask app's JSON encoder (so bodies match); ``record`` receives each answered
        request's facts (metrics and the log line), None to record nothing. Requests whose
        headers come within half of the limits are passed on, so the Flask app's checks
        decide them."""
        self._app = app
        self._services = services
        self._issuer = issuer
        self._dumps = dumps
        self._record = record
        self._max_fields = max_header_fields // 2
        self._max_bytes = max_header_field_bytes // 2

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer ``environ`` if it is a common ``client_credentials`` request, else let the
        app answer (with the body, if this read it, in a fresh ``wsgi.input``)."""
        shape = self._shape(environ)
        if shape is None:
            return self._app(environ, start_response)
        tenant_id, length = shape
        body = environ["wsgi.input"].read(length)
        parsed = _parsed(body, length, environ["HTTP_AUTHORIZATION"])
        if parsed is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self._app(environ, start_response)
        return self._answer(environ, start_response, tenant_id, *parsed)

    def _shape(self, environ: dict[str, Any]) -> tuple[str, int] | None:
        """The tenant id and body length of a request of the common shape, read from the
        environ alone; None for any other request."""
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("CONTENT_TYPE") != FORM
            or "HTTP_AUTHORIZATION" not in environ
            or environ.get("QUERY_STRING")
            or environ.get("SCRIPT_NAME")
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return None
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH", "")
        if (
            match is None
            or not is_tenant_id(match[1])  # impossible ids: Flask's 404, before any count
            or not (length.isdigit() and length.isascii() and 0 < int(length) <= MAX_BODY)
            or not headers_fit(environ, self._max_fields, self._max_bytes)
        ):
            return None
        return match[1], int(length)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        tenant_id: str,
        credentials: ClientCredentials,
        scope: str | None,
    ) -> list[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        grant = GrantRequest(grant_type=CLIENT_CREDENTIALS, scope=scope)
        problem: Problem | None = None
        try:
            issued = grant_token(
                self._services(), tenant_id, credentials, grant, environ.get("REMOTE_ADDR")
            )
        except TenantAuthError as exc:
            problem = domain_problem(exc, "POST")
        except Exception:  # noqa: BLE001 - answered as the Flask app's handler answers it
            problem = bug_problem(request_id)
        if problem is None:
            members = TOKEN_RESPONSE.dump(token_members(issued))
            # Flask's JSON provider (``jsonify``): compact, newline-terminated.
            body = (self._dumps(members, separators=(",", ":")) + "\n").encode()
            status, media_type, extra = 200, "application/json", []
        else:
            status, document, media_type = problem_document(
                problem,
                issuer=self._issuer,
                instance=environ["PATH_INFO"],  # request.path: ASCII, so the same string
                request_id=request_id,
                oauth=True,
            )
            body, extra = self._dumps(document).encode(), list(problem.headers.items())
        headers = [("Content-Type", media_type), ("Content-Length", str(len(body)))]
        headers += [*extra, *_NO_STORE, ("X-Request-Id", request_id), *_AFTER_REQUEST_ID]
        start_response(status_line(status), headers)
        if self._record is not None:
            self._record(
                RequestFacts(
                    route=ROUTE,
                    method="POST",
                    status=status,
                    seconds=time.perf_counter() - started,
                    request_id=request_id,
                    client=environ.get("REMOTE_ADDR"),
                    verifier="",
                    tenant_id=tenant_id,
                    code=problem.code if problem is not None else None,
                )
            )
        return [body]


def _parsed(
    body: bytes, length: int, authorization: str
) -> tuple[ClientCredentials, str | None] | None:
    """The credentials and scope of a common request's body and Authorization value, or None
    when the Flask app must answer: the body is short, not ASCII, repeats or adds a
    parameter, is not the ``client_credentials`` grant, or the credential is not one
    well-formed Basic value (the Flask app's answer to that runs before any side effect)."""
    if len(body) != length or not body.isascii():
        return None
    # As werkzeug parses ``request.form`` (its ``_parse_urlencoded``).
    pairs = parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
    form = dict(pairs)
    if len(form) != len(pairs) or not form.keys() <= _PARAMETERS:
        return None
    if form.get("grant_type") != CLIENT_CREDENTIALS:
        return None
    try:
        credentials = basic_credentials(authorization)
    except InvalidClientError:
        return None
    return credentials, form.get("scope")
