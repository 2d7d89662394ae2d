"""docker-compose.yml and .env.example: what a new user copies must work as written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tenantauth.errors import ConfigurationError
from tenantauth.settings import PREFIX, SETTINGS, Settings
from tests.deploy.tools import ROOT, TIMEOUT, run, tool

#: What a fresh checkout gives `docker compose`: the compose file and what it builds from.
COMPOSE_FILES = ("docker-compose.yml", ".env.example", "Dockerfile")
#: Compose resolves ${VAR} from the shell first: a clean environment stands for a new user's.
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
#: The one-shot services: they exit when done, so they have no healthcheck and never restart.
ONE_SHOTS = {"migrate", "key-rollover"}


def fresh_copy(tmp_path: Path, with_env: bool) -> Path:
    """Return a directory holding the compose files, with .env copied from .env.example."""
    for name in COMPOSE_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    if with_env:
        shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


def env_example() -> dict[str, str]:
    """Return the uncommented NAME=value lines of .env.example."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE)
    return dict(pairs)


def compose_model(tmp_path: Path, profile: str | None = None) -> dict[str, Any]:
    """Return the resolved compose model (`docker-compose config --format json`), of the
    services `docker compose up` starts, or with ``profile`` enabled too ("*": every one)."""
    cwd = fresh_copy(tmp_path, with_env=True)
    profiles = ["--profile", profile] if profile else []
    out = run([tool("docker-compose"), *profiles, "config", "--format", "json"], cwd, CLEAN_ENV)
    model: dict[str, Any] = json.loads(out)
    return model


def test_compose_config_passes_with_env_example(tmp_path: Path) -> None:
    """`docker-compose config -q` passes on a fresh copy with .env.example copied to .env."""
    cwd = fresh_copy(tmp_path, with_env=True)
    run([tool("docker-compose"), "config", "-q"], cwd, CLEAN_ENV)


def test_compose_without_env_names_the_fix(tmp_path: Path) -> None:
    """Without .env, compose refuses and says which key to set, where, and how to make one."""
    cwd = fresh_copy(tmp_path, with_env=False)
    done = subprocess.run(
        [str(tool("docker-compose")), "config", "-q"],
        cwd=cwd,
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode != 0
    assert "TENANTAUTH_MASTER_KEY in .env (cp .env.example .env" in done.stderr
    assert "openssl rand -base64 32" in done.stderr


def test_env_example_sets_every_compose_variable() -> None:
    """Every ${VAR} docker-compose.yml reads has an uncommented line in .env.example."""
    lines = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines()
    compose = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", compose))
    assert used, "docker-compose.yml reads no variables? the regex is broken"
    assert used <= set(env_example()), f"undocumented: {sorted(used - set(env_example()))}"


def test_env_example_names_only_real_settings() -> None:
    """Every TENANTAUTH_* name in .env.example (commented or not) is a setting tenantauth reads."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?(TENANTAUTH_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    real = {PREFIX + s.name for s in SETTINGS}
    assert named - real == set(), f"not tenantauth settings: {sorted(named - real)}"


def test_env_example_placeholders_are_refused_at_start() -> None:
    """The CHANGE-ME master key and admin token are refused by tenantauth's settings check."""
    env = {k: v for k, v in env_example().items() if k.startswith(PREFIX)}
    env[PREFIX + "DATABASE_URL"] = "postgresql://tenantauth@postgres:5432/tenantauth"
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(env)
    assert "TENANTAUTH_MASTER_KEY must be base64" in str(refused.value)
    assert "TENANTAUTH_ADMIN_TOKEN must be at least 32 characters" in str(refused.value)


def test_redis_is_configured_as_the_design_requires(tmp_path: Path) -> None:
    """Redis runs with maxmemory-policy noeviction and no persistence (docs/design.md)."""
    command = compose_model(tmp_path)["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"


def test_api_waits_for_a_successful_migration(tmp_path: Path) -> None:
    """The API starts after the one-shot migrate service exited 0, and migrate never restarts."""
    services = compose_model(tmp_path)["services"]
    assert services["migrate"]["command"] == ["tenantauth", "migrate"]
    assert services["migrate"]["restart"] == "no"
    waits = services["tenantauth"]["depends_on"]
    assert waits["migrate"]["condition"] == "service_completed_successfully"
    assert waits["postgres"]["condition"] == "service_healthy"
    assert waits["redis"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck(tmp_path: Path) -> None:
    """Every service of every profile but the one-shots has a healthcheck that is not disabled;
    the one-shots never restart."""
    services = compose_model(tmp_path, "*")["services"]
    assert set(services) >= ONE_SHOTS
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", f"{name} restarts"
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert not service["healthcheck"].get("disable"), f"{name} disables its healthcheck"


def test_metrics_port_is_published_on_the_host_loopback_only(tmp_path: Path) -> None:
    """The API's container port 9464 (/metrics) is published on 127.0.0.1 only, the API port
    8000 as before; no other container port is published."""
    ports = compose_model(tmp_path)["services"]["tenantauth"]["ports"]
    by_target = {p["target"]: p for p in ports}
    assert set(by_target) == {8000, 9464}
    assert by_target[9464]["host_ip"] == "127.0.0.1"
    assert by_target[9464]["published"] == "9464"


def test_key_rollover_is_a_one_shot_like_migrate(tmp_path: Path) -> None:
    """The key-rollover service runs exactly `tenantauth keys roll-due` with migrate's image,
    build and environment, once migrate exited 0 and PostgreSQL and Redis are healthy, and
    never restarts."""
    services = compose_model(tmp_path, "cron")["services"]
    rollover, migrate = services["key-rollover"], services["migrate"]
    assert rollover["command"] == ["tenantauth", "keys", "roll-due"]
    assert rollover["restart"] == "no"
    for key in ("image", "build", "environment", "entrypoint"):
        assert rollover.get(key) == migrate.get(key), f"{key} differs from migrate's"
    waits = rollover["depends_on"]
    assert waits["migrate"]["condition"] == "service_completed_successfully"
    assert waits["postgres"]["condition"] == "service_healthy"
    assert waits["redis"]["condition"] == "service_healthy"
    assert not rollover.get("ports"), "a one-shot publishes no port"


def test_compose_up_leaves_key_rollover_out(tmp_path: Path) -> None:
    """`docker compose up` does not start key-rollover (profile `cron`: a crontab runs it with
    `docker compose run --rm`, which enables it by naming it); the API does not wait for it."""
    default = compose_model(tmp_path)["services"]
    assert "key-rollover" not in default
    assert {"postgres", "redis", "migrate", "tenantauth"} <= set(default)
    assert "key-rollover" not in default["tenantauth"]["depends_on"]
    assert compose_model(tmp_path, "cron")["services"]["key-rollover"]["profiles"] == ["cron"]


def test_documented_rollover_command_names_the_service() -> None:
    """docker-compose.yml and README.md tell operators to run `docker compose run --rm
    [-T] key-rollover` from cron; the service that names must be the one-shot above."""
    command = re.compile(r"docker compose run --rm (?:-T )?([\w-]+)")
    for document in ("docker-compose.yml", "README.md"):
        named = set(command.findall((ROOT / document).read_text(encoding="utf-8")))
        assert named == {"key-rollover"}, f"{document} names {named or 'no service'}"
