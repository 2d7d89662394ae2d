"""Hand-signed HS256 tokens for the client suite, so a test can make one property of an
otherwise valid token wrong (an ``exp`` in the past) with a tenant's imported secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from tests.support import tenant_issuer


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def forge(tenant_id: str, secret: bytes, *, expires_in: int = 600, **changes: Any) -> str:
    """Return a token of ``tenant_id`` signed with ``secret``: valid as tenantauth issues
    them (key version 1), expiring ``expires_in`` seconds from now, ``changes`` applied."""
    now = int(time.time())
    claims = {
        "iss": tenant_issuer(tenant_id),
        "sub": "forged-user",
        "aud": "tenantauth",
        "exp": now + expires_in,
        "iat": min(now, now + expires_in - 60),
        "nbf": min(now, now + expires_in - 60),
        "jti": secrets.token_urlsafe(16),
        "tid": tenant_id,
        **changes,
    }
    signing_input = (
        f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': tenant_id})}.{_segment(claims)}"
    )
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"
