"""Scheduled rollover (issue 15): policies and ``roll_due``, on the services (SQLite +
fakeredis) with the fixed clock. The schedule publishes a next key ``publish_ahead`` before
the signing key turns ``every`` old, rolls over to it then, and tidies expired keys; running
it again, or from two places at once, does each step once."""

from __future__ import annotations

import threading

import pytest

from tenantauth.domain.jwks import tenant_jwks
from tenantauth.domain.key_rollover import list_keys
from tenantauth.domain.key_schedule import (
    MIN_EVERY,
    clear_policy,
    get_policy,
    roll_due,
    set_policy,
)
from tenantauth.domain.models import KeyPolicy, TenantStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import TenantChanges, create_tenant, delete_tenant, update_tenant
from tenantauth.errors import InvalidRequestError, NotFoundError
from tests.support import FixedClock

DAY = 86_400
AHEAD = 3_600


def _actions(svc: Services) -> list[tuple[str, str]]:
    return [(s.tenant_id, s.action) for s in roll_due(svc).steps]


def _states(svc: Services, tenant_id: str = "acme") -> list[str]:
    return [v.state for v in list_keys(svc, tenant_id)[1]]


def test_a_policy_publishes_ahead_then_rolls_over_then_tidies(
    svc: Services, clock: FixedClock
) -> None:
    """Nothing until every − ahead; then a next key (in the JWKS at once); at every, the
    rollover to it (old tokens keep verifying for the grace); after the grace, the old key
    is dropped; and the cycle starts again from the rollover."""
    create_tenant(svc, "acme", "Acme", alg="EdDSA")
    set_policy(svc, KeyPolicy("acme", DAY, AHEAD, grace=600))
    assert _actions(svc) == []
    clock.advance(DAY - AHEAD - 1)
    assert _actions(svc) == []
    clock.advance(1)
    assert _actions(svc) == [("acme", "published")]
    assert _states(svc) == ["current", "next"]
    assert len(tenant_jwks(svc, "acme")["keys"]) == 2
    assert _actions(svc) == []  # published already: nothing due until it may sign
    clock.advance(AHEAD)
    assert _actions(svc) == [("acme", "rolled")]
    assert _states(svc) == ["current", "retiring"]
    clock.advance(600)
    assert _actions(svc) == [("acme", "retired")]
    assert _states(svc) == ["current"]
    clock.advance(DAY - AHEAD - 600)
    assert _actions(svc) == [("acme", "published")]


def test_a_late_run_still_gives_offline_verifiers_publish_ahead(
    svc: Services, clock: FixedClock
) -> None:
    """A job that runs after the rollover was due publishes the next key signing
    publish_ahead from now, not at once: verifiers caching the JWKS still get their lead."""
    create_tenant(svc, "acme", "Acme", alg="ES256")
    set_policy(svc, KeyPolicy("acme", DAY, AHEAD))
    clock.advance(2 * DAY)
    assert _actions(svc) == [("acme", "published")]
    clock.advance(AHEAD - 1)
    assert _actions(svc) == []
    clock.advance(1)
    assert _actions(svc) == [("acme", "rolled")]


def test_two_runs_at_once_do_each_step_once(svc: Services, clock: FixedClock) -> None:
    """Runs in two threads (two replicas' jobs) over the same due tenants: one publishes and
    the other finds it done (or has nothing due); then one rolls over, never both."""
    for n in range(6):
        create_tenant(svc, f"t{n}", "T")
        set_policy(svc, KeyPolicy(f"t{n}", DAY, AHEAD))
    clock.advance(DAY - AHEAD)
    for expected in ("published", "rolled"):
        found: list[tuple[str, str]] = []
        threads = [
            threading.Thread(target=lambda into=found: into.extend(_actions(svc))) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = sorted(t for t, action in found if action == expected)
        assert done == [f"t{n}" for n in range(6)], found
        assert {a for _, a in found} <= {expected, "done-elsewhere"}
        clock.advance(AHEAD)
    assert all(len(list_keys(svc, f"t{n}")[1]) == 2 for n in range(6))  # one rollover each


def test_suspended_tenants_wait_and_deleted_ones_lose_their_policy(
    svc: Services, clock: FixedClock
) -> None:
    """A suspended tenant signs nothing, so nothing is published for it; a deleted one's
    policy goes with it (a re-created tenant starts unscheduled)."""
    create_tenant(svc, "acme", "Acme")
    set_policy(svc, KeyPolicy("acme", DAY, AHEAD))
    update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    clock.advance(DAY)
    assert _actions(svc) == []
    delete_tenant(svc, "acme")
    create_tenant(svc, "acme", "Acme")
    assert get_policy(svc, "acme") is None


@pytest.mark.parametrize(
    ("every", "ahead", "grace"),
    [(MIN_EVERY - 1, 0, None), (DAY, DAY, None), (DAY, -1, None), (DAY, 0, -1)],
)
def test_policies_out_of_bounds_are_refused(
    svc: Services, every: int, ahead: int, grace: int | None
) -> None:
    """every ≥ a day, 0 ≤ publish_ahead < every, grace within a year."""
    create_tenant(svc, "acme", "Acme")
    with pytest.raises(InvalidRequestError):
        set_policy(svc, KeyPolicy("acme", every, ahead, grace))


def test_policy_of_unknown_tenant_is_not_found_and_clear_says_whether(svc: Services) -> None:
    """set/get/clear need a live tenant; clear returns whether there was a policy."""
    with pytest.raises(NotFoundError):
        set_policy(svc, KeyPolicy("ghost", DAY, 0))
    create_tenant(svc, "acme", "Acme")
    assert clear_policy(svc, "acme") is False
    set_policy(svc, KeyPolicy("acme", DAY, 0))
    assert clear_policy(svc, "acme") is True
    assert get_policy(svc, "acme") is None
