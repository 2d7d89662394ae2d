"""RedisCache: the shared verification cache, with fenced fills (docs/design.md §Cache).

Per tenant there are two keys (``cache_key``): ``entry`` holds the key record — the secret
only as sealed by the master key, never plaintext (VERIFIER-CHECKLIST #16) — and ``fence``
holds the lowest generation any entry may have. Both scripts run atomically in Redis.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any

import redis
import redis.exceptions

from tenantauth.cache import cache_key
from tenantauth.domain.models import (
    KeyRecord,
    Revocations,
    SealedSecret,
    TenantStatus,
    VerificationState,
)
from tenantauth.errors import CacheUnavailableError

log = logging.getLogger(__name__)

# KEYS: entry, fence, then the subject keys, then the jti keys.
# ARGV: generation, encoded entry, ttl in ms, number of subject keys, then (version, ttl in s)
# per subject key, then ttl in s per jti key. Returns 1 if stored. TTLs are relative, so the
# marks live as long as intended whatever Redis' own clock says.
# Refuses entries older than the fence or than what is cached, so a filler that read storage
# before a rotation committed can never put the old secret back. The tenant's revocations go in
# with the entry, atomically: an entry that is present implies its revocations are present.
# Subject versions only rise (a stale filler cannot lower one); jti marks are only added.
FILL_LUA = """
local g = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if g < fence then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cg = tonumber(string.match(cur, '^(%d+)|'))
  if cg and cg > g then return 0 end
end
local nsub = tonumber(ARGV[4])
local a = 5
for i = 3, 2 + nsub do
  local v = tonumber(ARGV[a])
  if v > tonumber(redis.call('GET', KEYS[i]) or '0') then
    redis.call('SET', KEYS[i], ARGV[a], 'EX', ARGV[a + 1])
  end
  a = a + 2
end
for i = 3 + nsub, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[a])
  a = a + 1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: subject key. ARGV: version, ttl in s. Raises the version, never lowers it.
REVOKE_SUBJECT_LUA = """
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""

# KEYS: entry, fence. ARGV: generation stored in the database. Returns the new generation.
FENCE_LUA = """
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = math.max(fence, tonumber(ARGV[1])) + 1
redis.call('SET', KEYS[2], n)
redis.call('DEL', KEYS[1])
return n
"""


class RedisCache:
    """The Cache port on Redis, with short timeouts and a small circuit breaker.

    After a failure, reads fail fast for ``breaker_seconds`` (callers fall back to storage)
    instead of every request paying a timeout. Fences always try Redis: a rotation must know.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        breaker_seconds: float = 1.0,
        client: redis.Redis | None = None,
    ) -> None:
        """Create the client; redis-py connects lazily and re-creates its pool after fork.

        ``client``, if given, is used as is instead of one built from ``url`` (then ``url``
        and ``timeout`` are ignored); the unit tests pass a fakeredis client this way.
        """
        self._client: redis.Redis = (
            client
            if client is not None
            else redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                health_check_interval=30,
            )
        )
        self._fill = self._client.register_script(FILL_LUA)
        self._fence = self._client.register_script(FENCE_LUA)
        self._revoke_subject = self._client.register_script(REVOKE_SUBJECT_LUA)
        self._breaker_seconds = breaker_seconds
        self._open_until = 0.0

    def get(self, tenant_id: str) -> KeyRecord | None:
        """See ``Cache.get``."""
        if self._open_until and time.monotonic() < self._open_until:
            raise CacheUnavailableError("cache circuit open")
        raw = self._call(self._client.get, cache_key(tenant_id, "entry"))
        return decode_entry(tenant_id, raw) if raw is not None else None

    def get_state(self, tenant_id: str, subject: str, jti: str) -> VerificationState | None:
        """See ``Cache.get_state``: one MGET of entry, subject key and jti key."""
        if self._open_until and time.monotonic() < self._open_until:
            raise CacheUnavailableError("cache circuit open")
        keys = (
            cache_key(tenant_id, "entry"),
            subject_key(tenant_id, subject),
            jti_key(tenant_id, jti),
        )
        raw, version, revoked = self._call(self._client.mget, keys)
        record = decode_entry(tenant_id, raw) if raw is not None else None
        if record is None:
            return None
        return VerificationState(record, int(version or 0), revoked is not None)

    def fill(
        self, record: KeyRecord, ttl_seconds: float, revocations: Revocations | None = None
    ) -> bool:
        """See ``Cache.fill``."""
        tid = record.tenant_id
        found = revocations or Revocations()
        keys = [cache_key(tid, "entry"), cache_key(tid, "fence")]
        keys += [subject_key(tid, s) for s, _, _ in found.subjects]
        keys += [jti_key(tid, j) for j, _ in found.jtis]
        args: list[Any] = [record.generation, encode_entry(record)]
        args += [max(1, int(ttl_seconds * 1000)), len(found.subjects)]
        for _, version, ttl in found.subjects:
            args += [version, max(1, ttl)]
        args += [max(1, ttl) for _, ttl in found.jtis]
        return bool(self._call(self._fill, keys=keys, args=args))

    def revoke_subject(self, tenant_id: str, subject: str, version: int, ttl_seconds: int) -> None:
        """See ``Cache.revoke_subject``."""
        keys = [subject_key(tenant_id, subject)]
        self._call(self._revoke_subject, keys=keys, args=[version, max(1, ttl_seconds)])

    def revoke_jti(self, tenant_id: str, jti: str, ttl_seconds: int) -> None:
        """See ``Cache.revoke_jti``."""
        self._call(self._client.set, jti_key(tenant_id, jti), b"1", ex=max(1, ttl_seconds))

    def fence(self, tenant_id: str, stored_generation: int) -> int:
        """See ``Cache.fence``."""
        keys = [cache_key(tenant_id, "entry"), cache_key(tenant_id, "fence")]
        return int(self._call(self._fence, keys=keys, args=[stored_generation]))

    def ping(self) -> None:
        """See ``Cache.ping``."""
        self._call(self._client.ping)

    def close(self) -> None:
        """Disconnect the pool."""
        self._client.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except redis.exceptions.RedisError as exc:
            self._open_until = time.monotonic() + self._breaker_seconds
            log.warning("redis error: %s", type(exc).__name__)
            raise CacheUnavailableError("the cache is unavailable") from exc
        self._open_until = 0.0
        return result


def subject_key(tenant_id: str, subject: str) -> str:
    """The key of a subject's revocation version (hashed: subjects are arbitrary text)."""
    return cache_key(tenant_id, "sub:" + _digest(subject))


def jti_key(tenant_id: str, jti: str) -> str:
    """The key of a denylisted token id (hashed: foreign jtis are arbitrary text)."""
    return cache_key(tenant_id, "jti:" + _digest(jti))


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:18]
    return base64.urlsafe_b64encode(raw).decode()


def encode_entry(record: KeyRecord) -> str:
    """Encode a record as ``generation|status|key_id|base64(sealed blob)``."""
    sealed = record.sealed_secret
    key_id = sealed.key_id if sealed else ""
    blob = base64.b64encode(sealed.blob).decode() if sealed else ""
    return f"{record.generation}|{record.status.value}|{key_id}|{blob}"


def decode_entry(tenant_id: str, raw: bytes) -> KeyRecord | None:
    """Decode an entry; a malformed one counts as a miss (storage will answer)."""
    try:
        generation, status, key_id, blob = raw.decode().split("|")
        sealed = SealedSecret(key_id, base64.b64decode(blob, validate=True)) if blob else None
        return KeyRecord(tenant_id, int(generation), TenantStatus(status), sealed)
    except ValueError:
        log.warning("malformed cache entry for tenant %s; treating as a miss", tenant_id)
        return None
