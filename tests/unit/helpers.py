"""Builders shared by the unit tests: Services on SQLite + fakeredis, and hand-made tokens.

``forge`` signs arbitrary header and payload bytes with HMAC-SHA256, so a test can make exactly
one property of an otherwise valid token wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import fakeredis

from tenantauth.cache.limits_memory import MemoryFailureLimiter
from tenantauth.cache.redis import RedisCache
from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.crypto.passwords import PasswordHasher
from tenantauth.domain.limits import LimitPolicy
from tenantauth.domain.policy import CachePolicy, TokenPolicy
from tenantauth.domain.ports import Clock
from tenantauth.domain.services import Services
from tenantauth.storage.sqlite import SqliteStorage
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY, NOW, tenant_issuer

#: Known tenant secrets, imported on creation so tests can sign with them.
ACME_SECRET = bytes(range(100, 132))
OTHER_SECRET = bytes(range(200, 232))
AUDIENCE = "tenantauth"
LEEWAY = 30
MAX_LIFETIME = 86_400
#: Marks a claim or header parameter to leave out.
DROP: Any = object()
BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def fake_cache() -> RedisCache:
    """Return a RedisCache over a fresh, private fakeredis server (Lua through lupa)."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return RedisCache("redis://fakeredis.invalid/0", client=client)


def make_services(db_path: Path, clock: Clock, cache: RedisCache | None = None) -> Services:
    """Return Services on a migrated SQLite file and RedisCache over fakeredis."""
    storage = SqliteStorage(db_path)
    storage.migrate()
    return Services.build(
        storage=storage,
        cache=cache or fake_cache(),
        clock=clock,
        keyring=MasterKeyring(MASTER_KEY),
        tokens=TokenPolicy(
            issuer=ISSUER,
            default_audience=AUDIENCE,
            default_ttl=900,
            max_lifetime=MAX_LIFETIME,
            leeway=LEEWAY,
        ),
        caching=CachePolicy(),
        admin_token=ADMIN_TOKEN,
        limiter=MemoryFailureLimiter(LimitPolicy()),
        passwords=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    )


def b64url(raw: bytes) -> str:
    """Encode canonical unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_padded(raw: bytes) -> str:
    """Encode base64url keeping the ``=`` padding."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


def secret_text(raw: bytes) -> str:
    """Return a secret as the base64url text create_tenant/rotate_tenant import."""
    return b64url(raw)


def json_bytes(value: Any) -> bytes:
    """Serialise compactly as UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def sign(signing_input: str, key: bytes = ACME_SECRET) -> str:
    """Return the canonical base64url HMAC-SHA256 signature of ``signing_input``."""
    return b64url(hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest())


def signed(header_segment: str, payload_segment: str, key: bytes = ACME_SECRET) -> str:
    """Join two already encoded segments and append their HS256 signature."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{sign(signing_input, key)}"


def header(**changes: Any) -> dict[str, Any]:
    """Return the valid header for tenant acme with ``changes`` applied (DROP removes)."""
    return _changed({"alg": "HS256", "typ": "JWT", "kid": "acme"}, changes)


def claims(now: float = NOW, **changes: Any) -> dict[str, Any]:
    """Return valid claims for tenant acme at ``now`` with ``changes`` applied (DROP removes);
    ``iss`` is the issuer of the ``tid`` given (acme's by default) unless changed itself."""
    t = int(now)
    tid = changes.get("tid", "acme")
    base = {
        "iss": tenant_issuer(tid) if isinstance(tid, str) else tenant_issuer("acme"),
        "sub": "user-1",
        "aud": AUDIENCE,
        "exp": t + 900,
        "iat": t,
        "nbf": t,
        "jti": "jti-1",
        "tid": "acme",
        "scope": "read write",
    }
    return _changed(base, changes)


def forge(
    head: dict[str, Any] | bytes | None = None,
    payload: dict[str, Any] | bytes | None = None,
    key: bytes = ACME_SECRET,
) -> str:
    """Return a compact token of arbitrary header and payload (dicts or raw bytes), signed."""
    head = header() if head is None else head
    payload = claims() if payload is None else payload
    head_raw = head if isinstance(head, bytes) else json_bytes(head)
    payload_raw = payload if isinstance(payload, bytes) else json_bytes(payload)
    return signed(b64url(head_raw), b64url(payload_raw), key)


def raw_json(value: dict[str, Any], **raw: bytes) -> bytes:
    """Serialise ``value`` with the members named in ``raw`` replaced by raw JSON text."""
    placeholders = {name: f"__raw_{name}__" for name in raw}
    text = json_bytes({**value, **placeholders})
    for name, literal in raw.items():
        text = text.replace(json_bytes(placeholders[name]), literal)
    return text


def with_stray_bits(segment: str) -> str:
    """Return another spelling of ``segment`` that decodes to the same bytes.

    The last character of a segment whose length is not a multiple of 4 carries unused low
    bits; a canonical encoder leaves them zero, this sets the lowest one.
    """
    assert len(segment) % 4 in (2, 3), "segment has no unused bits"
    last = BASE64URL_ALPHABET.index(segment[-1])
    assert last % 2 == 0, "segment is not canonical"
    return segment[:-1] + BASE64URL_ALPHABET[last + 1]


def decode_lenient(segment: str) -> bytes:
    """Decode base64url the lenient way (padding optional, unused bits ignored)."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out
