"""Token verification for other services: /v1/verify (JSON, nginx auth_request, ForwardAuth).

This is the hot path: the GET view parses its single query parameter by hand and builds its
response directly, skipping schema (de)serialisation; the schemas still document it.

Status contract (docs/protecting-services.md, "Status contract"). ``GET`` is the gateway
endpoint: nginx ``auth_request`` allows on 2xx, denies on 401/403 and turns anything else into
a 500, so every credential that cannot be accepted — missing, not Bearer, malformed, several,
oversized, invalid, expired, revoked — is the one uniform 401; 503 stays 503 (the example
gateway configurations map it to a 503 for the client). ``POST`` is a JSON API: a request it
cannot read is a 400/413/415/422 there, as RFC 6750 §3.1 ``invalid_request`` fits.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Response, g, json, request

from tenantauth.api import schemas
from tenantauth.api.auth import bearer_token
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import errors_doc
from tenantauth.errors import (
    AuthenticationError,
    InvalidRequestError,
    InvalidTokenError,
    MalformedRequestError,
    MissingTokenError,
)

_HEADER_SAFE_RE = re.compile(r"[\x20-\x24\x26-\x7e]*")  # printable ASCII but "%"
_UNRESERVED_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")

#: The gateway endpoint's path (GET/HEAD): every unacceptable request is the uniform 401.
GATEWAY_PATH = "/v1/verify"
bp = Blueprint("verify", __name__, url_prefix=GATEWAY_PATH, description="Verify tokens.")

_AUDIENCE_PARAM = {
    "in": "query",
    "name": "audience",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "If given, must be one of the token's `aud` values.",
}
_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("X-Tenant-Id", "The verified tenant (header `kid` = claim `tid`)."),
        ("X-Subject", "The verified `sub`."),
        ("X-Scope", "The verified `scope`, when present."),
    )
}


@bp.get("")
@bp.doc(parameters=[_AUDIENCE_PARAM], security=[{"bearerToken": []}])
@bp.response(200, schemas.VerifyResponseSchema, headers=_HEADERS)
@errors_doc(bp, 401, 422, 503)
def verify_header() -> Response:
    """Verify the bearer token of this request (for nginx ``auth_request``, ForwardAuth).

    Every credential that cannot be accepted is a 401 (see the module docstring); only an
    unknown query parameter, which the gateway's configuration sets, is a 422.
    """
    if "access_token" in request.args:
        # RFC 6750 §2.3 is not supported; on the gateway endpoint it is one more credential
        # that cannot be accepted, so a 401 like the others (never a 400 that nginx turns
        # into a 500).
        raise InvalidTokenError("token in the query")
    _check_query({"audience"})
    return _verify_gateway(request.args.get("audience"))


@bp.get("/<path:forwarded>")
@bp.doc(
    security=[{"bearerToken": []}],
    parameters=[
        {
            "in": "path",
            "name": "forwarded",
            "required": True,
            "schema": {"type": "string"},
            "description": "The protected request's path, appended by the gateway; ignored.",
        }
    ],
)
@bp.response(200, schemas.VerifyResponseSchema, headers=_HEADERS)
@errors_doc(bp, 401, 503)
def verify_forwarded(forwarded: str) -> Response:
    """Verify like ``GET /v1/verify``, for gateways that append the protected request's path
    and query to the verify URL (Envoy ``ext_authz`` HTTP service, ``path_prefix``).

    The path and query are the protected request's, not ours: both are ignored, so no
    audience can be asked for here and a client's query can never change the answer.
    """
    del forwarded  # routing only
    return _verify_gateway(None)


def _verify_gateway(audience: str | None) -> Response:
    """Return the 200 answer with identity headers for the request's bearer token.

    Raises ``InvalidTokenError`` (the uniform 401) or ``DependencyUnavailableError`` (503).
    """
    verdict = services().verifier.verify(gateway_token(), audience)
    g.tenant_id = verdict.tenant_id  # for the request's log line
    response = _ok(verdict.claims)
    response.headers["X-Tenant-Id"] = verdict.tenant_id
    response.headers["X-Subject"] = header_safe(verdict.subject)
    if verdict.scope is not None:
        response.headers["X-Scope"] = header_safe(verdict.scope)
    return response


def gateway_token() -> str:
    """Return the one bearer token of this request.

    Raises ``MissingTokenError`` without an Authorization header and ``InvalidTokenError``
    for anything else that is not exactly one RFC 6750 §2.1 Bearer credential (several
    fields, a comma, another scheme, a JSON serialization): the uniform 401 of the gateway
    endpoint, whose reason is logged, never returned.
    """
    try:
        token = bearer_token()
    except (MalformedRequestError, AuthenticationError) as exc:
        raise InvalidTokenError(f"unreadable credentials: {exc.detail}") from None
    if token is None:
        raise MissingTokenError
    return token


def header_safe(value: str) -> str:
    """Return ``value`` for an HTTP header: as is when it is printable ASCII without ``%``,
    else percent-encoded UTF-8 (RFC 3986 §2.1).

    Percent-decoding the header therefore always yields the exact claim. Tokens we issue never
    need encoding of ``scope``; a ``sub`` may (non-ASCII names), and tokens signed elsewhere
    with an imported secret may carry anything — a newline must never reach the header.
    """
    if _HEADER_SAFE_RE.fullmatch(value):
        return value
    return quote(value, safe=_UNRESERVED_PRINTABLE)


@bp.post("")
@bp.arguments(schemas.VerifyRequestSchema)
@bp.response(200, schemas.VerifyResponseSchema)
@errors_doc(bp, 400, 401, 413, 415, 422, 503)
def verify_body(body: dict[str, Any]) -> Response:
    """Verify a token given in the JSON body."""
    _check_query(set())
    if request.headers.get("Authorization"):
        # RFC 6750 §2: one method per request; more is an invalid_request (400, §3.1).
        raise MalformedRequestError("Send the token in the body or the header, not both.")
    verdict = services().verifier.verify(body["token"], body.get("audience"))
    g.tenant_id = verdict.tenant_id
    return _ok(verdict.claims)


def _check_query(allowed: set[str]) -> None:
    """Refuse query parameters other than ``allowed``.

    Raises ``MalformedRequestError`` (400) for ``access_token``: RFC 6750 §2.3 (the query
    method) is not supported, and beside a header or body it is a second method (§2, §3.1).
    Raises ``InvalidRequestError`` (422) for any other unknown parameter: silently dropping
    one (say, ``audience`` on POST) would answer a question the caller did not ask.
    """
    if "access_token" in request.args:
        raise MalformedRequestError("Send the token in the header or the body, not the query.")
    unknown = request.args.keys() - allowed
    if unknown:
        names = " or ".join(f"'{name}'" for name in sorted(allowed)) or "none"
        raise InvalidRequestError(f"Unknown query parameter; this endpoint takes {names}.")


def _ok(claims: dict[str, Any]) -> Response:
    # Every claim as signed; introspection shows the same ones (RFC 7662 §2.2).
    body = json.dumps({"active": True, "claims": claims})
    response = Response(body, status=200, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
