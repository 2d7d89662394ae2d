"""Authenticating admin callers (the bootstrap admin token)."""

from __future__ import annotations

import hashlib
import hmac

from tenantauth.errors import AuthenticationError


class AdminAuthenticator:
    """Checks a presented admin bearer token against the configured one in constant time."""

    def __init__(self, admin_token: str) -> None:
        """Keep only a digest: equal-length digests make the comparison length-independent."""
        self._digest = _digest(admin_token)

    def authenticate(self, presented: str | None) -> None:
        """Return if ``presented`` is the admin token.

        Raises ``AuthenticationError`` otherwise (missing or wrong alike).
        """
        if presented is None or not hmac.compare_digest(_digest(presented), self._digest):
            raise AuthenticationError("A valid admin bearer token is required.")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
