"""Finding what verification needs: cache first, storage on a miss, fills fenced.

This is the verifier's only I/O. A warm request costs one cache round trip (the tenant's
entry, the subject's revocation version and the jti mark, in one MGET); decrypted keys are
memoised per process by their sealed blob, which is immutable (a new secret or generation is
a new blob), so the memo can never answer "which key is current" — only the shared cache or
storage does, on every request. Concurrent misses of one tenant share one storage read
(domain/verifying/flight.py), which is why a miss loads the tenant's whole revocation state
rather than one subject's.

With verification from memory (docs/design.md, "Verifying from memory"), a worker whose lease
is live answers a tenant it holds without any I/O; everything else takes the path above, and a
tenant found that way is then loaded whole from storage and offered to memory, fenced by the
invalidations applied since the load began.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable

from tenantauth.crypto import keypairs
from tenantauth.crypto.envelope import MasterKeyring, SealedSecret, SecretDecryptionError
from tenantauth.crypto.jwt import ALGORITHM, KeySet, VerificationKey
from tenantauth.domain.clock import SteadyWallClock
from tenantauth.domain.models import (
    KeyRecord,
    KeyState,
    Revocations,
    TenantSnapshot,
    TenantStatus,
    VerificationState,
)
from tenantauth.domain.policy import CachePolicy, MemoryPolicy, TokenPolicy
from tenantauth.domain.ports import Cache, Clock, Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.domain.verifying.directory import TenantDirectory
from tenantauth.domain.verifying.flight import SingleFlight
from tenantauth.domain.verifying.leases import LeaseListener
from tenantauth.domain.verifying.memory import FillBudget, VerifyMemory
from tenantauth.domain.verifying.warming import MemoryWarmer, snapshot_of
from tenantauth.errors import CacheUnavailableError, StorageUnavailableError

log = logging.getLogger(__name__)
_MEMO_MAX = 10_000
#: Revocation marks outlive their last use by this much, so a verifier whose clock lags the
#: one that computed the TTL (within the leeway we already assume) still finds the mark.
SKEW_MARGIN = 60
#: A tenant memory refused (more live revocations than the policy allows) is not loaded for
#: memory again for this long: otherwise each of its verifications would read it whole.
NOT_HELD_SECONDS = 60.0
_NOT_HELD_MAX = 10_000


class KeyResolver:
    """Resolves tenant ids to HMAC keys and revocation state (docs/design.md, "Cache")."""

    def __init__(
        self,
        storage: Storage,
        cache: Cache,
        keyring: MasterKeyring,
        policy: CachePolicy,
        *,
        clock: Clock | None = None,
        tokens: TokenPolicy | None = None,
        telemetry: Telemetry = NULL_TELEMETRY,
        memory: tuple[VerifyMemory, LeaseListener, MemoryPolicy] | None = None,
        retain: Callable[[], None] | None = None,
    ) -> None:
        """Wire the resolver; it owns a per-process memo of decrypted keys.

        ``tokens`` gives the horizon of revocations worth caching (max lifetime + leeway);
        ``telemetry`` is told how each lookup went; ``memory``, if given, is this worker's
        memory, the listener that keeps its lease, and their policy; ``retain`` is the
        warmer's (``MemoryWarmer``).
        """
        self._storage = storage
        self._cache = cache
        self._keyring = keyring
        self._policy = policy
        self._clock = clock or SteadyWallClock()
        self._tokens = tokens or TokenPolicy(issuer="", default_audience="", leeway=60)
        self._memo: dict[tuple[str, str, bytes], VerificationKey] = {}
        self._sets: dict[tuple[object, ...], KeySet] = {}
        self._flights: SingleFlight[TenantSnapshot | None] = SingleFlight(policy.load_wait)
        self._telemetry = telemetry
        self._directory = TenantDirectory(storage, cache, policy, telemetry)
        self._memory: VerifyMemory | None = memory[0] if memory else None
        self._listener: LeaseListener | None = memory[1] if memory else None
        self._memory_policy: MemoryPolicy | None = memory[2] if memory else None
        self._memory_flights: SingleFlight[TenantSnapshot | None] = SingleFlight(policy.load_wait)
        self._not_held: dict[str, float] = {}  # tenant id -> monotonic time it was refused
        self._fills = FillBudget(memory[2].fills_per_second) if memory else None
        self._warmer = (
            MemoryWarmer(
                storage,
                memory[0],
                memory[2],
                self._horizons,
                self._with_key,
                telemetry=telemetry,
                retain=retain,
            )
            if memory and memory[2].warm
            else None
        )

    def resolve(
        self, tenant_id: str, subject: str, jti: str
    ) -> tuple[KeySet | None, VerificationState]:
        """Return the tenant's keys, opened (None unless the tenant is active), and the state.

        Raises ``StorageUnavailableError`` when the cache cannot answer and storage is down
        (fail closed), ``SecretDecryptionError`` if the master key does not fit.
        """
        memory = self._memory
        if memory is None:
            return self._resolve_shared(tenant_id, subject, jti)
        snapshot = memory.get(tenant_id)
        if snapshot is not None:
            self._telemetry.cache_read("memory")
            key = snapshot.key or self._open(snapshot.record)
            return key, snapshot.state_for(subject, jti)
        key, state = self._resolve_shared(tenant_id, subject, jti)
        if state.record.status is not TenantStatus.ABSENT:  # unknown ids never take memory
            self._remember(memory, tenant_id)
        return key, state

    def _resolve_shared(
        self, tenant_id: str, subject: str, jti: str
    ) -> tuple[KeySet | None, VerificationState]:
        """The exact path: the shared cache, storage on a miss or an outage."""
        try:
            read = self._cache.get_state(tenant_id, subject, jti)
        except CacheUnavailableError:
            log.debug("cache unavailable; reading tenant %s from storage", tenant_id)
            self._telemetry.cache_read("unavailable")
            return self._key_of(self._load_state(tenant_id, subject, jti))
        if read.state is not None:
            self._telemetry.cache_read("hit")
            return self._key_of(read.state)
        if self._directory.rules_out(tenant_id, read.directory):  # no such tenant: no read
            self._telemetry.cache_read("ruled_out")
            return self._key_of(VerificationState(KeyRecord.absent(tenant_id)))
        self._telemetry.cache_read("miss")
        ticket = read.ticket or self._claim(tenant_id)
        if not ticket:
            # Nothing read now could be cached (no shared cache, as in embedded mode, or the
            # cache would not say which incarnation it is): one targeted read, no sharing.
            return self._key_of(self._load_state(tenant_id, subject, jti))
        snapshot = self._flights.run(
            tenant_id, lambda waited: self._load(tenant_id, ticket, waited)
        )
        if snapshot is None:  # the shared read found the cache warm again: read it ourselves
            return self._resolve_again(tenant_id, subject, jti)
        return self._key_of(snapshot.state_for(subject, jti))

    def _remember(self, memory: VerifyMemory, tenant_id: str) -> None:
        """Load the tenant whole from storage and offer it to memory (once per tenant and
        process while it stays held; concurrent misses share the load). Nothing happens
        while the lease is not live; a storage outage just leaves memory without it."""
        if not memory.live():
            assert self._listener is not None  # noqa: S101 - given with the memory
            self._listener.ensure_started()
            return
        if self._warmer is not None:
            self._warmer.ensure()  # once per registration: every tenant, a page at a time
        refused_at = self._not_held.get(tenant_id)
        if refused_at is not None and time.monotonic() - refused_at < NOT_HELD_SECONDS:
            return
        if self._fills is not None and not self._fills.take():
            return  # over this second's budget: the next verification of it tries again

        def load(waited: bool) -> TenantSnapshot | None:
            if waited and memory.get(tenant_id) is not None:
                return None
            ticket = memory.note()  # before the read (model: NOTE_AFTER_READ)
            snapshot = self._snapshot(tenant_id)
            if snapshot is not None:
                memory.offer(ticket, self._with_key(snapshot))
            else:
                if len(self._not_held) >= _NOT_HELD_MAX:
                    self._not_held.clear()
                self._not_held[tenant_id] = time.monotonic()
            return snapshot

        try:
            self._memory_flights.run(tenant_id, load)
        except StorageUnavailableError:
            log.debug("storage unavailable; tenant %s not held in memory", tenant_id)

    def _snapshot(self, tenant_id: str) -> TenantSnapshot | None:
        """The tenant's record and live revocations from storage, or None when it should not
        be held (unknown, or more revocations than the policy allows)."""
        assert self._memory_policy is not None  # noqa: S101 - given with the memory
        record = self._storage.load_key_record(tenant_id)
        if record is None:
            return None
        subjects: list[tuple[str, int, int]] = []
        jtis: list[tuple[str, int]] = []
        if record.status is TenantStatus.ACTIVE:  # no other status verifies a token
            revoked_since, expiring_after = self._horizons()
            subjects, jtis = self._storage.load_revocations(
                tenant_id, revoked_since=revoked_since, expiring_after=expiring_after
            )
        return snapshot_of((record, subjects, jtis), self._memory_policy.max_revocations)

    def _with_key(self, snapshot: TenantSnapshot) -> TenantSnapshot:
        """``snapshot`` with its tenant's key opened, for memory to hold (not memoised: the
        memo is for the shared path, and would churn with every tenant memory holds). A key
        that does not open is left closed: the verification that needs it raises as the
        shared path does."""
        try:
            keys = self._open(snapshot.record)
        except SecretDecryptionError:
            return snapshot
        return dataclasses.replace(snapshot, key=keys)

    def held(self, tenant_id: str) -> bool:
        """Whether this process would answer ``tenant_id`` from memory now (benchmarks and
        tests check that what they measure is that path)."""
        return self._memory is not None and self._memory.get(tenant_id) is not None

    def verification_key(self, tenant_id: str) -> VerificationKey | None:
        """Return the signing key of an active tenant, opened, or None for any other tenant.

        The same single lookup path as verification (``resolve``), for callers that need no
        revocation state (benchmarks, tests).
        """
        keys = self.resolve(tenant_id, "", "")[0]
        return keys.current if keys is not None else None

    def _resolve_again(
        self, tenant_id: str, subject: str, jti: str
    ) -> tuple[KeySet | None, VerificationState]:
        """A second cache read for a request whose shared read found the cache refilled;
        should the entry be gone again, storage answers this one request directly."""
        try:
            state = self._cache.get_state(tenant_id, subject, jti).state
        except CacheUnavailableError:
            state = None
        return self._key_of(state or self._load_state(tenant_id, subject, jti))

    def _load(self, tenant_id: str, ticket: str, waited: bool) -> TenantSnapshot | None:
        """The shared read of a miss: the tenant and its live revocations, offered to the
        cache under ``ticket``. Returns None instead when, after waiting for an earlier read,
        the cache turns out to hold the tenant again."""
        if waited:
            try:
                read = self._cache.get_state(tenant_id, "", "")
            except CacheUnavailableError:
                read = None
            if read is not None and read.state is not None:
                return None
            ticket = (read.ticket or self._claim(tenant_id)) if read is not None else ""
        log.debug("storage load tenant=%s pid=%d", tenant_id, os.getpid())
        record = self._storage.load_key_record(tenant_id) or KeyRecord.absent(tenant_id)
        active = record.status is TenantStatus.ACTIVE
        revocations = self._revocations(record) if active else Revocations()
        self._fill(record, revocations, ticket)
        return TenantSnapshot(
            record,
            {subject: version for subject, version, _ in revocations.subjects},
            frozenset(jti for jti, _ in revocations.jtis),
        )

    def _claim(self, tenant_id: str) -> str:
        """The ticket for a fill of what is read next ("" if the cache cannot give one)."""
        try:
            return self._cache.claim(tenant_id)
        except CacheUnavailableError:
            return ""

    def _fill(self, record: KeyRecord, revocations: Revocations, ticket: str) -> None:
        """Offer ``record`` with its revocations to the cache, which fences it; a cache outage
        or a refusal is ignored (the next miss tries again)."""
        # Unknown ids are negative-cached briefly; creation fences them away at once anyway.
        absent = record.status is TenantStatus.ABSENT
        ttl = self._policy.negative_ttl if absent else self._policy.ttl
        ttl *= 1 + random.uniform(-self._policy.jitter, self._policy.jitter)  # noqa: S311
        try:
            stored = self._cache.fill(record, ttl, revocations, ticket=ticket)
        except CacheUnavailableError:
            log.debug("cache unavailable; not filling tenant %s", record.tenant_id)
            return
        self._telemetry.cache_fill(stored=stored)

    def revocation_horizon(self) -> int:
        """Seconds a revocation can matter: the longest token lifetime plus leeway."""
        return self._tokens.max_lifetime + self._tokens.leeway

    def _horizons(self, now: int | None = None) -> tuple[int, int]:
        """(revoked_since, expiring_after) at ``now`` (default: the clock's): the bounds of
        the revocations that can still matter."""
        now = int(self._clock.now()) if now is None else now
        return now - self.revocation_horizon(), now - self._tokens.leeway

    def _revocations(self, record: KeyRecord) -> Revocations:
        now = int(self._clock.now())
        horizon = self.revocation_horizon()
        revoked_since, expiring_after = self._horizons(now)
        subjects, jtis = self._storage.load_revocations(
            record.tenant_id, revoked_since=revoked_since, expiring_after=expiring_after
        )
        return Revocations(
            subjects=tuple((s, v, at + horizon - now + SKEW_MARGIN) for s, v, at in subjects),
            jtis=tuple((j, exp + self._tokens.leeway - now + SKEW_MARGIN) for j, exp in jtis),
        )

    def _load_state(self, tenant_id: str, subject: str, jti: str) -> VerificationState:
        state = self._storage.load_verification_state(tenant_id, subject, jti)
        return state or VerificationState(KeyRecord.absent(tenant_id))

    def _key_of(self, state: VerificationState) -> tuple[KeySet | None, VerificationState]:
        return self._open(state.record), state

    def _open(self, record: KeyRecord) -> KeySet | None:
        """The record's keys opened, or None unless the tenant is active. Each key is
        opened once per process (memoised by its sealed blob, which never changes: a new key
        is a new blob), and so is each set."""
        sealed = record.sealed_secret
        if record.status is not TenantStatus.ACTIVE or sealed is None:
            return None
        set_key = (record.key_binding, sealed.key_id, sealed.blob, record.others)
        keys = self._sets.get(set_key)
        if keys is None:
            current = self._key(record.key_binding, record.key_name, record.alg, sealed)
            others = tuple(
                (
                    self._key(other.binding(record.tenant_id), other.name, other.alg, other.sealed),
                    None if other.state is KeyState.NEXT else other.at,
                )
                for other in record.others
            )
            keys = KeySet(current, others)
            if len(self._sets) >= _MEMO_MAX:
                self._sets.clear()
            self._sets[set_key] = keys
        return keys

    def _key(self, binding: str, name: str, alg: str, sealed: SealedSecret) -> VerificationKey:
        memo_key = (binding, sealed.key_id, sealed.blob)
        key = self._memo.get(memo_key)
        if key is None:
            key = _opened(name, alg, self._keyring.open(binding, sealed))
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[memo_key] = key
        return key


def _opened(name: str, alg: str, plain: bytes) -> VerificationKey:
    """The verification key from opened material: the HS256 secret itself, or a key pair's
    public key (the private key is not kept where verification runs). Raises
    ``SecretDecryptionError`` if the material is not a key of ``alg`` (a corrupted row: the
    fault is ours, so 503 and fail closed, as a tampered blob)."""
    if alg == ALGORITHM:
        return VerificationKey(name, alg, plain)
    try:
        return VerificationKey(name, alg, keypairs.public_key(alg, plain))
    except ValueError as exc:
        raise SecretDecryptionError(f"stored key is not an {alg} key") from exc
