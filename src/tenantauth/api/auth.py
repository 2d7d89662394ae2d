"""Reading bearer credentials from requests (RFC 6750 §2.1)."""

from __future__ import annotations

import re

from flask import request

from tenantauth.api.context import services
from tenantauth.errors import AuthenticationError, MalformedRequestError

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive
# (RFC 9110 §11.1).
_BEARER_RE = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")


def bearer_token() -> str | None:
    """Return the bearer token of the request, or None if there is no Authorization header.

    Raises ``MalformedRequestError`` (400) for several Authorization headers,
    ``AuthenticationError`` for a malformed one.
    """
    values = request.headers.getlist("Authorization")
    if not values:
        return None
    # WSGI servers (gunicorn, werkzeug) join repeated header lines with "," (RFC 9110 §5.3);
    # a b64token never contains one, so a comma means several credentials were sent.
    if len(values) > 1 or "," in values[0]:
        raise MalformedRequestError("Send exactly one Authorization header.")
    match = _BEARER_RE.fullmatch(values[0])
    if match is None:
        raise AuthenticationError("Authorization must be 'Bearer <token>'.")
    return match[1]


def require_admin() -> None:
    """``before_request`` hook of admin blueprints: refuse callers without the admin token."""
    services().admins.authenticate(bearer_token())
