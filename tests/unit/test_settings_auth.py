"""Settings of issue 3: argon2 parameters, password policy, login limits, refresh tokens."""

from __future__ import annotations

import pytest

from tenantauth.crypto.passwords import PasswordHasher
from tenantauth.domain.limits import LimitPolicy
from tenantauth.errors import ConfigurationError
from tenantauth.settings import Settings
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY_B64

NEW_NAMES = [
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_KIB",
    "ARGON2_PARALLELISM",
    "PASSWORD_MIN_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "LOGIN_MAX_FAILURES",
    "LOGIN_WINDOW",
    "LOGIN_LOCKOUT",
    "REFRESH_TOKEN_TTL",
]


def env(**overrides: str) -> dict[str, str]:
    """Return a complete production environment plus ``TENANTAUTH_<name>`` overrides."""
    values = {
        "TENANTAUTH_DATABASE_URL": "postgresql://user:pass@db.internal/tenantauth",
        "TENANTAUTH_MASTER_KEY": MASTER_KEY_B64,
        "TENANTAUTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "TENANTAUTH_ISSUER": ISSUER,
    }
    values.update({f"TENANTAUTH_{k}": v for k, v in overrides.items()})
    return values


def problems_of(environ: dict[str, str]) -> list[str]:
    """Return the problems Settings.from_env reports for ``environ``."""
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(environ)
    return info.value.problems


def test_defaults() -> None:
    """Unset, the new settings take the documented defaults, equal to the dataclass's."""
    settings = Settings.from_env(env())
    assert (
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        settings.password_min_length,
        settings.password_max_length,
        settings.login_max_failures,
        settings.login_window,
        settings.login_lockout,
        settings.refresh_token_ttl,
        settings.refresh_reuse_grace,
    ) == (3, 65_536, 1, 12, 256, 5, 300, 300, 2_592_000, 10)


def test_values_are_read_from_the_environment() -> None:
    """Each new setting is parsed from its TENANTAUTH_* variable."""
    settings = Settings.from_env(
        env(
            ARGON2_TIME_COST="2",
            ARGON2_MEMORY_KIB="19456",
            ARGON2_PARALLELISM="2",
            PASSWORD_MIN_LENGTH="8",
            PASSWORD_MAX_LENGTH="64",
            LOGIN_MAX_FAILURES="10",
            LOGIN_WINDOW="60",
            LOGIN_LOCKOUT="900",
            REFRESH_TOKEN_TTL="86400",
            REFRESH_REUSE_GRACE="0",
        )
    )
    assert (settings.argon2_time_cost, settings.argon2_memory_kib) == (2, 19_456)
    assert settings.argon2_parallelism == 2
    assert (settings.password_min_length, settings.password_max_length) == (8, 64)
    assert (settings.login_max_failures, settings.login_window, settings.login_lockout) == (
        10,
        60,
        900,
    )
    assert (settings.refresh_token_ttl, settings.refresh_reuse_grace) == (86_400, 0)


@pytest.mark.parametrize("name", NEW_NAMES)
@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_positive_settings_refuse_zero_negative_and_text(name: str, value: str) -> None:
    """Each count or duration must be a positive integer; the problem names the variable."""
    problems = problems_of(env(**{name: value}))
    assert any(p.startswith(f"TENANTAUTH_{name} ") for p in problems), problems


@pytest.mark.parametrize("value", ["-1", "61", "ten"])
def test_reuse_grace_is_zero_to_sixty_seconds(value: str) -> None:
    """REFRESH_REUSE_GRACE must be 0–60 seconds: a long grace would blunt reuse detection."""
    assert any(
        p.startswith("TENANTAUTH_REFRESH_REUSE_GRACE ")
        for p in problems_of(env(REFRESH_REUSE_GRACE=value))
    )


def test_min_length_above_max_length_is_refused() -> None:
    """PASSWORD_MIN_LENGTH greater than PASSWORD_MAX_LENGTH is a problem."""
    assert problems_of(env(PASSWORD_MIN_LENGTH="20", PASSWORD_MAX_LENGTH="19")) == [
        "TENANTAUTH_PASSWORD_MIN_LENGTH must not exceed TENANTAUTH_PASSWORD_MAX_LENGTH"
    ]


def test_argon2_memory_below_eight_kib_per_lane_is_refused() -> None:
    """ARGON2_MEMORY_KIB under 8 × ARGON2_PARALLELISM is refused (RFC 9106 §3.1)."""
    assert problems_of(env(ARGON2_MEMORY_KIB="31", ARGON2_PARALLELISM="4")) == [
        "TENANTAUTH_ARGON2_MEMORY_KIB must be at least 8 × TENANTAUTH_ARGON2_PARALLELISM"
    ]


def test_every_problem_is_reported_at_once() -> None:
    """Bad new settings are listed together with bad old ones."""
    problems = problems_of(
        env(LOGIN_WINDOW="0", REFRESH_REUSE_GRACE="99", CLOCK_LEEWAY="999", PASSWORD_MIN_LENGTH="x")
    )
    assert len(problems) == 4


def test_default_settings_build_the_components() -> None:
    """The defaults are accepted by PasswordHasher and LimitPolicy as they stand."""
    settings = Settings.from_env(env())
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    assert hasher.needs_rehash(PasswordHasher().hash("x" * 12)) is False
    policy = LimitPolicy(settings.login_max_failures, settings.login_window, settings.login_lockout)
    assert policy.threshold("ip:203.0.113.7") == 5


def test_proxy_hops_and_ip_threshold_parse_and_validate() -> None:
    """PROXY_HOPS is a non-negative integer (default 0); LOGIN_IP_MAX_FAILURES defaults higher
    than the per-user limit."""
    settings = Settings.from_env(
        {
            "TENANTAUTH_STATE_DIR": "/nonexistent",
            "TENANTAUTH_MASTER_KEY": MASTER_KEY_B64,
            "TENANTAUTH_ADMIN_TOKEN": "a" * 40,
        }
    )
    assert (settings.proxy_hops, settings.login_ip_max_failures) == (0, 100)
    assert settings.login_ip_max_failures > settings.login_max_failures
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(
            {
                "TENANTAUTH_STATE_DIR": "/nonexistent",
                "TENANTAUTH_MASTER_KEY": MASTER_KEY_B64,
                "TENANTAUTH_ADMIN_TOKEN": "a" * 40,
                "TENANTAUTH_PROXY_HOPS": "-1",
            }
        )
    assert any("PROXY_HOPS" in p for p in caught.value.problems)
