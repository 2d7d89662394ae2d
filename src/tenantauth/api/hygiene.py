"""Request limits and security headers for every request (issue 5, "Limits and hygiene").

Each check runs before any view, in this order (cheapest first):

0. the request line (414, RFC 9112 §3): gunicorn refuses one over 8190 bytes itself, granian
   does not, so the app does at the same length (``request_line_length``);
1. header count and size (431), for WSGI servers that do not enforce them (gunicorn does
   too, at twice these limits; see ``tenantauth.gunicorn_conf``). On the gateway endpoint
   (``GET``/``HEAD /v1/verify``) the answer is the uniform 401 instead: a credential that
   cannot be accepted as sent, and a status every gateway can map (nginx turns a 431 into
   a 500);
2. the admin rate limits (429 + Retry-After) on ``/v1/admin/*``, per credential and per
   client address, before the credential is even checked, so floods of guesses count too;
3. the nesting depth of JSON bodies (400), parsed once for the whole request by
   ``api.bodies.json_body``. The body size itself is Flask's ``MAX_CONTENT_LENGTH`` (413),
   enforced while the body is read.

Every response, error or not, then gets the security headers of ``SECURITY_HEADERS``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, request
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

from tenantauth.api.bodies import is_json, json_body
from tenantauth.api.problems import request_id
from tenantauth.domain.limits import FailureLimiter, ip_key
from tenantauth.errors import (
    CacheUnavailableError,
    InvalidTokenError,
    MalformedRequestError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

#: Every admin route starts with this (STYLE.md: URLs start with /v1/).
ADMIN_PREFIX = "/v1/admin/"
#: Prefix of per-credential rate-limit keys (per-address keys are ``domain.limits.ip_key``).
CREDENTIAL_KEY_PREFIX = "admin-cred:"
#: Sent on every response. The API serves JSON only (no HTML, no docs UI), so the strictest
#: values break nothing (OWASP REST Security and HTTP Headers cheat sheets):
SECURITY_HEADERS = {
    # RFC 6749 §5.1 and RFC 6750 §5.3: responses carrying tokens or secrets must not be
    # stored; every response is marked, so no new endpoint can forget it. Pragma is for
    # HTTP/1.0 caches (RFC 9111 §5.4), as RFC 6749 §5.1's example shows.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # Browsers must not guess a type other than the declared JSON (no script sniffing).
    "X-Content-Type-Options": "nosniff",
    # No page of ours may be framed (clickjacking) or load anything.
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # URLs (tenant ids, usernames) never leak to another site through Referer.
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class RequestGuard:
    """The before-request checks and the after-request headers, with their limits.

    ``admin_limiter`` counts admin requests: it is a ``FailureLimiter`` whose "failures" are
    simply requests, so a key reaching its threshold within the window is refused until the
    lockout (equal to the window) ends.
    """

    admin_limiter: FailureLimiter
    max_json_depth: int
    max_header_fields: int
    max_header_field_bytes: int
    max_request_line: int
    #: The gateway endpoint: GET/HEAD of this path, or below it, answer every unacceptable
    #: request with the uniform 401.
    gateway_path: str | None = None

    def install(self, app: Flask) -> None:
        """Register the checks (in order) and the response headers on ``app``."""
        app.before_request(self.check_request_line)
        app.before_request(self.check_headers)
        app.before_request(self.limit_admin_rate)
        app.before_request(self.check_json_depth)
        app.after_request(add_security_headers)

    def check_request_line(self) -> None:
        """Return None if the request line fits ``max_request_line`` bytes.

        Raises ``RequestURITooLarge`` (414, RFC 9110 §15.5.15) otherwise, on every path: the
        gateway endpoint included, where gunicorn has always answered 414 at this length.
        """
        if request_line_length(request.environ) > self.max_request_line:
            raise RequestURITooLarge(
                f"The request line is longer than {self.max_request_line} bytes."
            )

    def check_headers(self) -> None:
        """Return None if the header count and every ``name: value`` line fit the limits.

        Raises ``RequestHeaderFieldsTooLarge`` (431, RFC 6585 §5) otherwise, or
        ``InvalidTokenError`` (the uniform 401) on a gateway endpoint.
        """
        problem = self._header_problem()
        if problem is None:
            return
        if self._is_gateway_request():
            raise InvalidTokenError(f"request headers over the limits: {problem}")
        raise RequestHeaderFieldsTooLarge(problem)

    def _is_gateway_request(self) -> bool:
        path, gateway = request.path, self.gateway_path
        return (
            gateway is not None
            and request.method in ("GET", "HEAD")
            and (path == gateway or path.startswith(gateway + "/"))
        )

    def _header_problem(self) -> str | None:
        """Return what breaks the header limits, or None."""
        headers = list(request.headers.items())
        if len(headers) > self.max_header_fields:
            return f"More than {self.max_header_fields} headers."
        for name, value in headers:
            if len(name) + 2 + len(value) > self.max_header_field_bytes:
                return f"A header line is longer than {self.max_header_field_bytes} bytes."
        return None

    def limit_admin_rate(self) -> None:
        """Count this request against its admin credential and its client address.

        Returns None for non-admin paths and for requests within the limits. Raises
        ``RateLimitedError`` (429 + Retry-After) over a limit. Fails open when the
        limiter's store is down: this is abuse damping, not access control (the admin
        credential is still checked), and an outage must not lock operators out.
        """
        if not request.path.startswith(ADMIN_PREFIX):
            return
        keys = admin_rate_keys(request.headers.get("Authorization"), request.remote_addr)
        try:
            self.admin_limiter.check(keys)
            self.admin_limiter.record_failure(keys)
        except RateLimitedError as exc:
            wait = exc.retry_after
            raise RateLimitedError(
                f"Too many admin requests; try again in {wait} seconds.", retry_after=wait
            ) from None
        except CacheUnavailableError:
            log.warning("admin rate limiter unavailable; request %s not counted", request_id())

    def check_json_depth(self) -> None:
        """Return None unless the JSON body nests deeper than ``max_json_depth``.

        Raises ``MalformedRequestError`` (400) when it does, or is so deep the parser gives
        up. A body the parser refuses otherwise is left to the view's parser (``api.bodies``),
        which reports it once the caller is admitted, so an admin's mistake is audited.
        """
        if request.method in ("GET", "HEAD") or not is_json(request.mimetype):
            return  # no GET view reads a body, so none is parsed
        if not request.get_data(cache=True):  # 413 beyond MAX_CONTENT_LENGTH
            return
        try:
            value = json_body()
        except RecursionError:
            # json recurses once per level; a 64 KiB body can nest 32,768 levels.
            raise MalformedRequestError(self._too_deep()) from None
        except ValueError:
            return
        if json_depth(value) > self.max_json_depth:
            raise MalformedRequestError(self._too_deep())

    def _too_deep(self) -> str:
        return f"The JSON body nests deeper than {self.max_json_depth} levels."


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook: add the request id and ``SECURITY_HEADERS``; return ``response``.

    Views that set their own ``Cache-Control`` keep it; one that makes its response
    cacheable (the public JWKS and discovery documents) is not sent ``Pragma: no-cache``
    beside it, which would contradict it for HTTP/1.0 caches.
    """
    response.headers["X-Request-Id"] = request_id()
    cacheable = response.headers.get("Cache-Control", "no-store") != "no-store"
    for name, value in SECURITY_HEADERS.items():
        if not (cacheable and name == "Pragma"):
            response.headers.setdefault(name, value)
    return response


#: Characters a client may send unescaped in a path (RFC 3986 §3.3 pchar, and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def request_line_length(environ: Mapping[str, Any]) -> int:
    """Return the length in bytes of the request line (``GET /path?query HTTP/1.1``), without
    its CRLF, as gunicorn measures it.

    The target is the server's raw one where it gives it (gunicorn's ``RAW_URI``); otherwise
    (granian) it is rebuilt from the decoded path, escaped again, and the query, which may
    differ from what was sent by how the client chose to escape.
    """
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        target = quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE)
        query = environ.get("QUERY_STRING", "")
        if query:
            target += "?" + query
    method, protocol = environ.get("REQUEST_METHOD", ""), environ.get("SERVER_PROTOCOL", "")
    return len(method) + 1 + len(target) + 1 + len(protocol)


def admin_rate_keys(authorization: str | None, remote_addr: str | None) -> list[str]:
    """Return the rate-limit keys of an admin request: its credential and its address.

    The credential key is a SHA-256 of the whole Authorization value, valid or not, so keys
    never hold a secret; a request with neither yields no key (nothing to count by).
    """
    keys: list[str] = []
    if authorization:
        digest = hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).hexdigest()
        keys.append(CREDENTIAL_KEY_PREFIX + digest)
    if remote_addr:
        keys.append(ip_key(remote_addr))
    return keys


def json_depth(value: object) -> int:
    """Return how deeply ``value`` nests lists and dicts: 0 for a scalar, 1 for ``[1]``.

    Iterative, so it cannot itself hit the recursion limit.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Sequence[object]
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
