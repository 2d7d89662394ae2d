"""Finding a tenant's signing key: cache first, storage on a miss, fills fenced.

This is the verifier's only I/O. A warm request costs one cache round trip; decrypted keys
are memoised per process by their sealed blob, which is immutable (a new secret or generation
is a new blob), so the memo can never answer "which key is current" — only the shared cache
or storage does, on every request.
"""

from __future__ import annotations

import logging
import random

from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.models import KeyRecord, TenantStatus
from tenantauth.domain.policy import CachePolicy
from tenantauth.domain.ports import Cache, Storage
from tenantauth.errors import CacheUnavailableError

log = logging.getLogger(__name__)
_MEMO_MAX = 10_000


class KeyResolver:
    """Resolves tenant ids to HMAC keys through the cache protocol of docs/design.md."""

    def __init__(
        self, storage: Storage, cache: Cache, keyring: MasterKeyring, policy: CachePolicy
    ) -> None:
        """Wire the resolver; it owns a per-process memo of decrypted keys."""
        self._storage = storage
        self._cache = cache
        self._keyring = keyring
        self._policy = policy
        self._memo: dict[tuple[str, str, bytes], bytes] = {}

    def signing_key(self, tenant_id: str) -> bytes | None:
        """Return the current HMAC key of an active tenant, or None for any other tenant.

        Raises ``StorageUnavailableError`` when the cache cannot answer and storage is down
        (fail closed), ``SecretDecryptionError`` if the master key does not fit.
        """
        record = self.lookup(tenant_id)
        sealed = record.sealed_secret
        if record.status is not TenantStatus.ACTIVE or sealed is None:
            return None
        memo_key = (tenant_id, sealed.key_id, sealed.blob)
        key = self._memo.get(memo_key)
        if key is None:
            key = self._keyring.open(tenant_id, sealed)
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[memo_key] = key
        return key

    def lookup(self, tenant_id: str) -> KeyRecord:
        """Return the tenant's key record: from the cache, else storage (then fill the cache).

        A cache outage costs latency only: storage answers and nothing is filled.
        """
        try:
            record = self._cache.get(tenant_id)
        except CacheUnavailableError:
            log.debug("cache unavailable; reading tenant %s from storage", tenant_id)
            return self._load(tenant_id)
        if record is not None:
            return record
        record = self._load(tenant_id)
        self.fill(record)
        return record

    def fill(self, record: KeyRecord) -> None:
        """Offer ``record`` to the cache (fenced there); a cache outage is ignored."""
        # Unknown ids are negative-cached briefly; creation fences them away at once anyway.
        absent = record.status is TenantStatus.ABSENT
        ttl = self._policy.negative_ttl if absent else self._policy.ttl
        ttl *= 1 + random.uniform(-self._policy.jitter, self._policy.jitter)  # noqa: S311
        try:
            self._cache.fill(record, ttl)
        except CacheUnavailableError:
            log.debug("cache unavailable; not filling tenant %s", record.tenant_id)

    def _load(self, tenant_id: str) -> KeyRecord:
        return self._storage.load_key_record(tenant_id) or KeyRecord.absent(tenant_id)
