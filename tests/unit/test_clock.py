"""SteadyWallClock (issue 4, scenario 12): wall-clock time that never goes backwards, and the
verifier's time checks at the boundaries the strict suite does not already pin down.

Already covered in test_jwt_strict.py (leeway 30, integer clock): exp at ``now - leeway``
rejected and one second later accepted; nbf/iat at ``now + leeway`` accepted and one second
beyond rejected; expiry following an advancing clock. Added here: a fractional clock (the
verifier truncates ``now``), leeway 0, and a wall clock stepping backwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantauth.bootstrap import build_services
from tenantauth.domain.clock import SteadyWallClock
from tenantauth.domain.policy import TokenPolicy
from tenantauth.domain.ports import Clock
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenVerifier
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.errors import InvalidTokenError
from tests.support import ISSUER, NOW, Backend, FixedClock, make_settings
from tests.unit.helpers import DROP, LEEWAY, MAX_LIFETIME, claims, forge

T = int(NOW)


@dataclass
class FakeTime:
    """A wall clock and a monotonic clock that tests move by hand."""

    wall: float = NOW
    mono: float = 1000.0

    def elapse(self, seconds: float) -> None:
        """Real time passes: both clocks advance."""
        self.wall += seconds
        self.mono += seconds

    def step_wall(self, seconds: float) -> None:
        """Only the wall clock jumps (NTP step, operator, VM snapshot restore)."""
        self.wall += seconds


@pytest.fixture
def fake() -> FakeTime:
    """Hand-moved wall and monotonic clocks."""
    return FakeTime()


@pytest.fixture
def steady(fake: FakeTime) -> SteadyWallClock:
    """A SteadyWallClock reading ``fake``."""
    return SteadyWallClock(wall=lambda: fake.wall, monotonic=lambda: fake.mono)


# --- the clock ------------------------------------------------------------------------------


def test_follows_the_wall_clock(fake: FakeTime, steady: SteadyWallClock) -> None:
    """Without steps, now() is exactly the wall clock."""
    assert steady.now() == NOW
    fake.elapse(12.5)
    assert steady.now() == NOW + 12.5


def test_backward_step_never_decreases_and_keeps_counting(
    fake: FakeTime, steady: SteadyWallClock
) -> None:
    """After the wall clock steps back an hour, now() continues from where it was, at the
    monotonic rate, instead of going back (or freezing)."""
    steady.now()
    fake.elapse(10)
    assert steady.now() == NOW + 10
    fake.step_wall(-3600)
    assert steady.now() == NOW + 10
    fake.elapse(5)
    assert steady.now() == NOW + 15


def test_rejoins_the_wall_clock_once_it_catches_up(fake: FakeTime, steady: SteadyWallClock) -> None:
    """A backward step followed by a forward correction: the wall clock is followed again as
    soon as it is ahead of the steady value."""
    steady.now()
    fake.step_wall(-60)
    fake.elapse(1)
    assert steady.now() == NOW + 1
    fake.step_wall(120)  # wall = NOW + 61
    assert steady.now() == NOW + 61
    fake.elapse(1)
    assert steady.now() == NOW + 62


def test_forward_step_is_followed_at_once(fake: FakeTime, steady: SteadyWallClock) -> None:
    """A forward step is real time being corrected: it is followed immediately."""
    steady.now()
    fake.step_wall(7200)
    assert steady.now() == NOW + 7200


def test_no_drift_from_many_small_reads_while_behind(
    fake: FakeTime, steady: SteadyWallClock
) -> None:
    """While the wall clock is behind, values come from one anchor, not a running sum: after
    100 000 reads 1 ms apart the value is exact to the microsecond."""
    steady.now()
    fake.step_wall(-3600)
    for _ in range(100_000):
        fake.elapse(0.001)
        steady.now()
    assert steady.now() == pytest.approx(NOW + 100.0, abs=1e-6)


def test_never_decreases_across_threads() -> None:
    """Eight threads read while another steps the wall clock back and forth: every thread
    sees a non-decreasing sequence."""
    wall = [NOW]
    clock = SteadyWallClock(wall=lambda: wall[0])
    stop = threading.Event()
    broken: list[tuple[float, float]] = []

    def read() -> None:
        last = float("-inf")
        while not stop.is_set():
            value = clock.now()
            if value < last:
                broken.append((last, value))
            last = value

    readers = [threading.Thread(target=read) for _ in range(8)]
    for thread in readers:
        thread.start()
    for i in range(20_000):
        wall[0] = NOW + (-5 if i % 2 else 5) * (i % 7)
    stop.set()
    for thread in readers:
        thread.join(10)
    assert broken == []


def test_default_reads_the_real_clocks() -> None:
    """Without fakes it reads time.time (within a second of it)."""
    assert abs(SteadyWallClock().now() - time.time()) < 1.0


# --- the verifier with a clock stepping back ------------------------------------------------


def _verifier(svc: Services, clock: Clock, leeway: int = LEEWAY) -> TokenVerifier:
    """A verifier over ``svc``'s storage and cache, with its own clock and leeway."""
    tokens = TokenPolicy(
        issuer=ISSUER, default_audience="tenantauth", max_lifetime=MAX_LIFETIME, leeway=leeway
    )
    keys = KeyResolver(svc.storage, svc.cache, svc.keyring, svc.caching, clock=clock)
    return TokenVerifier(keys, tokens, clock)


class WallOnly:
    """What the service used before: time.time() as is (the control for the test below)."""

    def __init__(self, fake: FakeTime) -> None:
        """Read ``fake.wall``."""
        self.fake = fake

    def now(self) -> float:
        """Return the fake wall clock, steps and all."""
        return self.fake.wall


@pytest.mark.usefixtures("acme")
def test_wall_step_back_cannot_revive_an_expired_token(
    svc: Services, fake: FakeTime, steady: SteadyWallClock
) -> None:
    """A token expired beyond the leeway stays rejected after the wall clock steps back an
    hour; the same step makes a plain wall clock accept it again (so the test can fail)."""
    # Issued well before the step, so that after it only exp (not iat) is in question.
    token = forge(payload=claims(exp=T + 900, iat=T - 7200, nbf=DROP))
    steady_verifier, wall_verifier = _verifier(svc, steady), _verifier(svc, WallOnly(fake))
    steady_verifier.verify(token)
    fake.elapse(900 + LEEWAY)  # now = exp + leeway: expired
    for verifier in (steady_verifier, wall_verifier):
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)
    fake.step_wall(-3600)
    with pytest.raises(InvalidTokenError):
        steady_verifier.verify(token)
    assert wall_verifier.verify(token).subject == "user-1"  # revived: what the clock prevents


# --- boundaries not covered elsewhere -------------------------------------------------------


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-0.001, True), (0.0, False), (0.999, False)],
    ids=["just-before", "exactly", "within-the-second-after"],
)
def test_exp_boundary_with_a_fractional_clock(svc: Services, offset: float, ok: bool) -> None:
    """RFC 7519 §4.1.4 with leeway: valid strictly before exp + leeway, to the millisecond;
    the verifier's truncation of ``now`` never extends a token's life."""
    exp = T + 900
    clock = FixedClock(exp + LEEWAY + offset)
    token = forge(payload=claims(exp=exp, iat=T, nbf=DROP))
    _assert_verdict(_verifier(svc, clock), token, ok)


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize(
    ("offset", "ok"),
    [(0.0, True), (-0.001, False), (-1.0, False)],
    ids=["exactly", "a-millisecond-early", "a-second-early"],
)
def test_future_start_boundary_with_a_fractional_clock(
    svc: Services, name: str, offset: float, ok: bool
) -> None:
    """RFC 7519 §4.1.5/§4.1.6 with leeway: nbf/iat up to now + leeway are accepted; with now a
    millisecond short of ``start - leeway`` the token is rejected (truncation is conservative)."""
    start = T + 100
    clock = FixedClock(start - LEEWAY + offset)
    times = {"iat": T, "nbf": T, "exp": start + 900, name: start}
    _assert_verdict(_verifier(svc, clock), forge(payload=claims(**times)), ok)


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize(
    ("times", "ok"),
    [
        ({"exp": T + 1}, True),
        ({"exp": T}, False),
        ({"nbf": T}, True),
        ({"nbf": T + 1}, False),
        ({"iat": T}, True),
        ({"iat": T + 1, "nbf": DROP}, False),
    ],
    ids=["exp-next-second", "exp-now", "nbf-now", "nbf-next-second", "iat-now", "iat-next"],
)
def test_boundaries_with_zero_leeway(svc: Services, times: dict[str, int], ok: bool) -> None:
    """Leeway 0 (the strictest setting): exp must be after now, nbf and iat not after now."""
    base = {"iat": T - 10, "nbf": T - 10, "exp": T + 900}
    token = forge(payload=claims(**{**base, **times}))
    _assert_verdict(_verifier(svc, FixedClock(float(T)), leeway=0), token, ok)


def _assert_verdict(verifier: TokenVerifier, token: str, ok: bool) -> None:
    if ok:
        verifier.verify(token)
    else:
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)


def test_clock_module_is_the_app_default(tmp_path: Path) -> None:
    """create_app/build_services wire SteadyWallClock when no clock is passed."""
    settings = make_settings(Backend("sqlite", f"sqlite:///{tmp_path / 'c.db'}", None), tmp_path)
    services = build_services(settings)
    try:
        assert isinstance(services.clock, SteadyWallClock)
    finally:
        services.close()
