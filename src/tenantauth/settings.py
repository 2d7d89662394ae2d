"""Settings from ``TENANTAUTH_*`` environment variables; every problem reported at once.

With no ``TENANTAUTH_DATABASE_URL`` the service runs in *embedded mode*: SQLite in the state
directory, no Redis, and a master key and admin token generated there on first start (see
``tenantauth.embedded``). With a database URL it runs in *production mode*, where missing
secrets are a startup error and nothing is generated.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantauth.errors import ConfigurationError

PREFIX = "TENANTAUTH_"
MIN_ADMIN_TOKEN_LENGTH = 32
MAX_LEEWAY = 60  # VERIFIER-CHECKLIST #7
MAX_REUSE_GRACE = 60  # a refresh retry grace longer than this would weaken reuse detection
#: Worker timeout bounds: below 2 s a busy worker's heartbeat could be late; above an hour a
#: hung worker would hold its connections for longer than any client waits.
MIN_WORKER_TIMEOUT, MAX_WORKER_TIMEOUT = 2, 3600
#: HTTP header limits, shared by gunicorn (``tenantauth.gunicorn_conf``, which answers 414/431
#: before the app runs) and the app itself (``tenantauth.api.hygiene``, for any other WSGI
#: server and the test client). 8190 is gunicorn's own default line and field size.
MAX_REQUEST_LINE_BYTES = 8190
MAX_HEADER_FIELDS = 50
MAX_HEADER_FIELD_BYTES = 8190


@dataclass(frozen=True, slots=True)
class Setting:
    """One documented environment variable."""

    name: str
    default: str | None
    help: str
    parse: Callable[[str], Any] = str


def _bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _master_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64 (e.g. `openssl rand -base64 32`)") from exc
    if len(raw) != 32:
        raise ValueError(f"must decode to exactly 32 bytes (got {len(raw)})")
    return raw


def _master_keys(text: str) -> tuple[bytes, ...]:
    """Comma-separated master keys; a bad one is named by position, never echoed."""
    keys = []
    for number, item in enumerate(text.split(","), start=1):
        if not item.strip():  # a stray comma is a mistake to report, not a key to skip
            raise ValueError(f"key {number} is empty")
        try:
            keys.append(_master_key(item.strip()))
        except ValueError as exc:
            raise ValueError(f"key {number}: {exc}") from None
    return tuple(keys)


def _admin_token(text: str) -> str:
    if len(text) < MIN_ADMIN_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters")
    return text


def _leeway(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_LEEWAY:
        raise ValueError(f"must be between 0 and {MAX_LEEWAY} seconds")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise ValueError("must be positive")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text.lower()

    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port (1-65535), or 0 for none")
    return value


def _seconds_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} seconds")
        return value

    return parse


#: ``TENANTAUTH_ROLE``'s values: the whole API, what verifiers call, ``/v1/admin/*``.
ROLES = ("all", "public", "admin")

#: The one table of settings: parsing, defaults and the README all come from here.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        None,
        "`postgresql://user:pass@host/db` (production) or "
        "`sqlite:///path`. Unset: embedded mode, SQLite in the state directory.",
    ),
    Setting(
        "REDIS_URL",
        None,
        "`redis://host:6379/0`. Unset: no shared cache (every verification reads the database).",
    ),
    Setting(
        "MASTER_KEY",
        None,
        "Base64 of 32 random bytes; encrypts tenant secrets at rest. "
        "Required in production; generated into the state directory in embedded mode.",
        _master_key,
    ),
    Setting(
        "MASTER_KEYS_OLD",
        None,
        "Comma-separated older master keys (same encoding), still read but never written: "
        "keep the previous key here during a master-key rotation (`tenantauth master-key`).",
        _master_keys,
    ),
    Setting(
        "ADMIN_TOKEN",
        None,
        f"Bearer token for `/v1/admin/*` (≥ {MIN_ADMIN_TOKEN_LENGTH} "
        "characters). Required in production; generated in embedded mode.",
        _admin_token,
    ),
    Setting(
        "ISSUER",
        None,
        "The `iss` of every token, compared exactly. Required in "
        "production; embedded default `http://127.0.0.1:8000`.",
    ),
    Setting("DEFAULT_AUDIENCE", "tenantauth", "`aud` of tokens issued without one."),
    Setting(
        "ACCESS_TOKEN_TTL",
        "900",
        "Default token lifetime in seconds for new tenants.",
        _positive(int),
    ),
    Setting(
        "MAX_TOKEN_TTL",
        "86400",
        "Longest lifetime any token may have (`exp - iat`), enforced when issuing and verifying.",
        _positive(int),
    ),
    Setting(
        "CLOCK_LEEWAY",
        "30",
        f"Seconds of clock skew tolerated on `exp`/`nbf`/`iat` (0–{MAX_LEEWAY}).",
        _leeway,
    ),
    Setting(
        "CACHE_TTL",
        "300",
        "Seconds a tenant stays in Redis (±10% jitter). Revocation does not depend on it.",
        _positive(float),
    ),
    Setting(
        "NEGATIVE_CACHE_TTL",
        "10",
        "Seconds an unknown tenant id stays negative-cached.",
        _positive(float),
    ),
    Setting(
        "ARGON2_TIME_COST",
        "3",
        "argon2id passes over memory for user passwords (RFC 9106 §4; OWASP minimum 2).",
        _positive(int),
    ),
    Setting(
        "ARGON2_MEMORY_KIB",
        "65536",
        "argon2id memory per hash in KiB (64 MiB; OWASP minimum 19456). "
        "Stored hashes are upgraded at the next login when the parameters change.",
        _positive(int),
    ),
    Setting("ARGON2_PARALLELISM", "1", "argon2id lanes (threads) per hash.", _positive(int)),
    Setting(
        "PASSWORD_MIN_LENGTH", "12", "Fewest characters a user password may have.", _positive(int)
    ),
    Setting(
        "PASSWORD_MAX_LENGTH", "256", "Most characters a user password may have.", _positive(int)
    ),
    Setting(
        "LOGIN_MAX_FAILURES",
        "5",
        "Failed password or client-secret attempts per tenant+username and per client IP "
        "that lock further attempts (429 with `Retry-After`).",
        _positive(int),
    ),
    Setting(
        "LOGIN_WINDOW",
        "300",
        "Seconds over which failed attempts are counted, from the first failure.",
        _positive(int),
    ),
    Setting(
        "LOGIN_LOCKOUT", "300", "Seconds a locked username or IP stays locked.", _positive(int)
    ),
    Setting(
        "LOGIN_IP_MAX_FAILURES",
        "100",
        "Failed logins per client address (within the window) before it is locked; higher "
        "than per user because many users can share an address (NAT, proxies).",
        _positive(int),
    ),
    Setting(
        "PROXY_HOPS",
        "0",
        "Reverse proxies in front of the service whose `X-Forwarded-For`/`-Proto`/`-Host` "
        "are trusted (werkzeug ProxyFix). 0: use the peer address. Set it behind a load "
        "balancer, or every client shares the balancer's address for login limits.",
        _non_negative,
    ),
    Setting(
        "MAX_BODY_BYTES",
        "65536",
        "Largest request body accepted, in bytes; a larger one is a 413 problem.",
        _positive(int),
    ),
    Setting(
        "MAX_JSON_DEPTH",
        "32",
        "Deepest nesting of arrays and objects a JSON body may have; deeper is a 400 problem.",
        _positive(int),
    ),
    Setting(
        "ADMIN_RATE_LIMIT",
        "1200",
        "Requests to `/v1/admin/*` per admin credential within `ADMIN_RATE_WINDOW`; "
        "more are refused (429 with `Retry-After`) until the window ends.",
        _positive(int),
    ),
    Setting(
        "ADMIN_IP_RATE_LIMIT",
        "2400",
        "Requests to `/v1/admin/*` per client address (IPv6: per /64) within "
        "`ADMIN_RATE_WINDOW`, whatever credential they carry.",
        _positive(int),
    ),
    Setting(
        "ADMIN_RATE_WINDOW",
        "60",
        "Seconds over which admin requests are counted, from the first one; a client over "
        "a limit waits this long.",
        _positive(int),
    ),
    Setting(
        "REFRESH_TOKEN_TTL",
        "2592000",
        "Refresh token lifetime in seconds (30 days); each use rotates the token.",
        _positive(int),
    ),
    Setting(
        "REFRESH_REUSE_GRACE",
        "10",
        f"Seconds a just-rotated refresh token may be presented again (a client's network "
        f"retry) before reuse revokes its whole family (0–{MAX_REUSE_GRACE}).",
        _seconds_between(0, MAX_REUSE_GRACE),
    ),
    Setting(
        "REDIS_TIMEOUT",
        "0.25",
        "Seconds before a Redis call counts as failed (then the database answers).",
        _positive(float),
    ),
    Setting("DB_POOL_MIN_SIZE", "1", "PostgreSQL connections kept open per process.", int),
    Setting("DB_POOL_MAX_SIZE", "10", "Most PostgreSQL connections per process.", _positive(int)),
    Setting(
        "DB_TIMEOUT",
        "5",
        "Seconds to wait for a database connection or statement.",
        _positive(float),
    ),
    Setting(
        "STATE_DIR",
        None,
        "Embedded mode's directory (SQLite file, generated secrets, "
        "mode 0700/0600). Default `$XDG_STATE_HOME/tenantauth` or "
        "`~/.local/state/tenantauth`.",
    ),
    Setting(
        "AUTO_MIGRATE",
        None,
        "Apply migrations at startup. Default true in embedded mode, "
        "false in production (run `tenantauth migrate`).",
        _bool,
    ),
    Setting("LOG_LEVEL", "INFO", "Python log level."),
    Setting(
        "LOG_FORMAT",
        "auto",
        "`json` (one object per line on stdout), `console` (for people), or `auto`: console "
        "on a terminal and in embedded mode, else json.",
        _choice("auto", "json", "console"),
    ),
    Setting(
        "LOG_SAMPLE_ACCEPTED",
        "1",
        "Share of accepted verifications that get a request log line (0 to 1); rejections, "
        "errors and all other requests are always logged, and metrics count everything.",
        _fraction,
    ),
    Setting(
        "VERIFY_MEMORY",
        "true",
        "Production mode: each worker answers verifications of the tenants it holds from its "
        "own memory, kept exact by leases and acknowledged invalidation (docs/design.md, "
        '"Verifying from memory"). Changes then wait for every worker\'s acknowledgement '
        "(at most 2 s for a stopped one). `false`: every verification reads Redis.",
        _bool,
    ),
    Setting(
        "ROLE",
        "all",
        "Which API this server answers: `all`; `public` (verification, the token, JWKS and "
        "introspection endpoints: what verifying services and OAuth clients call); or `admin` "
        "(`/v1/admin/*`). Other paths are 404. An `admin` deployment beside `public` ones keeps "
        "the admin API off the public network, and its changes off the verifying workers' "
        'interpreters (docs/design.md, "Changes under load wait for the GIL").',
        _choice(*ROLES),
    ),
    Setting(
        "METRICS_PORT",
        "9464",
        "Port of the Prometheus /metrics endpoint (separate from the API port; 0 turns "
        "metrics off).",
        _port,
    ),
    Setting(
        "METRICS_HOST",
        None,
        "Address the metrics port binds. Default: the one `tenantauth serve --host` binds.",
    ),
    Setting(
        "WORKER_TIMEOUT",
        "30",
        "Seconds a server worker may go without its heartbeat (stopped, deadlocked, or stuck "
        "holding the interpreter) before it is killed and replaced: gunicorn's `timeout`, "
        "and tenantauth's own watchdog under granian (2 to 3600).",
        _seconds_between(MIN_WORKER_TIMEOUT, MAX_WORKER_TIMEOUT),
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Secrets are hidden from ``repr``."""

    database_url: str
    redis_url: str | None
    master_key: bytes = field(repr=False)
    master_keys_old: tuple[bytes, ...] = field(default=(), repr=False, kw_only=True)
    admin_token: str = field(repr=False)
    issuer: str
    embedded: bool
    state_dir: Path
    default_audience: str = "tenantauth"
    access_token_ttl: int = 900
    max_token_ttl: int = 86_400
    clock_leeway: int = 30
    cache_ttl: float = 300.0
    negative_cache_ttl: float = 10.0
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65_536
    argon2_parallelism: int = 1
    password_min_length: int = 12
    password_max_length: int = 256
    login_max_failures: int = 5
    login_window: int = 300
    login_lockout: int = 300
    login_ip_max_failures: int = 100
    proxy_hops: int = 0
    max_body_bytes: int = 65_536
    max_json_depth: int = 32
    admin_rate_limit: int = 1200
    admin_ip_rate_limit: int = 2400
    admin_rate_window: int = 60
    refresh_token_ttl: int = 2_592_000
    refresh_reuse_grace: int = 10
    redis_timeout: float = 0.25
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_timeout: float = 5.0
    auto_migrate: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"
    log_sample_accepted: float = 1.0
    metrics_port: int = 9464
    verify_memory: bool = True
    role: str = "all"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting.

        In embedded mode, secrets not given are read from the state directory (create them
        first with ``tenantauth.embedded.ensure_state``). Raises ``ConfigurationError`` listing
        every problem at once.
        """
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values = {s.name: _read(s, env, problems) for s in SETTINGS}
        embedded = values["DATABASE_URL"] is None
        state_dir = Path(values["STATE_DIR"] or default_state_dir(env))
        if embedded:
            # Reports a missing or bad state file itself; "required in production" would mislead.
            _fill_embedded(values, state_dir, problems)
        else:
            for name in ("MASTER_KEY", "ADMIN_TOKEN", "ISSUER"):
                if values[name] is None and not any(p.startswith(PREFIX + name) for p in problems):
                    problems.append(f"{PREFIX}{name} is required in production mode")
        if (
            values["ACCESS_TOKEN_TTL"]
            and values["MAX_TOKEN_TTL"]
            and (values["ACCESS_TOKEN_TTL"] > values["MAX_TOKEN_TTL"])
        ):
            problems.append(f"{PREFIX}ACCESS_TOKEN_TTL must not exceed {PREFIX}MAX_TOKEN_TTL")
        problems.extend(_auth_problems(values))
        if values["MASTER_KEY"] in (values["MASTER_KEYS_OLD"] or ()):
            problems.append(f"{PREFIX}MASTER_KEYS_OLD must not contain {PREFIX}MASTER_KEY")
        if problems:
            raise ConfigurationError(problems)
        auto = values["AUTO_MIGRATE"]
        return cls(
            database_url=values["DATABASE_URL"],
            redis_url=values["REDIS_URL"],
            master_key=values["MASTER_KEY"],
            master_keys_old=values["MASTER_KEYS_OLD"] or (),
            admin_token=values["ADMIN_TOKEN"],
            issuer=values["ISSUER"],
            embedded=embedded,
            state_dir=state_dir,
            default_audience=values["DEFAULT_AUDIENCE"],
            access_token_ttl=values["ACCESS_TOKEN_TTL"],
            max_token_ttl=values["MAX_TOKEN_TTL"],
            clock_leeway=values["CLOCK_LEEWAY"],
            cache_ttl=values["CACHE_TTL"],
            negative_cache_ttl=values["NEGATIVE_CACHE_TTL"],
            argon2_time_cost=values["ARGON2_TIME_COST"],
            argon2_memory_kib=values["ARGON2_MEMORY_KIB"],
            argon2_parallelism=values["ARGON2_PARALLELISM"],
            password_min_length=values["PASSWORD_MIN_LENGTH"],
            password_max_length=values["PASSWORD_MAX_LENGTH"],
            login_max_failures=values["LOGIN_MAX_FAILURES"],
            login_window=values["LOGIN_WINDOW"],
            login_lockout=values["LOGIN_LOCKOUT"],
            login_ip_max_failures=values["LOGIN_IP_MAX_FAILURES"],
            proxy_hops=values["PROXY_HOPS"],
            max_body_bytes=values["MAX_BODY_BYTES"],
            max_json_depth=values["MAX_JSON_DEPTH"],
            admin_rate_limit=values["ADMIN_RATE_LIMIT"],
            admin_ip_rate_limit=values["ADMIN_IP_RATE_LIMIT"],
            admin_rate_window=values["ADMIN_RATE_WINDOW"],
            refresh_token_ttl=values["REFRESH_TOKEN_TTL"],
            refresh_reuse_grace=values["REFRESH_REUSE_GRACE"],
            redis_timeout=values["REDIS_TIMEOUT"],
            db_pool_min_size=values["DB_POOL_MIN_SIZE"],
            db_pool_max_size=values["DB_POOL_MAX_SIZE"],
            db_timeout=values["DB_TIMEOUT"],
            auto_migrate=embedded if auto is None else auto,
            log_level=values["LOG_LEVEL"].upper(),
            log_format=values["LOG_FORMAT"],
            log_sample_accepted=values["LOG_SAMPLE_ACCEPTED"],
            metrics_port=values["METRICS_PORT"],
            verify_memory=values["VERIFY_MEMORY"] and not embedded,
            role=values["ROLE"],
        )


def metrics_port(environ: Mapping[str, str]) -> int:
    """Return the metrics port ``environ`` asks for (0: metrics off), for gunicorn's master,
    which must know it before any app (and its full ``Settings``) exists.

    Raises ``ConfigurationError`` for a value that is not a port.
    """
    return int(_server_setting("METRICS_PORT", environ))


def worker_timeout(environ: Mapping[str, str]) -> int:
    """Return the worker timeout ``environ`` asks for (seconds), for the servers' main
    processes, which must know it before any app (and its full ``Settings``) exists.

    Raises ``ConfigurationError`` for a value out of range.
    """
    return int(_server_setting("WORKER_TIMEOUT", environ))


def _server_setting(name: str, environ: Mapping[str, str]) -> Any:
    """Return setting ``name`` parsed from ``environ`` alone (no ``Settings``), for the
    servers' main processes. Raises ``ConfigurationError`` when it does not parse."""
    problems: list[str] = []
    value = _read(_BY_NAME[name], environ, problems)
    if problems:
        raise ConfigurationError(problems)
    return value


def default_state_dir(env: Mapping[str, str]) -> Path:
    """Return ``$XDG_STATE_HOME/tenantauth`` or ``~/.local/state/tenantauth``."""
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tenantauth"


def is_embedded(environ: Mapping[str, str]) -> bool:
    """Return whether ``environ`` selects embedded mode (no database URL)."""
    return not environ.get(PREFIX + "DATABASE_URL")


def _auth_problems(values: dict[str, Any]) -> list[str]:
    """Cross-checks of the password settings (each value itself is already parsed)."""
    problems = []
    low, high = values["PASSWORD_MIN_LENGTH"], values["PASSWORD_MAX_LENGTH"]
    if low and high and low > high:
        problems.append(f"{PREFIX}PASSWORD_MIN_LENGTH must not exceed {PREFIX}PASSWORD_MAX_LENGTH")
    memory, lanes = values["ARGON2_MEMORY_KIB"], values["ARGON2_PARALLELISM"]
    if memory and lanes and memory < 8 * lanes:  # RFC 9106 §3.1
        problems.append(
            f"{PREFIX}ARGON2_MEMORY_KIB must be at least 8 × {PREFIX}ARGON2_PARALLELISM"
        )
    return problems


def _read(setting: Setting, env: Mapping[str, str], problems: list[str]) -> Any:
    text = env.get(PREFIX + setting.name) or setting.default
    if text is None:
        return None
    try:
        return setting.parse(text)
    except ValueError as exc:
        problems.append(f"{PREFIX}{setting.name} {exc}")
        return None


def _fill_embedded(values: dict[str, Any], state_dir: Path, problems: list[str]) -> None:
    """Embedded mode: SQLite in the state dir, secrets from its files unless given."""
    values["DATABASE_URL"] = f"sqlite:///{state_dir / 'tenantauth.db'}"
    values["ISSUER"] = values["ISSUER"] or "http://127.0.0.1:8000"
    for name, filename in (("MASTER_KEY", "master.key"), ("ADMIN_TOKEN", "admin.token")):
        if values[name] is not None or any(p.startswith(PREFIX + name) for p in problems):
            continue
        path = state_dir / filename
        if not path.exists():
            problems.append(f"{path} is missing: run `tenantauth serve` once to create it")
            continue
        try:
            values[name] = _BY_NAME[name].parse(path.read_text(encoding="ascii").strip())
        except ValueError as exc:
            problems.append(f"{path} {exc}")
