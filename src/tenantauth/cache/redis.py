"""RedisCache: the shared verification cache, with fenced fills (docs/design.md §Cache).

Per tenant there are three keys (``cache_key``): ``entry`` holds the key record — the secret
only as sealed by the master key, never plaintext (VERIFIER-CHECKLIST #16) — ``fence`` holds
the lowest generation any entry may have, and ``inc`` the tenant's *incarnation*: a token bound
to the Redis server's ``run_id`` that every entry is stamped with (docs/design.md, "Cache
incarnations"). An entry counts only if its stamp is the current incarnation and that
incarnation belongs to the server answering, so entries that come back from an older snapshot,
or from another server after a failover, are ignored; and a fill is refused unless the
incarnation is still the one its filler read under.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from tenantauth.cache import cache_key
from tenantauth.cache.eviction import read_policy
from tenantauth.cache.redis_lua import CLAIM, FENCE, FILL, REVOKE_SUBJECT, SEAL, run_on
from tenantauth.crypto.jwt import ALGORITHM, LEGACY_KEY_NAME
from tenantauth.domain.models import (
    CacheRead,
    KeyRecord,
    Revocations,
    SealedSecret,
    TenantStatus,
    VerificationState,
    decode_keys,
    encode_keys,
)
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.errors import CacheUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long a claimed incarnation lives before a fill extends it (covers the storage read).
CLAIM_TTL_MS = 15_000
#: The directory incarnation (docs/design.md, "Tenant directory"): one key for the whole
#: cache, read in every get_state MGET (so that MGET spans two hash slots: a Redis Cluster
#: would need it read apart); renewed by creations, re-claimed daily at least.
DIRECTORY_KEY = "tenantauth:directory"
DIRECTORY_TTL_MS = 86_400_000


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
        telemetry: Telemetry = NULL_TELEMETRY,
    ) -> None:
        """Create the client; redis-py connects lazily and re-creates its pool after fork.

        ``client``, if given, is used as is instead of one built from ``url`` (then ``url``
        and ``timeout`` are ignored); the unit tests pass a fakeredis client this way.
        ``telemetry`` is told each call's latency and outcome and each breaker change.
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
                redis_connect_func=identify,
            )
        )
        self._breaker_seconds = breaker_seconds
        self._open_until = 0.0
        self._telemetry = telemetry

    def get(self, tenant_id: str) -> KeyRecord | None:
        """See ``Cache.get``."""
        state = self.get_state(tenant_id, "", "").state
        return state.record if state else None

    def get_state(self, tenant_id: str, subject: str, jti: str) -> CacheRead:
        """See ``Cache.get_state``: one MGET of incarnation, entry, subject key, jti key and
        the directory incarnation (so an unknown id costs what a known one does)."""
        self._check_breaker()
        keys = [
            cache_key(tenant_id, "inc"),
            cache_key(tenant_id, "entry"),
            subject_key(tenant_id, subject),
            jti_key(tenant_id, jti),
            DIRECTORY_KEY,
        ]
        return self._call(lambda conn: self._read_state(conn, tenant_id, keys))

    def claim(self, tenant_id: str) -> str:
        """See ``Cache.claim``: one script, which keeps an incarnation of this server."""
        self._check_breaker()
        return self._call(lambda conn: self._claim(conn, cache_key(tenant_id, "inc"), CLAIM_TTL_MS))

    def directory(self) -> str:
        """See ``Cache.directory``: one GET, plus a claim after a restart or a creation."""
        self._check_breaker()

        def read(conn: Any) -> str:
            current = _command(conn, "GET", DIRECTORY_KEY)
            if _current(current, server_of(conn)):
                return str(current.decode())
            return self._claim(conn, DIRECTORY_KEY, DIRECTORY_TTL_MS)

        return self._call(read)

    def renew_directory(self) -> None:
        """See ``Cache.renew_directory``: the next reader claims a new incarnation."""
        self._call(lambda conn: _command(conn, "DEL", DIRECTORY_KEY))

    def fill(
        self,
        record: KeyRecord,
        ttl_seconds: float,
        revocations: Revocations | None = None,
        *,
        ticket: str,
    ) -> bool:
        """See ``Cache.fill``."""
        tid = record.tenant_id
        found = revocations or Revocations()
        keys = [cache_key(tid, "entry"), cache_key(tid, "fence"), cache_key(tid, "inc")]
        keys += [subject_key(tid, s) for s, _, _ in found.subjects]
        keys += [jti_key(tid, j) for j, _ in found.jtis]
        args: list[Any] = [record.generation, encode_entry(record, ticket)]
        args += [max(1, int(ttl_seconds * 1000)), len(found.subjects), ticket]
        for _, version, ttl in found.subjects:
            args += [version, max(1, ttl)]
        args += [max(1, ttl) for _, ttl in found.jtis]

        def fill_on(conn: Any) -> bool:
            # The fill must run on the server the ticket belongs to: a restarted Redis may
            # have been restored with the very incarnation key the filler read under.
            if not _current(ticket.encode(), server_of(conn)):
                return False
            return bool(run_on(conn, FILL, keys, args))

        return self._call(fill_on)

    def revoke_subject(self, tenant_id: str, subject: str, version: int, ttl_seconds: int) -> None:
        """See ``Cache.revoke_subject``."""
        keys = [subject_key(tenant_id, subject)]
        self._call(lambda c: run_on(c, REVOKE_SUBJECT, keys, [version, max(1, ttl_seconds)]))

    def revoke_jti(self, tenant_id: str, jti: str, ttl_seconds: int) -> None:
        """See ``Cache.revoke_jti``."""
        key = jti_key(tenant_id, jti)
        self._call(lambda c: _command(c, "SET", key, b"1", "EX", max(1, ttl_seconds)))

    def fence(self, tenant_id: str, stored_generation: int) -> int:
        """See ``Cache.fence``."""
        keys = [cache_key(tenant_id, "entry"), cache_key(tenant_id, "fence")]
        return int(self._call(lambda c: run_on(c, FENCE, keys, [stored_generation])))

    def seal(self, tenant_id: str, generation: int) -> None:
        """See ``Cache.seal``."""
        keys = [cache_key(tenant_id, "entry"), cache_key(tenant_id, "fence")]
        self._call(lambda c: run_on(c, SEAL, keys, [generation]))

    def ping(self) -> None:
        """See ``Cache.ping``."""
        self._call(lambda c: _command(c, "PING"))

    def eviction_policy(self) -> str:
        """See ``Cache.eviction_policy``."""
        return self._call(read_policy)

    def close(self) -> None:
        """Disconnect the pool."""
        self._client.close()

    def _read_state(self, conn: Any, tenant_id: str, keys: list[str]) -> CacheRead:
        incarnation, raw, version, revoked, directory = _command(conn, "MGET", *keys)
        server = server_of(conn)
        ticket = ""  # no incarnation here yet: nothing of the tenant can be trusted
        if _current(incarnation, server):
            ticket = incarnation.decode()
            record = decode_entry(tenant_id, raw, ticket) if raw is not None else None
            if record is not None:
                state = VerificationState(record, int(version or 0), revoked is not None)
                return CacheRead(state, ticket)
        # A miss: only now does the directory incarnation matter (domain/verifying/directory.py).
        seen = directory.decode() if _current(directory, server) else ""
        return CacheRead(None, ticket, seen)

    def _claim(self, conn: Any, key: str, ttl_ms: int) -> str:
        """Return the incarnation in force at ``key`` on this server, starting a new one if
        there is none ("" if it belongs to no server we know, so fills are refused)."""
        server = server_of(conn)
        fresh = f"{server}.{secrets.token_urlsafe(12)}"
        won = run_on(conn, CLAIM, [key], [server + ".", fresh, ttl_ms])
        return won.decode() if _current(won, server) else ""

    def _check_breaker(self) -> None:
        """Fail fast while the breaker is open. Raises ``CacheUnavailableError``."""
        if self._open_until and time.monotonic() < self._open_until:
            raise CacheUnavailableError("cache circuit open")

    def _call(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` on one pooled connection; trip the breaker on any Redis error.

        Raises ``CacheUnavailableError``.
        """
        pool = self._client.connection_pool
        started = time.perf_counter()
        try:
            conn: Any = pool.get_connection()
            try:
                result = work(conn)
            except redis.exceptions.ResponseError:
                raise
            except BaseException:
                conn.disconnect()  # a timed-out reply may still arrive: never reuse the socket
                raise
            finally:
                pool.release(conn)
        except redis.exceptions.RedisError as exc:
            self._telemetry.dependency_call("cache", time.perf_counter() - started, ok=False)
            if not self._open_until:
                self._telemetry.breaker(is_open=True)
            self._open_until = time.monotonic() + self._breaker_seconds
            log.warning("redis error: %s", type(exc).__name__)
            raise CacheUnavailableError("the cache is unavailable") from exc
        self._telemetry.dependency_call("cache", time.perf_counter() - started, ok=True)
        if self._open_until:
            self._telemetry.breaker(is_open=False)
            self._open_until = 0.0
        return result


def identify(connection: Any) -> None:
    """``redis_connect_func``: the default handshake, then learn which server this is.

    A server's ``run_id`` is new on every start, so a Redis restored from an older snapshot or
    another server after a failover cannot pass for the one we wrote fences to.
    """
    connection.on_connect()
    connection.tenantauth_server = _run_id(connection)


def server_of(connection: Any) -> str:
    """Return the run_id of the server behind ``connection`` ("" if it will not say)."""
    server = getattr(connection, "tenantauth_server", None)
    if server is None:  # a client built elsewhere (tests): ask once per connection
        server = connection.tenantauth_server = _run_id(connection)
    return str(server)


def _run_id(connection: Any) -> str:
    try:
        info = _command(connection, "INFO", "server")
    except redis.exceptions.ResponseError:
        log.warning("redis refuses INFO: cache restarts cannot be told apart (docs/design.md)")
        return ""
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line.removeprefix("run_id:").strip()
    return ""


def _current(incarnation: bytes | None, server: str) -> bool:
    """Whether ``incarnation`` was claimed on ``server`` (i.e. is valid there)."""
    return incarnation is not None and incarnation.startswith(server.encode() + b".")


def _command(connection: Any, *args: Any) -> Any:
    connection.send_command(*args)
    return connection.read_response()


def subject_key(tenant_id: str, subject: str) -> str:
    """The key of a subject's revocation version (hashed: subjects are arbitrary text)."""
    return cache_key(tenant_id, "sub:" + _digest(subject))


def jti_key(tenant_id: str, jti: str) -> str:
    """The key of a denylisted token id (hashed: foreign jtis are arbitrary text)."""
    return cache_key(tenant_id, "jti:" + _digest(jti))


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:18]
    return base64.urlsafe_b64encode(raw).decode()


def encode_entry(record: KeyRecord, stamp: str) -> str:
    """Encode a record as ``generation|status|key_version|master key id|base64(sealed
    blob)|stamp|alg|key name|other keys`` (``models.encode_keys``): the first six fields as
    before key pairs, so an entry written by an earlier release still decodes (as an HS256
    ``k0`` key without others)."""
    sealed = record.sealed_secret
    key_id = sealed.key_id if sealed else ""
    blob = base64.b64encode(sealed.blob).decode() if sealed else ""
    version = record.key_version
    return (
        f"{record.generation}|{record.status.value}|{version}|{key_id}|{blob}|{stamp}"
        f"|{record.alg}|{record.key_name}|{encode_keys(record.others)}"
    )


def decode_entry(tenant_id: str, raw: bytes, incarnation: str) -> KeyRecord | None:
    """Decode an entry stamped with ``incarnation``; an entry of another incarnation, or a
    malformed one, counts as a miss (storage will answer)."""
    try:
        generation, status, version, key_id, blob, stamp, *key = raw.decode().split("|")
        if stamp != incarnation:
            return None
        alg, key_name, others = key or (ALGORITHM, LEGACY_KEY_NAME, "")
        sealed = SealedSecret(key_id, base64.b64decode(blob, validate=True)) if blob else None
        return KeyRecord(
            tenant_id,
            int(generation),
            TenantStatus(status),
            sealed,
            int(version),
            alg,
            key_name,
            decode_keys(others),
        )
    except ValueError:
        log.warning("malformed cache entry for tenant %s; treating as a miss", tenant_id)
        return None
