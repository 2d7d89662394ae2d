"""The decision shared by the Flask extension and the WSGI middleware: read the bearer token
of a request, verify it, check scopes, and build the RFC 6750 §3 refusal when it fails.

Framework-free on purpose (no flask, no werkzeug): both adapters only render a ``Denial``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from tenantauth_client.claims import Claims
from tenantauth_client.client import TenantAuthClient
from tenantauth_client.errors import InvalidToken, TenantAuthClientError

log = logging.getLogger("tenantauth_client")

#: RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E (no space, '"' or '\').
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_QUOTED_SAFE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Denial:
    """A refusal to render: status, headers (with ``Content-Type``) and a problem+json body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status_line(self) -> str:
        """Return the WSGI status line, e.g. ``"401 Unauthorized"``."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def required_scopes(scope: str | Iterable[str] | None) -> frozenset[str]:
    """Return the scope tokens required by ``scope``: a space-delimited string (every token
    required) or an iterable of tokens; ``None`` requires none.

    Raises ``ValueError`` for a token outside RFC 6749 §3.3 syntax (it could break the
    ``WWW-Authenticate`` header, and no token could ever grant it).
    """
    if scope is None:
        return frozenset()
    tokens = scope.split() if isinstance(scope, str) else list(scope)
    if not all(isinstance(t, str) and _SCOPE_TOKEN.fullmatch(t) for t in tokens):
        raise ValueError("scopes must be RFC 6749 §3.3 scope tokens")
    return frozenset(tokens)


def check_realm(realm: str) -> str:
    """Return ``realm`` if it can stand in a quoted-string as is; else raise ``ValueError``."""
    if not realm or not _QUOTED_SAFE.fullmatch(realm):
        raise ValueError("realm must be printable ASCII without '\"' or '\\'")
    return realm


def authorize(
    client: TenantAuthClient,
    authorization: str | None,
    *,
    scopes: frozenset[str] = frozenset(),
    audience: str | None = None,
    realm: str = "api",
) -> Claims | Denial:
    """Return the verified ``Claims`` of a request's ``Authorization`` header value, or the
    ``Denial`` to answer instead.

    - no credentials, or another scheme than Bearer: 401 with ``WWW-Authenticate: Bearer
      realm=...`` and no error code (RFC 6750 §3.1);
    - a Bearer credential tenantauth does not accept, or that is not b64token syntax: 401
      ``error="invalid_token"`` — one uniform answer, whichever check failed;
    - valid but lacking a required scope: 403 ``error="insufficient_scope", scope="..."``;
    - tenantauth unavailable or answering anything else: 503 (fail closed, never allowed).
    """
    token = bearer_credential(authorization)
    if token is None:
        return denial(401, realm, "unauthenticated", "This resource needs a bearer token.")
    invalid = denial(
        401, realm, "invalid_token", "The access token is invalid, expired or revoked."
    )
    if not _B64TOKEN.fullmatch(token):  # not a token at all: no need to ask tenantauth
        return invalid
    try:
        claims = client.verify(token, audience)
    except InvalidToken:
        return invalid
    except TenantAuthClientError as exc:  # fail closed on anything else, and say why in logs
        log.warning("token not checked (tenantauth: %s); answering 503", exc)
        return denial(503, realm, "unavailable", "The token cannot be checked now; try again.")
    if not claims.has_scopes(scopes):
        return denial(403, realm, "insufficient_scope", "The token lacks a required scope.", scopes)
    return claims


def bearer_credential(authorization: str | None) -> str | None:
    """Return the credential of a ``Bearer`` authorization (scheme case-insensitive, RFC 9110
    §11.1), ``""`` for a Bearer header without one, or ``None`` when there is no Bearer
    credential at all."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip(" \t")


def denial(
    status: int, realm: str, code: str, detail: str, scopes: frozenset[str] = frozenset()
) -> Denial:
    """Return a problem+json refusal; 401 and 403 carry the RFC 6750 §3 challenge."""
    headers = [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")]
    if status in (401, 403):
        params = [f'realm="{realm}"']
        if code in ("invalid_token", "insufficient_scope"):
            params.append(f'error="{code}"')
        if scopes:
            params.append(f'scope="{" ".join(sorted(scopes))}"')
        headers.append(("WWW-Authenticate", "Bearer " + ", ".join(params)))
    title = HTTPStatus(status).phrase
    problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body = json.dumps({**problem, "code": code}).encode("utf-8")
    return Denial(status, (*headers, ("Content-Length", str(len(body)))), body)
