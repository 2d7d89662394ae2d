"""Planned key changes (issue 15): a rollover with a grace window, and a next key published
ahead of it (docs/design.md, "The states of a key, and why each transition is safe").

- ``rollover``: the tenant signs with a new key from now on; its previous signing key keeps
  verifying — on tenantauth's endpoints and in the JWKS — until ``now + grace`` (by default the
  tenant's longest token lifetime plus the verifier's leeway, so every token it signed lives
  out its lifetime), then the clock retires it. A published next key is what it promotes
  (offline verifiers already hold it); without one it makes a key, as ``create_tenant`` does.
- ``publish_next``: a next key, in the JWKS at once, that a rollover promotes once ``ahead``
  seconds have passed, so verifiers that cache the JWKS hold it before it signs.
- ``retire_expired``: removes retiring keys whose window has closed (tidying only: the
  verifier refuses them by the clock already).

Each runs under the fence protocol like every change (``tenants.apply_change``): when it
returns, every verifier of this service holds the new key set. None raises ``key_version``:
no token is revoked (``rotate`` is the call that revokes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tenantauth.crypto.jwt import ALGORITHM, header_kid
from tenantauth.domain.models import KeyState, Tenant, TenantKey
from tenantauth.domain.services import Services
from tenantauth.domain.signing_keys import NewKey, new_key
from tenantauth.domain.tenants import (
    apply_change,
    key_names,
    require_live,
    require_tenant_id,
    with_key,
)
from tenantauth.errors import ConflictError, InvalidRequestError


class KeyRaceError(ConflictError):
    """The tenant's keys changed between the decision and the change (another admin, or
    another replica running the schedule): a 409 to callers, "done elsewhere" to the
    schedule."""


#: At most this many keys besides the signing key (one next, the rest retiring): each is a
#: signature a bare-kid HS256 token may be tried against, and a JWK every verifier holds.
MAX_OTHER_KEYS = 4
#: Bounds of ``grace`` and ``ahead`` (seconds): a year is more than any token lives.
MAX_WINDOW = 366 * 86_400


@dataclass(frozen=True, slots=True)
class KeyChange:
    """The tenant after a planned change, and the key it concerns: the key that retires
    (rollover) or the one published (publish_next), with the moment it does so."""

    tenant: Tenant
    key: TenantKey


def rollover(
    svc: Services,
    tenant_id: str,
    *,
    grace: int | None = None,
    alg: str | None = None,
    secret: str | None = None,
    private_key: str | None = None,
    promote: str | None = None,
) -> KeyChange:
    """Sign with a new key from now on; the previous one verifies until ``now + grace``.

    The new key is the published next key if there is one (then ``alg``, ``secret`` and
    ``private_key`` must be absent), else one made as ``create_tenant`` makes it. With
    ``promote`` (a key name), only that next key is promoted: a ``ConflictError`` if it is
    not the tenant's next key any more (the schedule's guard against rolling twice).
    Returns the tenant and the retiring key. Raises ``NotFoundError``;
    ``InvalidRequestError`` for a grace out of bounds or a bad key; ``ConflictError`` when
    the next key may not sign yet, a new key is given beside a published next key, or the
    tenant holds too many keys; ``DependencyUnavailableError`` (nothing changed).
    """
    _check_window("grace", grace)
    live = _live(svc, tenant_id)
    planned = _next_of(live)
    given = alg is not None or secret is not None or private_key is not None
    if planned is not None and given:
        raise ConflictError(
            f"key {live.id}.{planned.name} is published as the next key: a rollover promotes "
            "it; give no new key (or rotate, which replaces every key)"
        )
    made = None if planned is not None or promote else _made(live, alg, secret, private_key)
    retired: list[TenantKey] = []

    def build(current: Tenant | None, now: datetime) -> Tenant:
        tenant = require_live(current, tenant_id)
        stamp = int(now.timestamp())
        window = grace if grace is not None else tenant.max_token_ttl + svc.tokens.leeway
        previous = _as_other(tenant, KeyState.RETIRING, stamp + window)
        promoted = _next_of(tenant)
        if promote is not None and (promoted is None or promoted.name != promote):
            raise KeyRaceError(f"key {promote} is not the next key of {tenant_id!r} (any more)")
        if (promoted is None) != (made is not None):  # the next key came or went since
            raise KeyRaceError("the tenant's keys changed during the rollover; try again")
        kept = [k for k in tenant.others if k is not promoted and k.verifies_at(stamp)]
        _check_room(tenant, kept)
        if promoted is not None:
            if stamp < promoted.at:
                raise ConflictError(
                    f"the next key {tenant.id}.{promoted.name} signs from "
                    f"{datetime.fromtimestamp(promoted.at, now.tzinfo).isoformat()}: "
                    "offline verifiers may not hold it before then"
                )
            signing = replace(
                tenant, alg=promoted.alg, key_name=promoted.name, sealed_secret=promoted.sealed
            )
        else:
            assert made is not None  # noqa: S101 - the check above
            if made.name in key_names(tenant):
                raise KeyRaceError("the tenant's keys changed during the rollover; try again")
            signing = with_key(svc, tenant, made)
        retired.append(previous)
        others = tuple(sorted([*kept, previous], key=lambda k: k.name))
        return replace(signing, others=others, rotated_at=now, updated_at=now)

    tenant = apply_change(svc, tenant_id, build)
    return KeyChange(tenant, retired[-1])


def publish_next(
    svc: Services,
    tenant_id: str,
    *,
    ahead: int,
    alg: str | None = None,
    secret: str | None = None,
    private_key: str | None = None,
) -> KeyChange:
    """Publish a next key (made as ``create_tenant`` makes one; default: the tenant's
    algorithm) that a rollover may promote ``ahead`` seconds from now.

    Returns the tenant and the published key. Raises ``NotFoundError``;
    ``InvalidRequestError`` for ``ahead`` out of bounds or a bad key; ``ConflictError`` if a
    next key is published already or the tenant holds too many keys;
    ``DependencyUnavailableError`` (nothing changed).
    """
    _check_window("ahead", ahead)
    live = _live(svc, tenant_id)
    if _next_of(live) is not None:
        raise KeyRaceError("a next key is published already: roll over to it first")
    made = _made(live, alg, secret, private_key)
    published: list[TenantKey] = []

    def build(current: Tenant | None, now: datetime) -> Tenant:
        tenant = require_live(current, tenant_id)
        if _next_of(tenant) is not None or made.name in key_names(tenant):
            raise KeyRaceError("the tenant's keys changed meanwhile; try again")
        stamp = int(now.timestamp())
        kept = [k for k in tenant.others if k.verifies_at(stamp)]
        _check_room(tenant, kept)
        sealed = with_key(svc, tenant, made).sealed_secret
        assert sealed is not None  # noqa: S101 - with_key seals it
        key = TenantKey(made.name, made.alg, sealed, KeyState.NEXT, stamp + ahead)
        published.append(key)
        return replace(tenant, others=tuple(sorted([*kept, key], key=lambda k: k.name)))

    tenant = apply_change(svc, tenant_id, build)
    return KeyChange(tenant, published[-1])


def retire_expired(svc: Services, tenant_id: str, now: int) -> int:
    """Remove the tenant's retiring keys whose window closed at or before ``now``; return
    how many (0: nothing changed, no fence taken). Raises ``NotFoundError``,
    ``DependencyUnavailableError``."""
    live = _live(svc, tenant_id)
    if all(k.verifies_at(now) for k in live.others):
        return 0
    removed: list[int] = []

    def build(current: Tenant | None, when: datetime) -> Tenant:
        tenant = require_live(current, tenant_id)
        kept = tuple(k for k in tenant.others if k.verifies_at(int(when.timestamp())))
        removed.append(len(tenant.others) - len(kept))
        return replace(tenant, others=kept, updated_at=when)

    apply_change(svc, tenant_id, build)
    return removed[-1]


@dataclass(frozen=True, slots=True)
class KeyView:
    """One of a tenant's keys as admins see it (never its material)."""

    kid: str
    alg: str
    state: str  # "current", or a KeyState value
    signs_from: datetime | None
    verifies_until: datetime | None
    published: bool  # in the JWKS: a key pair's key that verifies


def key_views(tenant: Tenant, now: float) -> list[KeyView]:
    """The tenant's keys that verify at ``now``: the signing key first, then by name."""
    views = [KeyView(tenant.kid, tenant.alg, "current", None, None, tenant.alg != ALGORITHM)]
    for key in tenant.others:
        if key.verifies_at(now):
            moment = datetime.fromtimestamp(key.at, UTC)
            nxt = key.state is KeyState.NEXT
            views.append(
                KeyView(
                    header_kid(tenant.id, key.name, key.alg),
                    key.alg,
                    key.state.value,
                    moment if nxt else None,
                    None if nxt else moment,
                    key.alg != ALGORITHM,
                )
            )
    return views


def list_keys(svc: Services, tenant_id: str) -> tuple[Tenant, list[KeyView]]:
    """The live tenant and its keys (``key_views`` now). Raises ``NotFoundError``,
    ``DependencyUnavailableError``."""
    tenant = _live(svc, tenant_id)
    return tenant, key_views(tenant, svc.clock.now())


def _live(svc: Services, tenant_id: str) -> Tenant:
    require_tenant_id(tenant_id)
    with svc.storage.transaction() as tx:
        return require_live(tx.get_tenant(tenant_id), tenant_id)


def _next_of(tenant: Tenant) -> TenantKey | None:
    return next((k for k in tenant.others if k.state is KeyState.NEXT), None)


def _made(tenant: Tenant, alg: str | None, secret: str | None, private_key: str | None) -> NewKey:
    """A new key for ``tenant`` (its algorithm by default), named unlike any of its keys."""
    return new_key(
        alg, secret=secret, private_key=private_key, default_alg=tenant.alg, avoid=key_names(tenant)
    )


def _as_other(tenant: Tenant, state: KeyState, at: int) -> TenantKey:
    """The tenant's signing key as one of its other keys."""
    assert tenant.sealed_secret is not None  # noqa: S101 - live tenants always have one
    return TenantKey(tenant.key_name, tenant.alg, tenant.sealed_secret, state, at)


def _check_room(tenant: Tenant, kept: list[TenantKey]) -> None:
    if len(kept) + 1 > MAX_OTHER_KEYS:
        until = min(k.at for k in kept if k.state is KeyState.RETIRING)
        raise ConflictError(
            f"tenant {tenant.id!r} holds {MAX_OTHER_KEYS} keys besides its signing key; one "
            f"retires at {datetime.fromtimestamp(until, UTC).isoformat()} (or rotate)"
        )


def _check_window(name: str, seconds: int | None) -> None:
    if seconds is not None and not 0 <= seconds <= MAX_WINDOW:
        raise InvalidRequestError(f"{name} must be between 0 and {MAX_WINDOW} seconds")
