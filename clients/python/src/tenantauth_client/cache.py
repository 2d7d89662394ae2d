"""An optional, short, positive cache of verify results (off unless ``cache_ttl > 0``).

**Revocation delay.** tenantauth revokes a token everywhere the moment a rotate, suspend,
delete, user revoke or token revoke call returns. A client with this cache on keeps accepting a
token it verified during the last ``cache_ttl`` seconds *without asking the server*: a revoked
token (or any token of a rotated, suspended or deleted tenant) may keep being accepted by this
client for up to ``cache_ttl`` seconds after the revocation. Nothing else is weakened: only
successful verifications are cached (a rejection is never cached, so a token is never refused
from the cache), and an entry never outlives the token's own ``exp``.

Entries are keyed by a keyed BLAKE2b hash of the token and the audience (a random key per
cache), so the cache holds no token; it holds at most ``max_entries`` entries, dropping the
oldest first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tenantauth_client.claims import Claims


class VerifyCache:
    """A bounded, thread-safe map from (token, audience) to verified ``Claims``, each entry
    kept at most ``ttl`` seconds and never past the token's ``exp``."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 1024,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Cache for ``ttl`` seconds (> 0) at most ``max_entries`` (> 0) results.

        Raises ``ValueError`` for a non-positive ``ttl`` or ``max_entries``.
        """
        if ttl <= 0 or max_entries <= 0:
            raise ValueError("ttl and max_entries must be positive")
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._wall = wall
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, Claims]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, audience: str | None) -> Claims | None:
        """Return the cached claims of ``token`` for ``audience``, or ``None`` (a miss)."""
        key = self._hash(token, audience)
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, token: str, audience: str | None, claims: Claims) -> None:
        """Remember ``claims`` for ``min(ttl, time left until exp)`` seconds."""
        lifetime = min(self.ttl, claims.expires_at_epoch - self._wall())
        if lifetime <= 0:
            return
        key = self._hash(token, audience)
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._monotonic() + lifetime, claims)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (e.g. after the service itself revoked something)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Return the number of entries held (expired ones included until next looked up)."""
        return len(self._entries)

    def _hash(self, token: str, audience: str | None) -> bytes:
        # A JSON array encodes the pair unambiguously (no two pairs give the same text).
        data = json.dumps([token, audience]).encode("ascii")
        return hashlib.blake2b(data, key=self._key).digest()
