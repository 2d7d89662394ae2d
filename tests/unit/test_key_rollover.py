"""Planned key changes (issue 15): rollover with a grace window, a next key published ahead,
and what rotation still means. Run on the services (SQLite + fakeredis, tests/unit/conftest.py)
with the fixed clock, so every window is crossed by advancing it.
"""

from __future__ import annotations

import pytest

from tenantauth.crypto import jwt
from tenantauth.domain.jwks import tenant_jwks
from tenantauth.domain.key_rollover import (
    MAX_OTHER_KEYS,
    list_keys,
    publish_next,
    retire_expired,
    rollover,
)
from tenantauth.domain.models import KeyState
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import create_tenant, rewrap_tenant, rotate_tenant
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import ConflictError, InvalidRequestError, InvalidTokenError, RejectReason
from tests.support import MASTER_KEY, FixedClock
from tests.unit.test_master_keys import NEW, rekeyed

GRACE = 600


def _issue(svc: Services, tenant_id: str = "acme") -> str:
    return issue_token(
        svc.storage,
        svc.keyring,
        svc.tokens,
        svc.clock,
        TokenRequest(tenant_id, "u1", ttl=2 * GRACE),
    ).access_token


def _refused(svc: Services, token: str) -> RejectReason:
    with pytest.raises(InvalidTokenError) as info:
        svc.verifier.verify(token)
    return info.value.kind


def _published(svc: Services, tenant_id: str = "acme") -> list[str]:
    return [k["kid"] for k in tenant_jwks(svc, tenant_id)["keys"]]


@pytest.mark.parametrize("alg", ["HS256", "EdDSA", "ES256", "RS256"])
def test_rollover_keeps_the_old_key_verifying_until_grace_ends(
    svc: Services, clock: FixedClock, alg: str
) -> None:
    """After a rollover, new tokens carry the new key and old ones verify until the grace
    window closes, by the clock (HS256 too, whose tokens name the tenant alone); key pairs
    publish both keys meanwhile, then only the new one. key_version does not move."""
    before = create_tenant(svc, "acme", "Acme", alg=alg)
    old = _issue(svc)
    change = rollover(svc, "acme", grace=GRACE)
    after = change.tenant
    assert (after.key_version, after.alg) == (before.key_version, alg)
    assert after.key_name != before.key_name
    assert (change.key.name, change.key.state) == (before.key_name, KeyState.RETIRING)
    new = _issue(svc)
    if alg != "HS256":
        assert jwt.parse_compact(new).key_name == after.key_name
        assert _published(svc) == sorted([before.kid, after.kid], key=lambda k: k != after.kid)
    assert svc.verifier.verify(old).subject == "u1"
    assert svc.verifier.verify(new).subject == "u1"
    clock.advance(GRACE - 1)
    svc.verifier.verify(old)
    clock.advance(1)  # at retire_at: gone (no leeway: the bound is the admin's)
    assert _refused(svc, old) in (RejectReason.ROTATED, RejectReason.SIGNATURE)
    svc.verifier.verify(_issue(svc))
    if alg != "HS256":
        assert _published(svc) == [after.kid]


def test_the_default_grace_covers_the_longest_token(svc: Services, clock: FixedClock) -> None:
    """Without grace, the previous key verifies for max_token_ttl plus the leeway: a token of
    the longest lifetime, signed just before the rollover, lives it out."""
    tenant = create_tenant(svc, "acme", "Acme", alg="EdDSA")
    longest = issue_token(
        svc.storage,
        svc.keyring,
        svc.tokens,
        svc.clock,
        TokenRequest("acme", "u1", ttl=tenant.max_token_ttl),
    ).access_token
    change = rollover(svc, "acme")
    assert change.key.at == int(clock.now()) + tenant.max_token_ttl + svc.tokens.leeway
    clock.advance(tenant.max_token_ttl - 1)
    assert svc.verifier.verify(longest).subject == "u1"


def test_a_published_next_key_is_in_the_jwks_at_once_and_promoted_when_due(
    svc: Services, clock: FixedClock
) -> None:
    """publish_next: the key is in the JWKS before it signs; a rollover refuses to promote
    it early, then promotes exactly it (and refuses a new key beside it)."""
    create_tenant(svc, "acme", "Acme", alg="ES256")
    published = publish_next(svc, "acme", ahead=300)
    kid = f"acme.{published.key.name}"
    assert kid in _published(svc)
    assert _issue(svc).count(published.key.name) == 0  # still signed with the current key
    with pytest.raises(ConflictError, match="signs from"):
        rollover(svc, "acme")
    with pytest.raises(ConflictError, match="next key"):
        publish_next(svc, "acme", ahead=10)
    clock.advance(300)
    with pytest.raises(ConflictError, match="promotes it"):
        rollover(svc, "acme", alg="EdDSA")
    promoted = rollover(svc, "acme", grace=GRACE).tenant
    assert promoted.kid == kid
    assert jwt.parse_compact(_issue(svc)).key_name == published.key.name


def test_rotation_after_a_rollover_revokes_every_key(svc: Services) -> None:
    """rotate removes the retiring and next keys too: every token of the tenant dies, the
    JWKS holds the new key only."""
    create_tenant(svc, "acme", "Acme", alg="EdDSA")
    first = _issue(svc)
    rollover(svc, "acme", grace=GRACE)
    second = _issue(svc)
    publish_next(svc, "acme", ahead=300)
    rotated = rotate_tenant(svc, "acme")
    assert rotated.others == ()
    for token in (first, second):
        assert _refused(svc, token) is RejectReason.ROTATED
    assert _published(svc) == [rotated.kid]


def test_keys_are_bounded_and_expired_ones_retire(svc: Services, clock: FixedClock) -> None:
    """At most MAX_OTHER_KEYS besides the signing key (409 beyond, naming when one
    retires); retire_expired drops the closed windows, and a later change drops them too."""
    create_tenant(svc, "acme", "Acme")
    for _ in range(MAX_OTHER_KEYS):
        rollover(svc, "acme", grace=GRACE)
    with pytest.raises(ConflictError, match="retires at"):
        rollover(svc, "acme", grace=GRACE)
    assert len(list_keys(svc, "acme")[1]) == MAX_OTHER_KEYS + 1
    assert retire_expired(svc, "acme", int(clock.now())) == 0
    clock.advance(GRACE)
    assert [v.state for v in list_keys(svc, "acme")[1]] == ["current"]
    assert retire_expired(svc, "acme", int(clock.now())) == MAX_OTHER_KEYS
    rollover(svc, "acme", grace=GRACE)


@pytest.mark.parametrize(("grace", "ahead"), [(-1, None), (366 * 86_400 + 1, None), (None, -1)])
def test_windows_out_of_bounds_are_refused(
    svc: Services, grace: int | None, ahead: int | None
) -> None:
    """grace and ahead are 0 to a year of seconds."""
    create_tenant(svc, "acme", "Acme")
    with pytest.raises(InvalidRequestError):
        if ahead is None:
            rollover(svc, "acme", grace=grace)
        else:
            publish_next(svc, "acme", ahead=ahead)


def test_master_key_rewrap_reseals_every_key(svc: Services) -> None:
    """rewrap re-seals the retiring and next keys as well as the signing key: tokens of all
    of them still verify under the new master key alone."""
    create_tenant(svc, "acme", "Acme", alg="ES256")
    old = _issue(svc)
    rollover(svc, "acme", grace=GRACE)
    publish_next(svc, "acme", ahead=300)
    moved = rekeyed(svc, NEW, MASTER_KEY)
    assert rewrap_tenant(moved, "acme")
    tenant = list_keys(moved, "acme")[0]
    ids = {tenant.sealed_secret.key_id, *(k.sealed.key_id for k in tenant.others)}  # type: ignore[union-attr]
    assert ids == {moved.keyring.current_id}
    assert moved.verifier.verify(old).subject == "u1"
