"""RedisFailureLimiter: the FailureLimiter port on shared Redis counters (production mode).

One Redis key per limited key, ``<prefix><key>``, holding the failure count. Its TTL is the
rest of the counting window, or — once the count reaches the threshold — the rest of the
lockout; when it expires counting starts over. Each update is one Lua script (INCR and
PEXPIRE together, atomic), and every call is one round trip (a check that finds a key at its
threshold, two): a pipeline with one command or script per key, so no command spans two keys
(Redis Cluster friendly). The script goes by EVAL,
not EVALSHA: redis-py would otherwise spend an extra SCRIPT EXISTS round trip per pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
import redis.exceptions

from tenantauth.domain.limits import LimitPolicy, locked_error, retry_after_seconds
from tenantauth.errors import CacheUnavailableError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "tenantauth:fail:"

# KEYS: the counter. ARGV: window ms, lockout ms, threshold. Returns the new count.
# The lockout TTL is set once, when the count reaches the threshold, so failures recorded
# while locked do not extend it. A counter found without a TTL (it should not happen) gets
# one, so no key can stay locked forever.
RECORD_LUA = """
local n = redis.call('INCR', KEYS[1])
local threshold = tonumber(ARGV[3])
if n == threshold or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], n >= threshold and ARGV[2] or ARGV[1])
end
return n
"""


class RedisFailureLimiter:
    """The FailureLimiter port (``tenantauth.domain.limits``) on Redis.

    The same keys and answers for known and unknown usernames: the limiter never looks
    anything up. Raises ``CacheUnavailableError`` for any Redis failure (callers fail closed).
    """

    def __init__(
        self, client: redis.Redis, policy: LimitPolicy, prefix: str = DEFAULT_PREFIX
    ) -> None:
        """Use ``client`` (its timeouts apply) with ``policy``; keys start with ``prefix``."""
        self._client = client
        self._policy = policy
        self._prefix = prefix

    def check(self, keys: Sequence[str]) -> frozenset[str]:
        """See ``FailureLimiter.check``: one round trip of one GET per key; a second one,
        reading the TTLs, only for keys whose count reached their threshold (only a lockout
        needs its remaining time). Half the commands of GET + PTTL per key, on every token
        request (docs/design.md, "Built: the token endpoint without the framework")."""
        if not keys:
            return frozenset()
        counts = [_count(raw, self._prefix) for raw in self._counts(keys)]
        full = [
            key for key, n in zip(keys, counts, strict=True) if n >= self._policy.threshold(key)
        ]
        if full:
            longest = max(
                self._locked_for(key, pttl)
                for key, pttl in zip(full, self._ttls(full), strict=True)
            )
            if longest > 0:
                raise locked_error(retry_after_seconds(longest))
        return frozenset(key for key, n in zip(keys, counts, strict=True) if n)

    def record_failure(self, keys: Sequence[str]) -> None:
        """See ``FailureLimiter.record_failure``: one pipeline of one script per key."""
        if not keys:
            return
        window_ms = self._policy.window_seconds * 1000
        lockout_ms = self._policy.lockout_seconds * 1000
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            threshold = self._policy.threshold(key)
            pipe.eval(RECORD_LUA, 1, self._prefix + key, window_ms, lockout_ms, threshold)
        self._execute(pipe)

    def reset(self, keys: Sequence[str]) -> None:
        """See ``FailureLimiter.reset``: one pipeline of one DEL per key."""
        if not keys:
            return
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.delete(self._prefix + key)
        self._execute(pipe)

    def _counts(self, keys: Sequence[str]) -> list[Any]:
        """The raw counters of ``keys``, in one round trip (no pipeline for a single key)."""
        if len(keys) == 1:
            return [self._execute_one(self._client.get, self._prefix + keys[0])]
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.get(self._prefix + key)
        return self._execute(pipe)

    def _ttls(self, keys: Sequence[str]) -> list[int]:
        """The remaining TTL in ms of each of ``keys`` (-2: gone, -1: none), in one trip."""
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(self._prefix + key)
        return self._execute(pipe)

    def _locked_for(self, key: str, pttl: int) -> float:
        """Return the seconds ``key``, whose count reached its threshold, stays locked (0 if
        it expired since it was counted)."""
        if pttl == -2:  # expired meanwhile
            return 0
        if pttl < 0:  # no TTL: heal it rather than lock forever
            lockout = self._policy.lockout_seconds
            self._execute_one(self._client.pexpire, self._prefix + key, lockout * 1000)
            return lockout
        return pttl / 1000

    def _execute(self, pipe: Any) -> list[Any]:
        return self._execute_one(pipe.execute)  # type: ignore[no-any-return]

    def _execute_one(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except redis.exceptions.RedisError as exc:
            log.warning("redis error in failure limiter: %s", type(exc).__name__)
            raise CacheUnavailableError("the failure limiter's store is unavailable") from exc


def _count(raw: bytes | None, prefix: str) -> int:
    """A counter's value; a malformed one counts as none (logged: only we write these)."""
    try:
        return int(raw or 0)
    except ValueError:
        log.warning("malformed failure counter under %s; ignoring it", prefix)
        return 0
