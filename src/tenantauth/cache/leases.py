"""RedisLeases: the LeaseRegistry port on Redis (docs/design.md, "Verifying from memory").

Scripts run on one pooled connection whose server identity (``run_id``) is known, as
RedisCache's do, so a registry incarnation counts only on the server that began it. The
listener's blocking stream read has a client of its own, whose socket timeout exceeds the
block, so a wedged Redis ends the read with an error instead of hanging the listener.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from tenantauth.cache.leases_lua import (
    ACKS,
    DEREGISTER,
    DONE,
    EXPIRIES,
    PENDING,
    PUBLISH,
    REGISTER,
    REGISTRY,
    RENEW,
    SEQ,
    STREAM,
    WAITING,
    WAITING_SEQS,
)
from tenantauth.cache.redis import identify, server_of
from tenantauth.cache.redis_lua import run_on
from tenantauth.domain.models import AckStatus, Invalidation, Publication, Registration
from tenantauth.errors import CacheUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Stream entries kept (approximately; never fewer). A listener further behind than this
#: sees a gap and registers again, which drops its memory: safe, only slower.
STREAM_LENGTH = 100_000
#: Members whose lease ended this long ago are removed at the next registration.
FORGET_MS = 60_000
_KEYS3 = [REGISTRY, EXPIRIES, ACKS]
_KEYS5 = [REGISTRY, EXPIRIES, ACKS, SEQ, STREAM]
_RENEW_KEYS = [REGISTRY, EXPIRIES, ACKS, WAITING, DONE, WAITING_SEQS]
_PUBLISH_KEYS = [REGISTRY, EXPIRIES, ACKS, SEQ, STREAM, WAITING, DONE, WAITING_SEQS]
_PENDING_KEYS = [REGISTRY, EXPIRIES, ACKS, WAITING, WAITING_SEQS]


class RedisLeases:
    """Worker leases, acknowledgements and the invalidation stream in Redis."""

    def __init__(self, url: str, *, lease_seconds: float, timeout: float = 0.25) -> None:
        """Create the clients (they connect lazily, and again after a fork)."""
        self._lease_ms = max(1, int(lease_seconds * 1000))
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "retry_on_timeout": False,
            "redis_connect_func": identify,
        }
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, **options)
        # The blocking read waits up to a quarter lease; the timeout must outlast it.
        self._reader = redis.Redis.from_url(
            url, socket_timeout=lease_seconds / 4 + timeout, **options
        )
        # Writers wait for their publication's last acknowledgement up to a lease (one
        # pooled connection per writer waiting at that moment).
        self._waiter = redis.Redis.from_url(url, socket_timeout=lease_seconds + timeout, **options)

    def register(self, worker_id: str) -> Registration:
        """See ``LeaseRegistry.register``."""

        def register_on(conn: Any) -> Registration:
            prefix, fresh = _incarnation(conn)
            args = [prefix, fresh, worker_id, self._lease_ms, FORGET_MS]
            seq, incarnation, cursor = run_on(conn, REGISTER, _KEYS5, args)
            return Registration(int(seq), cursor.decode(), incarnation.decode())

        return self._call(register_on)

    def read(self, cursor: str, block_seconds: float) -> tuple[list[Invalidation], str]:
        """See ``LeaseRegistry.read``."""
        block_ms = max(1, int(block_seconds * 1000))
        try:
            reply: Any = self._reader.xread({STREAM: cursor}, count=1000, block=block_ms)
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailableError("the lease registry is unavailable") from exc
        found = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                found.append(Invalidation(int(fields[b"s"]), fields[b"t"].decode()))
                cursor = entry_id.decode()
        return found, cursor

    def renew(self, worker_id: str, incarnation: str, applied: int) -> bool:
        """See ``LeaseRegistry.renew``."""

        def renew_on(conn: Any) -> bool:
            prefix, _ = _incarnation(conn)
            args = [incarnation, prefix, worker_id, applied, self._lease_ms]
            return bool(run_on(conn, RENEW, _RENEW_KEYS, args))

        return self._call(renew_on)

    def deregister(self, worker_id: str) -> None:
        """See ``LeaseRegistry.deregister``."""
        self._call(lambda conn: run_on(conn, DEREGISTER, _KEYS3, [worker_id]))

    def publish(self, tenant_id: str) -> Publication:
        """See ``LeaseRegistry.publish``."""

        def publish_on(conn: Any) -> Publication:
            prefix, fresh = _incarnation(conn)
            args = [prefix, fresh, tenant_id, STREAM_LENGTH, self._lease_ms]
            seq, incarnation, awaited, cursor = run_on(conn, PUBLISH, _PUBLISH_KEYS, args)
            return Publication(int(seq), incarnation.decode(), int(awaited), cursor.decode())

        return self._call(publish_on)

    def wait_acknowledged(self, publication: Publication, seconds: float) -> bool:
        """See ``LeaseRegistry.wait_acknowledged``."""
        deadline = time.monotonic() + seconds
        cursor, wanted = publication.done_cursor, str(publication.seq).encode()
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply: Any = self._waiter.xread(
                    {DONE: cursor}, count=100, block=max(1, int(left * 1000))
                )
            except redis.exceptions.RedisError as exc:
                raise CacheUnavailableError("the lease registry is unavailable") from exc
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    if fields.get(b"s") == wanted:
                        return True
                    cursor = entry_id.decode()
        return False

    def acks(self, publication: Publication) -> AckStatus:
        """See ``LeaseRegistry.acks``."""

        def acks_on(conn: Any) -> AckStatus:
            prefix, fresh = _incarnation(conn)
            args = [publication.incarnation, prefix, fresh, publication.seq, self._lease_ms]
            pending, settle_ms = run_on(conn, PENDING, _PENDING_KEYS, args)
            return AckStatus(int(pending), int(settle_ms) / 1000)

        return self._call(acks_on)

    def close(self) -> None:
        """Disconnect the clients."""
        self._client.close()
        self._reader.close()
        self._waiter.close()

    def _call(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` on one pooled connection. Raises ``CacheUnavailableError``."""
        pool = self._client.connection_pool
        try:
            conn: Any = pool.get_connection()
            try:
                return work(conn)
            except redis.exceptions.ResponseError:
                raise
            except BaseException:
                conn.disconnect()  # a late reply must never be read as the next one's
                raise
            finally:
                pool.release(conn)
        except redis.exceptions.RedisError as exc:
            log.warning("lease registry error: %s", type(exc).__name__)
            raise CacheUnavailableError("the lease registry is unavailable") from exc


def _incarnation(conn: Any) -> tuple[str, str]:
    """This server's prefix and a fresh registry incarnation for it (without ``t0``)."""
    server = server_of(conn)
    return server + ".", f"{server}.{secrets.token_urlsafe(9)}"
