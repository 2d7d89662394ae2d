"""Frozen value objects of the domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tenantauth.crypto.envelope import SealedSecret, key_binding
from tenantauth.crypto.jwt import (
    ALGORITHM,
    LEGACY_KEY_NAME,
    TENANT_ID_RE,
    KeySet,
    header_kid,
)

__all__ = [
    "CacheRead",
    "Client",
    "ClientState",
    "IssuedToken",
    "KeyPolicy",
    "KeyRecord",
    "KeyState",
    "Page",
    "RefreshToken",
    "Revocations",
    "SealedSecret",
    "SubjectRevocation",
    "Tenant",
    "TenantKey",
    "TenantSnapshot",
    "TenantStatus",
    "User",
    "UserStatus",
    "VerificationState",
    "VerifiedToken",
    "is_tenant_id",
]


def is_tenant_id(text: str) -> bool:
    """Return whether ``text`` can be a tenant id (``^[a-z0-9][a-z0-9-]{1,62}$``).

    Checked before any lookup, so ids that cannot exist never reach storage (a NUL byte, say,
    which PostgreSQL refuses in text).
    """
    return TENANT_ID_RE.fullmatch(text) is not None


class TenantStatus(StrEnum):
    """Lifecycle of a tenant. ``DELETED`` rows are tombstones; ``ABSENT`` never existed."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    ABSENT = "absent"


class KeyState(StrEnum):
    """The state of a tenant key other than the one it signs with (docs/design.md, "The
    states of a key")."""

    NEXT = "next"  # published; signs from ``at`` on, once a rollover promotes it
    RETIRING = "retiring"  # signs no more; verifies until ``at`` (no leeway)


@dataclass(frozen=True, slots=True)
class TenantKey:
    """A tenant key other than its signing key: ``at`` is epoch seconds (see ``KeyState``).
    ``sealed`` is sealed to ``key_binding(tenant id, name, alg)``, like the signing key."""

    name: str
    alg: str
    sealed: SealedSecret = field(repr=False)
    state: KeyState
    at: int

    def binding(self, tenant_id: str) -> str:
        """What the key is sealed to (``envelope.key_binding``)."""
        return key_binding(tenant_id, self.name, self.alg)

    def verifies_at(self, now: float) -> bool:
        """Whether a token naming this key may verify at ``now``: a next key always (it is
        ours and published), a retiring one only before ``at``."""
        return self.state is KeyState.NEXT or now < self.at


def encode_keys(keys: tuple[TenantKey, ...]) -> str:
    """``name:alg:master key id:hex(sealed blob):state:at`` per key, joined by ``,``: what
    the storage adapters' SQL aggregates produce and the cache entry carries ("" for none)."""
    return ",".join(
        f"{k.name}:{k.alg}:{k.sealed.key_id}:{k.sealed.blob.hex()}:{k.state.value}:{k.at}"
        for k in keys
    )


def decode_keys(text: str | None) -> tuple[TenantKey, ...]:
    """The keys of ``encode_keys`` text (hex in either case), ordered by name. Raises
    ``ValueError`` for text it did not make."""
    keys = []
    for item in text.split(",") if text else ():
        name, alg, key_id, blob, state, at = item.split(":")
        sealed = SealedSecret(key_id, bytes.fromhex(blob))
        keys.append(TenantKey(name, alg, sealed, KeyState(state), int(at)))
    return tuple(sorted(keys, key=lambda k: k.name))


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """A tenant's scheduled rollover (seconds): a next key is published ``publish_ahead``
    before the signing key turns ``every`` old, and promoted then; the previous key verifies
    for ``grace`` (None: the tenant's max token TTL plus the clock leeway)."""

    tenant_id: str
    every: int
    publish_ahead: int
    grace: int | None = None


@dataclass(frozen=True)
class Tenant:
    """A tenant as stored. ``generation`` orders every change that affects verification.

    ``key_version`` counts secret rotations (what operators see); ``generation`` is the cache
    generation, bumped by every rotate, suspend, resume, delete and re-create, and is what the
    cache protocol compares (docs/design.md). ``alg`` and ``key_name`` describe the signing
    key ``sealed_secret`` holds: an HS256 secret, or a key pair's private key (PKCS#8 DER).
    """

    id: str
    name: str
    status: TenantStatus
    key_version: int
    generation: int
    access_token_ttl: int
    max_token_ttl: int
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime
    sealed_secret: SealedSecret | None = field(default=None, repr=False)
    alg: str = ALGORITHM
    key_name: str = LEGACY_KEY_NAME
    #: Its other keys (next, retiring), ordered by name: ``tenant_keys`` rows.
    others: tuple[TenantKey, ...] = ()

    @property
    def key_binding(self) -> str:
        """What the signing key is sealed to (``envelope.key_binding``)."""
        return key_binding(self.id, self.key_name, self.alg)

    @property
    def kid(self) -> str:
        """The ``kid`` the tenant's tokens carry now (``jwt.header_kid``)."""
        return header_kid(self.id, self.key_name, self.alg)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the verifier needs to know about a tenant: the cacheable unit.

    ``status`` is ``ABSENT`` for a tenant id that was never created (a negative entry).
    ``key_version`` counts the tenant's secrets (rotations, re-creations); tokens carry it
    (claim ``kv``), so a token of an earlier secret stays dead even if that secret is
    imported again.
    """

    tenant_id: str
    generation: int
    status: TenantStatus
    sealed_secret: SealedSecret | None = field(default=None, repr=False)
    key_version: int = 1
    alg: str = ALGORITHM
    key_name: str = LEGACY_KEY_NAME
    #: The tenant's other keys (next, retiring), ordered by name.
    others: tuple[TenantKey, ...] = ()

    @classmethod
    def absent(cls, tenant_id: str) -> KeyRecord:
        """Return the negative record for a tenant id that does not exist."""
        return cls(tenant_id, 0, TenantStatus.ABSENT, None)

    @classmethod
    def of(cls, tenant: Tenant) -> KeyRecord:
        """Return the key record of a stored tenant (tombstones included)."""
        return cls(
            tenant.id,
            tenant.generation,
            tenant.status,
            tenant.sealed_secret,
            tenant.key_version,
            tenant.alg,
            tenant.key_name,
            tenant.others,
        )

    @property
    def key_binding(self) -> str:
        """What the signing key is sealed to (``envelope.key_binding``)."""
        return key_binding(self.tenant_id, self.key_name, self.alg)


@dataclass(frozen=True, slots=True)
class Revocations:
    """Revocations of one tenant that can still matter to an access token.

    ``subjects``: (subject, version, ttl_seconds) — a revocation point matters until every
    token issued before it has expired (revoked_at + max lifetime + leeway).
    ``jtis``: (jti, ttl_seconds) — until the revoked token's own ``exp`` (+ leeway).
    TTLs are relative to when the fill is made, plus a clock-skew margin.
    The cache stores these together with the tenant's entry, so an entry that is present
    implies its revocations are present (docs/design.md, "Revocation of subjects and jtis").
    """

    subjects: tuple[tuple[str, int, int], ...] = ()
    jtis: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class VerificationState:
    """Everything verification needs to know, read in one round trip.

    ``record`` is the tenant's key record; ``subject_version`` the subject's revocation
    version (0 if never revoked); ``jti_revoked`` whether the token id is denylisted.
    """

    record: KeyRecord
    subject_version: int = 0
    jti_revoked: bool = False


@dataclass(frozen=True, slots=True)
class CacheRead:
    """What one cache lookup saw: the state (None on a miss) and the cache's *ticket*.

    The ticket names the cache incarnation the read happened in (docs/design.md, "Cache
    incarnations"). Whatever is read from storage after this lookup may be offered to the cache
    with this ticket; the cache refuses it if it has since restarted, been flushed or been
    replaced, because storage may have changed in between without it knowing. An empty
    ticket: the tenant has no incarnation here yet (``Cache.claim`` starts one), or there is
    no shared cache at all.
    """

    state: VerificationState | None
    ticket: str = ""
    #: On a miss, the directory incarnation seen by the same read ("" if none of this cache's
    #: server): what the tenant directory needs to rule an id out (domain/verifying/directory.py).
    directory: str = ""


@dataclass(frozen=True, slots=True)
class TenantSnapshot:
    """A tenant's record with every revocation that can still matter, read from storage
    once and shared by the requests that coalesced on that read (domain/verifying/flight.py)."""

    record: KeyRecord
    subject_versions: dict[str, int] = field(default_factory=dict)
    revoked_jtis: frozenset[str] = frozenset()
    #: The record's key, opened, when the snapshot is held in a worker's memory (so that an
    #: answer from memory never decrypts); None otherwise, or when the tenant is not active.
    key: KeySet | None = field(default=None, repr=False)

    def state_for(self, subject: str, jti: str) -> VerificationState:
        """Return the verification state of one token of this tenant."""
        return VerificationState(
            self.record, self.subject_versions.get(subject, 0), jti in self.revoked_jtis
        )


#: A tenant as storage hands it out to warm memory: its key record, its live subject
#: revocations (subject, version, revoked_at) and its live revoked jtis (jti, expires_at).
StoredTenant = tuple[KeyRecord, list[tuple[str, int, int]], list[tuple[str, int]]]


@dataclass(frozen=True, slots=True)
class SubjectRevocation:
    """The result of revoking every token of one subject."""

    tenant_id: str
    subject: str
    version: int
    revoked_at: int


class UserStatus(StrEnum):
    """A disabled user cannot log in, and its refresh tokens stop working."""

    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class User:
    """A user of a tenant (resource owner, RFC 6749 §1.1)."""

    tenant_id: str
    username: str
    password_hash: str = field(repr=False)
    status: UserStatus
    claims: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Client:
    """An OAuth client of a tenant (RFC 6749 §2), confidential: it has a secret."""

    tenant_id: str
    client_id: str
    name: str
    secret_hash: bytes = field(repr=False)
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime


@dataclass(frozen=True, slots=True)
class ClientState:
    """What authenticating a client and minting its own token need, read in one round trip.

    ``tenant`` is the tenant row (tombstones too); ``client`` the client, or None. The
    subject of a ``client_credentials`` token is the client id (RFC 6749 §4.4), so
    ``subject_version`` is that subject's revocation version (0 if never revoked) and
    ``subject_status`` the status of a user of that name (None if there is none).
    """

    tenant: Tenant
    client: Client | None
    subject_version: int = 0
    subject_status: UserStatus | None = None


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token (only its keyed hash), one link of a rotation family."""

    tenant_id: str
    token_hash: bytes = field(repr=False)
    family_id: str
    client_id: str
    username: str
    scope: str
    key_version: int
    subject_version: int
    issued_at: int
    expires_at: int
    used_at: int | None = None
    replaced_by: bytes | None = field(default=None, repr=False)
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token just minted (RFC 6749 §5.1 field names)."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - RFC 6749 §7.1 token type, not a secret


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """The verdict for a token that passed every check."""

    tenant_id: str
    subject: str
    scope: str | None
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a cursor-paginated listing; ``next_cursor`` is None on the last page."""

    items: list[Tenant]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Registration:
    """A worker's registration in the lease registry (docs/design.md, "The protocol").

    ``seq``: the invalidation stream's sequence number when it registered (acknowledged as
    applied); ``cursor``: where the worker starts reading the stream; ``incarnation``: the
    registry incarnation it registered under, which its renewals must still find.
    """

    seq: int
    cursor: str
    incarnation: str


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One entry of the invalidation stream: tenant ``tenant_id`` changed, ``seq``-th change."""

    seq: int
    tenant_id: str


@dataclass(frozen=True, slots=True)
class Publication:
    """A published invalidation: its ``seq`` and the registry incarnation it was made in;
    ``awaited``, the live leases it was published to (0: no acknowledgement to wait for),
    and ``done_cursor``, where to look for word of the last one (``wait_acknowledged``)."""

    seq: int
    incarnation: str
    awaited: int = 0
    done_cursor: str = "0-0"


@dataclass(frozen=True, slots=True)
class AckStatus:
    """What a writer's poll saw: live leases that have not acknowledged yet (-1: the registry
    is not the one the invalidation was published in, so no ack can come), and how long
    until the current registry is one lease old (``settle_seconds``; 0 once it is)."""

    pending: int
    settle_seconds: float
