"""Settings.from_env and embedded mode's first-start bootstrap."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from tenantauth import embedded
from tenantauth.errors import ConfigurationError
from tenantauth.settings import MIN_ADMIN_TOKEN_LENGTH, Settings
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY, MASTER_KEY_B64

PG_URL = "postgresql://user:pass@db.internal/tenantauth"


def production(**overrides: str) -> dict[str, str]:
    """Return a complete production environment with ``overrides`` (empty string unsets)."""
    env = {
        "TENANTAUTH_DATABASE_URL": PG_URL,
        "TENANTAUTH_MASTER_KEY": MASTER_KEY_B64,
        "TENANTAUTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "TENANTAUTH_ISSUER": ISSUER,
    }
    env.update({f"TENANTAUTH_{k}": v for k, v in overrides.items()})
    return {k: v for k, v in env.items() if v}


def problems_of(env: dict[str, str]) -> list[str]:
    """Return the problems Settings.from_env reports for ``env``."""
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    return info.value.problems


def mentions(problems: list[str], name: str) -> int:
    """Count the problems that mention setting ``name``."""
    return sum(f"TENANTAUTH_{name}" in p for p in problems)


# --- production mode ----------------------------------------------------------------------


def test_production_settings_parse() -> None:
    """A complete production environment parses, with defaults for the rest."""
    settings = Settings.from_env(production())
    assert not settings.embedded
    assert settings.database_url == PG_URL
    assert settings.master_key == MASTER_KEY
    assert settings.admin_token == ADMIN_TOKEN
    assert settings.issuer == ISSUER
    assert (settings.clock_leeway, settings.access_token_ttl, settings.max_token_ttl) == (
        30,
        900,
        86_400,
    )
    assert settings.auto_migrate is False
    assert settings.redis_url is None


def test_production_missing_secrets_reported_together() -> None:
    """Without MASTER_KEY, ADMIN_TOKEN and ISSUER, all three are reported in one error."""
    problems = problems_of({"TENANTAUTH_DATABASE_URL": PG_URL})
    for name in ("MASTER_KEY", "ADMIN_TOKEN", "ISSUER"):
        assert mentions(problems, name) == 1, problems
    assert len(problems) == 3


def test_production_never_generates_secrets(tmp_path: Path) -> None:
    """Production mode reads no state directory and generates nothing."""
    state = tmp_path / "state"
    problems_of({"TENANTAUTH_DATABASE_URL": PG_URL, "TENANTAUTH_STATE_DIR": str(state)})
    assert not state.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("CLOCK_LEEWAY", "61", id="leeway-61"),
        pytest.param("CLOCK_LEEWAY", "-1", id="leeway-negative"),
        pytest.param("CLOCK_LEEWAY", "ten", id="leeway-text"),
        pytest.param("MASTER_KEY", base64.b64encode(b"k" * 31).decode(), id="master-key-31"),
        pytest.param("MASTER_KEY", base64.b64encode(b"k" * 33).decode(), id="master-key-33"),
        pytest.param("MASTER_KEY", "not base64!", id="master-key-not-base64"),
        pytest.param("ADMIN_TOKEN", "a" * (MIN_ADMIN_TOKEN_LENGTH - 1), id="admin-token-short"),
        pytest.param("ACCESS_TOKEN_TTL", "15m", id="ttl-not-numeric"),
        pytest.param("ACCESS_TOKEN_TTL", "0", id="ttl-zero"),
        pytest.param("MAX_TOKEN_TTL", "-5", id="max-ttl-negative"),
        pytest.param("CACHE_TTL", "soon", id="cache-ttl-text"),
        pytest.param("AUTO_MIGRATE", "maybe", id="auto-migrate"),
    ],
)
def test_bad_value_reported(name: str, value: str) -> None:
    """Each bad value is reported under its variable name."""
    problems = problems_of(production(**{name: value}))
    assert mentions(problems, name) == 1, problems


def test_boundary_values_accepted() -> None:
    """Leeway 0 and 60, a 32-character admin token and equal TTLs are valid."""
    for leeway in ("0", "60"):
        assert Settings.from_env(production(CLOCK_LEEWAY=leeway)).clock_leeway == int(leeway)
    token = "a" * MIN_ADMIN_TOKEN_LENGTH
    assert Settings.from_env(production(ADMIN_TOKEN=token)).admin_token == token
    settings = Settings.from_env(production(ACCESS_TOKEN_TTL="600", MAX_TOKEN_TTL="600"))
    assert settings.access_token_ttl == settings.max_token_ttl == 600


def test_several_bad_values_reported_at_once() -> None:
    """Bad leeway, master key, admin token and TTL are all reported in one error."""
    problems = problems_of(
        production(
            CLOCK_LEEWAY="61",
            MASTER_KEY=base64.b64encode(b"k" * 31).decode(),
            ADMIN_TOKEN="short",
            ACCESS_TOKEN_TTL="abc",
        )
    )
    for name in ("CLOCK_LEEWAY", "MASTER_KEY", "ADMIN_TOKEN", "ACCESS_TOKEN_TTL"):
        assert mentions(problems, name) >= 1, problems
    # A bad secret is reported as bad, not additionally as missing.
    assert not any("required" in p for p in problems), problems


def test_access_ttl_above_max_reported() -> None:
    """ACCESS_TOKEN_TTL greater than MAX_TOKEN_TTL is reported."""
    problems = problems_of(production(ACCESS_TOKEN_TTL="3600", MAX_TOKEN_TTL="600"))
    assert problems == ["TENANTAUTH_ACCESS_TOKEN_TTL must not exceed TENANTAUTH_MAX_TOKEN_TTL"]


def test_secrets_hidden_from_repr() -> None:
    """repr(Settings) shows neither the master key nor the admin token."""
    text = repr(Settings.from_env(production()))
    assert ISSUER in text  # repr does show ordinary settings
    for secret in (ADMIN_TOKEN, MASTER_KEY_B64, repr(MASTER_KEY), MASTER_KEY.hex()):
        assert secret not in text
    assert "master_key" not in text
    assert "admin_token" not in text


# --- embedded mode ------------------------------------------------------------------------


def test_embedded_mode_from_empty_env(tmp_path: Path) -> None:
    """With no TENANTAUTH_* variables, settings are embedded, in $XDG_STATE_HOME/tenantauth."""
    env = {"XDG_STATE_HOME": str(tmp_path)}
    state = tmp_path / "tenantauth"
    made = embedded.ensure_state(state, admin_token_given=False, master_key_given=False)
    assert sorted(made) == ["admin.token", "master.key"]
    settings = Settings.from_env(env)
    assert settings.embedded
    assert settings.state_dir == state
    assert settings.database_url == f"sqlite:///{state / 'tenantauth.db'}"
    assert settings.redis_url is None
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.auto_migrate is True
    assert len(settings.master_key) == 32
    assert settings.admin_token == embedded.read_admin_token(state)


def test_embedded_mode_without_state_reports_missing_files(tmp_path: Path) -> None:
    """Embedded mode before the bootstrap reports both missing secret files."""
    problems = problems_of({"XDG_STATE_HOME": str(tmp_path)})
    assert len(problems) == 2
    assert any("master.key" in p for p in problems)
    assert any("admin.token" in p for p in problems)


def test_embedded_mode_prefers_env_secrets(tmp_path: Path) -> None:
    """Secrets given in the environment win over (and need no) state files."""
    env = {
        "XDG_STATE_HOME": str(tmp_path),
        "TENANTAUTH_MASTER_KEY": MASTER_KEY_B64,
        "TENANTAUTH_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    settings = Settings.from_env(env)
    assert settings.embedded
    assert (settings.master_key, settings.admin_token) == (MASTER_KEY, ADMIN_TOKEN)


def test_embedded_mode_reports_corrupt_key_file(tmp_path: Path) -> None:
    """A master.key file that does not hold 32 base64 bytes is reported with its path."""
    state = tmp_path / "tenantauth"
    embedded.ensure_state(state, admin_token_given=False, master_key_given=False)
    (state / "master.key").write_text(base64.b64encode(b"k" * 31).decode())
    problems = problems_of({"XDG_STATE_HOME": str(tmp_path)})
    assert len(problems) == 1
    assert str(state / "master.key") in problems[0]


def test_ensure_state_modes(tmp_path: Path) -> None:
    """ensure_state creates the directory 0700 and the secret and database files 0600."""
    state = tmp_path / "a" / "tenantauth"
    embedded.ensure_state(state, admin_token_given=False, master_key_given=False)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("master.key", "admin.token", "tenantauth.db"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_ensure_state_tightens_existing_directory(tmp_path: Path) -> None:
    """An existing state directory with loose permissions is set to 0700."""
    state = tmp_path / "tenantauth"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    embedded.ensure_state(state, admin_token_given=False, master_key_given=False)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_ensure_state_generates_valid_secrets(tmp_path: Path) -> None:
    """The generated master key is base64 of 32 bytes; the admin token is long enough."""
    embedded.ensure_state(tmp_path, admin_token_given=False, master_key_given=False)
    key = (tmp_path / "master.key").read_text().strip()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert len(embedded.read_admin_token(tmp_path)) >= MIN_ADMIN_TOKEN_LENGTH


def test_ensure_state_second_call_keeps_files(tmp_path: Path) -> None:
    """A second ensure_state generates nothing and leaves the secrets unchanged."""
    embedded.ensure_state(tmp_path, admin_token_given=False, master_key_given=False)
    before = {n: (tmp_path / n).read_bytes() for n in ("master.key", "admin.token")}
    assert embedded.ensure_state(tmp_path, admin_token_given=False, master_key_given=False) == []
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_ensure_state_writes_no_given_secrets(tmp_path: Path) -> None:
    """Secrets given in the environment are never written to the state directory."""
    made = embedded.ensure_state(tmp_path, admin_token_given=True, master_key_given=True)
    assert made == []
    assert not (tmp_path / "master.key").exists()
    assert not (tmp_path / "admin.token").exists()
    assert (tmp_path / "tenantauth.db").exists()


def test_ensure_state_writes_only_the_missing_one(tmp_path: Path) -> None:
    """With only the admin token given, only master.key is generated."""
    made = embedded.ensure_state(tmp_path, admin_token_given=True, master_key_given=False)
    assert made == ["master.key"]
    assert not (tmp_path / "admin.token").exists()


# --- the role ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["all", "public", "admin", "ADMIN"])
def test_role_is_read_case_insensitively(role: str) -> None:
    """TENANTAUTH_ROLE takes all, public or admin (any case); ``all`` when unset."""
    assert Settings.from_env(production(ROLE=role)).role == role.lower()
    assert Settings.from_env(production()).role == "all"


def test_an_unknown_role_is_refused_naming_the_choices() -> None:
    """A misspelt role is a configuration problem that lists what it may be."""
    (problem,) = problems_of(production(ROLE="verify"))
    assert "TENANTAUTH_ROLE" in problem
    assert "all, public, admin" in problem
