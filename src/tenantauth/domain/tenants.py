"""Tenant use cases: create, list, show, update, rotate, delete.

Every change that affects verification goes through ``apply_change``, which runs the fence protocol
of docs/design.md: lock the row, fence the cache (obtaining the new generation), write, commit,
then seal the cache (the fence again, on whatever cache answers now). A change whose fence
fails is rolled back (503), so no change can commit that the cache might not honour; one whose
seal fails is committed but answered with 503 until a repeat confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tenantauth.crypto.jwt import ALGORITHM
from tenantauth.domain import paging
from tenantauth.domain.models import Page, SealedSecret, Tenant, TenantStatus, is_tenant_id
from tenantauth.domain.paging import DEFAULT_PAGE_SIZE
from tenantauth.domain.ports import Tx
from tenantauth.domain.services import Services
from tenantauth.domain.signing_keys import NewKey, new_key
from tenantauth.domain.tokens import CONTROL_CHARACTERS
from tenantauth.errors import (
    CacheUnavailableError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnconfirmedChangeError,
)

MAX_NAME_LENGTH = 200
#: Seconds a verifier may keep a copy of a tenant's JWKS (its ``Cache-Control: max-age``):
#: the bound on how long an offline verifier may accept a token of a key rotated away.
JWKS_MAX_AGE = 300


@dataclass(frozen=True, slots=True)
class TenantChanges:
    """The fields a PATCH may change; None leaves a field as it is."""

    name: str | None = None
    status: TenantStatus | None = None
    access_token_ttl: int | None = None
    max_token_ttl: int | None = None


def create_tenant(
    svc: Services,
    tenant_id: str,
    name: str,
    *,
    secret: str | None = None,
    access_token_ttl: int | None = None,
    max_token_ttl: int | None = None,
    alg: str | None = None,
    private_key: str | None = None,
) -> Tenant:
    """Create a tenant with a fresh (or imported) signing key of ``alg`` (default HS256):
    an HS256 ``secret`` in base64url, or a key pair's ``private_key`` (PEM or JWK).

    Returns the tenant. Raises ``ConflictError`` if the id exists, ``InvalidRequestError`` for a
    bad alg, key or TTLs. A deleted id may be created again; its old tokens stay invalid even
    if the same key is imported, because the key version (claim ``kv``) keeps rising.
    """
    if not is_tenant_id(tenant_id):
        raise InvalidRequestError("id must match ^[a-z0-9][a-z0-9-]{1,62}$")
    key = new_key(alg, secret=secret, private_key=private_key)
    ttls = _ttls(svc, access_token_ttl, max_token_ttl)

    def build(current: Tenant | None, now: datetime) -> Tenant:
        if current is not None and current.status is not TenantStatus.DELETED:
            raise ConflictError(f"tenant {tenant_id!r} already exists")
        tenant = Tenant(
            id=tenant_id,
            name=_name(name),
            status=TenantStatus.ACTIVE,
            # A re-created tenant continues the count, so tokens of the old one (claim kv)
            # stay dead even if the operator imports the very same secret again.
            key_version=current.key_version + 1 if current is not None else 1,
            generation=0,
            access_token_ttl=ttls[0],
            max_token_ttl=ttls[1],
            created_at=now,
            updated_at=now,
            rotated_at=now,
        )
        return with_key(svc, tenant, key)

    return apply_change(svc, tenant_id, build)


def get_tenant(svc: Services, tenant_id: str) -> Tenant:
    """Return a live tenant. Raises ``NotFoundError`` for unknown or deleted ids."""
    require_tenant_id(tenant_id)
    with svc.storage.transaction() as tx:
        return require_live(tx.get_tenant(tenant_id), tenant_id)


def list_tenants(svc: Services, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE) -> Page:
    """Return one page of live tenants ordered by id.

    Raises ``InvalidRequestError`` for a malformed cursor or a limit outside 1..500.
    """
    after = paging.start_after(cursor, limit)
    with svc.storage.transaction() as tx:
        rows = tx.list_tenants(after, limit + 1)
    return Page(*paging.cut(rows, limit, lambda t: t.id))


def update_tenant(svc: Services, tenant_id: str, changes: TenantChanges) -> Tenant:
    """Apply a PATCH. Suspending takes effect on every verifier when this returns.

    Raises ``NotFoundError``, ``InvalidRequestError`` (bad name, TTLs or status).
    """
    if changes.status not in (None, TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
        raise InvalidRequestError("status must be 'active' or 'suspended'")

    def build(current: Tenant | None, now: datetime) -> Tenant:
        tenant = require_live(current, tenant_id)
        access, maximum = _ttls(
            svc,
            _given(changes.access_token_ttl, tenant.access_token_ttl),
            _given(changes.max_token_ttl, tenant.max_token_ttl),
        )
        return replace(
            tenant,
            name=_name(changes.name) if changes.name is not None else tenant.name,
            status=changes.status or tenant.status,
            access_token_ttl=access,
            max_token_ttl=maximum,
            updated_at=now,
        )

    return apply_change(svc, tenant_id, build)


def rotate_tenant(
    svc: Services,
    tenant_id: str,
    secret: str | None = None,
    *,
    alg: str | None = None,
    private_key: str | None = None,
) -> Tenant:
    """Replace the tenant's signing key (``rotate_key``) and return the tenant."""
    return rotate_key(svc, tenant_id, secret, alg=alg, private_key=private_key).tenant


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotated tenant, and until when a verifier holding a copy of its JWKS from before the
    rotation may still accept the old key's tokens (None: the old key was an HS256 secret,
    which no JWKS publishes)."""

    tenant: Tenant
    offline_until: datetime | None


def rotate_key(
    svc: Services,
    tenant_id: str,
    secret: str | None = None,
    *,
    alg: str | None = None,
    private_key: str | None = None,
) -> Rotation:
    """Replace the tenant's signing key with a new one of ``alg`` (default: the current
    algorithm), generated or imported as in ``create_tenant``: every token signed with the
    old key is rejected by every verifier of this service once this returns.

    Raises ``NotFoundError``; ``InvalidRequestError`` for a bad alg or key; ``ConflictError``
    if an imported key equals the current one (that rotation would revoke nothing);
    ``DependencyUnavailableError`` (nothing changed).
    """
    require_tenant_id(tenant_id)
    with svc.storage.transaction() as tx:  # the default alg and the name to avoid
        live = require_live(tx.get_tenant(tenant_id), tenant_id)
    key = new_key(
        alg, secret=secret, private_key=private_key, default_alg=live.alg, avoid=key_names(live)
    )
    replaced: list[Tenant] = []

    def build(current: Tenant | None, now: datetime) -> Tenant:
        tenant = require_live(current, tenant_id)
        assert tenant.sealed_secret is not None  # live tenants always have one  # noqa: S101
        if key.name in key_names(tenant):  # a change raced ours and took this name
            raise ConflictError("the tenant changed during the rotation; try again")
        if key.same_material(svc.keyring.open(tenant.key_binding, tenant.sealed_secret)):
            raise ConflictError("the new key equals the current one; it would revoke nothing")
        replaced.append(tenant)
        # Every other key goes too (a published next key, retiring ones in their grace):
        # a rotation revokes every token of the tenant, whichever key signed it.
        rotated = replace(
            tenant, key_version=tenant.key_version + 1, rotated_at=now, updated_at=now, others=()
        )
        return with_key(svc, rotated, key)

    tenant = apply_change(svc, tenant_id, build)
    published = replaced[-1].alg != ALGORITHM
    until = tenant.rotated_at + timedelta(seconds=JWKS_MAX_AGE) if published else None
    return Rotation(tenant, until)


def key_names(tenant: Tenant) -> set[str]:
    """The names of every key the tenant holds (signing, next, retiring)."""
    return {tenant.key_name, *(k.name for k in tenant.others)}


def with_key(svc: Services, tenant: Tenant, key: NewKey) -> Tenant:
    """``tenant`` signing with ``key``, sealed to its binding (tenant, key name, alg)."""
    signing = replace(tenant, alg=key.alg, key_name=key.name)
    return replace(signing, sealed_secret=svc.keyring.seal(signing.key_binding, key.material))


def rewrap_tenant(svc: Services, tenant_id: str) -> bool:
    """Re-seal the tenant's secret under the current master key (master-key rotation).

    The secret itself is unchanged, so no token is revoked; the change still runs under the
    fence protocol, so every cache entry holding the old blob is dropped and no verifier needs
    the old master key once this returns. Returns False when there was nothing to do (already
    under the current key, deleted or unknown). Raises ``SecretDecryptionError`` if the blob
    opens under no configured key, ``DependencyUnavailableError``.
    """

    def build(current: Tenant | None, now: datetime) -> Tenant:
        sealed = current.sealed_secret if current is not None else None
        if current is None or sealed is None:
            raise _UnchangedError
        ring = svc.keyring
        if {sealed.key_id, *(k.sealed.key_id for k in current.others)} == {ring.current_id}:
            reseal(svc, current)  # a repeat after an unconfirmed re-wrap (503) confirms it
            raise _UnchangedError
        resealed = _resealed(svc, current.key_binding, sealed)
        others = tuple(
            replace(k, sealed=_resealed(svc, k.binding(tenant_id), k.sealed))
            for k in current.others
        )
        return replace(current, sealed_secret=resealed, others=others, updated_at=now)

    try:
        apply_change(svc, tenant_id, build)
    except _UnchangedError:
        return False
    return True


def _resealed(svc: Services, binding: str, sealed: SealedSecret) -> SealedSecret:
    """``sealed`` opened and sealed again under the current master key, to ``binding``."""
    return svc.keyring.seal(binding, svc.keyring.open(binding, sealed))


class _UnchangedError(Exception):
    """Raised by a ``build`` to roll back a change that turned out unnecessary (before any
    fence is taken, so nothing is disturbed)."""


def delete_tenant(svc: Services, tenant_id: str) -> None:
    """Delete a tenant: its secret, users, clients and refresh tokens are erased, it leaves
    every resource server's list, and a tombstone keeps its generation (so a re-created
    tenant starts empty and no old credential or token of the old one works in it).

    Raises ``NotFoundError`` for unknown or already deleted ids.
    """

    def build(current: Tenant | None, now: datetime) -> Tenant:
        if current is not None and current.status is TenantStatus.DELETED:
            reseal(svc, current)  # a repeat after an unconfirmed delete (503) confirms it
        tenant = require_live(current, tenant_id)
        return replace(
            tenant, status=TenantStatus.DELETED, sealed_secret=None, others=(), updated_at=now
        )

    def erase_accounts(tx: Tx) -> None:
        tx.refresh_tokens.delete_all(tenant_id)
        tx.clients.delete_all(tenant_id)
        tx.users.delete_all(tenant_id)
        tx.key_policies.delete_all(tenant_id)  # a re-created tenant starts unscheduled
        # No resource server keeps a tenant that is gone: a re-created one starts unlisted.
        tx.resource_servers.delete_all(tenant_id)

    apply_change(svc, tenant_id, build, erase_accounts)


def apply_change(
    svc: Services,
    tenant_id: str,
    build: Callable[[Tenant | None, datetime], Tenant],
    also: Callable[[Tx], None] | None = None,
) -> Tenant:
    """Run one verification-affecting change under the fence protocol (docs/design.md);
    ``also`` runs in the same transaction after the tenant row is written."""
    require_tenant_id(tenant_id)  # create_tenant checked the shape already, with a clearer error
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    with svc.storage.transaction() as tx:
        current = tx.get_tenant(tenant_id, for_update=True)
        draft = build(current, now)
        # Fence before commit: from here on no cache entry older than `generation` can be read
        # or written, whoever filled it and whenever (docs/design.md, "Why the race is gone").
        generation = svc.cache.fence(tenant_id, current.generation if current else 0)
        tenant = replace(draft, generation=generation)
        if current is None:
            tx.insert_tenant(tenant)
        else:
            tx.update_tenant(tenant)
        if tenant.others != (current.others if current is not None else ()):
            tx.replace_keys(tenant_id, tenant.others, now)
        if also is not None:
            also(tx)
    # Seal after commit: had the cache restarted since the fence, a filler could have read
    # the old row into it before our commit (docs/design.md, "Cache incarnations").
    created = current is None or current.status is TenantStatus.DELETED
    reseal(svc, tenant, created=created)
    return tenant


def reseal(svc: Services, tenant: Tenant, *, created: bool = False) -> None:
    """Seal the cache at the tenant's committed generation (``confirm``): after a change,
    and again when a repeated call finds the change already made, so that a repeat after
    ``UnconfirmedChangeError`` confirms it. A creation also renews the tenant directory, so
    no verifier rules the new id out once this returns (docs/design.md, "Tenant directory").
    Raises ``UnconfirmedChangeError``."""

    def seal() -> None:
        svc.cache.seal(tenant.id, tenant.generation)
        if created:
            svc.cache.renew_directory()

    confirm(svc, seal, tenant.id)


def confirm(svc: Services, action: Callable[[], None], tenant_id: str) -> None:
    """Repeat a committed change's cache write, then have every worker that verifies from
    memory drop the tenant's old state (docs/design.md, "Verifying from memory").

    Raises ``UnconfirmedChangeError`` (503) when either cannot be done, since only then is
    the change known to every verifier (and counts it: ``tenantauth_changes_unconfirmed``)."""
    try:
        try:
            action()
        except CacheUnavailableError:
            action()  # once more, on a fresh connection: a dropped one is the common cause
        svc.invalidator.invalidate(tenant_id)
    except CacheUnavailableError as exc:
        svc.telemetry.change_unconfirmed()
        raise UnconfirmedChangeError(
            "The change is committed, but the cache could not confirm it; some verifiers may "
            "still accept what it revoked. Repeat the same request to confirm it."
        ) from exc
    except UnconfirmedChangeError:
        svc.telemetry.change_unconfirmed()
        raise


def require_tenant_id(tenant_id: str) -> None:
    """Raise ``NotFoundError`` for ids that cannot name a tenant, before any lookup."""
    if not is_tenant_id(tenant_id):
        raise NotFoundError("no tenant has that id")


def require_live(tenant: Tenant | None, tenant_id: str) -> Tenant:
    if tenant is None or tenant.status is TenantStatus.DELETED:
        raise NotFoundError(f"tenant {tenant_id!r} does not exist")
    return tenant


def _name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidRequestError(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    if CONTROL_CHARACTERS.search(name):
        raise InvalidRequestError("name must not contain control characters")
    return name


def _ttls(svc: Services, access: int | None, maximum: int | None) -> tuple[int, int]:
    cap = svc.tokens.max_lifetime
    maximum = _given(maximum, cap)
    access = _given(access, min(svc.tokens.default_ttl, maximum))
    if not 1 <= maximum <= cap:
        raise InvalidRequestError(f"max_token_ttl must be between 1 and {cap} seconds")
    if not 1 <= access <= maximum:
        raise InvalidRequestError("access_token_ttl must be between 1 and max_token_ttl")
    return access, maximum


def _given(value: int | None, default: int) -> int:
    """Return value unless it is None (0 is a value, and an invalid one, not a default)."""
    return default if value is None else value
