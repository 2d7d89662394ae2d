"""Wiring the service: the adapters and the domain ``Services`` for a ``Settings``.

The one place where adapters meet the domain, as cosmicpython's ``bootstrap.py``: the HTTP
service (``app.create_app``) puts the web layer on what it returns, and every CLI command uses
it alone, so a command never loads Flask, flask-smorest or the API's schemas (a third of the
start-up time; docs/design.md, "The CLI does not load the web layer").
"""

from __future__ import annotations

import gc

import redis

from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.limits_memory import MemoryFailureLimiter
from tenantauth.cache.limits_redis import DEFAULT_PREFIX, RedisFailureLimiter
from tenantauth.cache.null import NullCache
from tenantauth.cache.redis import RedisCache
from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.crypto.passwords import PasswordHasher
from tenantauth.domain.clock import SteadyWallClock
from tenantauth.domain.limits import FailureLimiter, LimitPolicy
from tenantauth.domain.policy import AuthPolicy, CachePolicy, MemoryPolicy, TokenPolicy
from tenantauth.domain.ports import Cache, Clock
from tenantauth.domain.services import Services
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.settings import Settings
from tenantauth.storage import MigratableStorage, open_storage

#: Redis key prefix of the admin request counters (the login limiter has its own).
ADMIN_RATE_PREFIX = "tenantauth:admin-rate:"


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    telemetry: Telemetry = NULL_TELEMETRY,
    verify_memory: bool = False,
) -> Services:
    """Build the adapters and the domain bundle for ``settings`` (nothing is opened yet);
    everything reports to ``telemetry`` (the CLI's commands count nothing).

    With Redis, every change (API or CLI) publishes its invalidation to the workers that
    verify from memory; ``verify_memory`` (the server's, never the CLI's) makes this
    process one of them."""
    storage: MigratableStorage = open_storage(
        settings.database_url,
        pool_min=settings.db_pool_min_size,
        pool_max=settings.db_pool_max_size,
        timeout=settings.db_timeout,
        telemetry=telemetry,
    )
    cache: Cache = (
        RedisCache(settings.redis_url, timeout=settings.redis_timeout, telemetry=telemetry)
        if settings.redis_url
        else NullCache()
    )
    return Services.build(
        storage=storage,
        cache=cache,
        clock=clock or SteadyWallClock(),
        keyring=MasterKeyring.from_keys(settings.master_key, settings.master_keys_old),
        tokens=TokenPolicy(
            issuer=settings.issuer,
            default_audience=settings.default_audience,
            default_ttl=settings.access_token_ttl,
            max_lifetime=settings.max_token_ttl,
            leeway=settings.clock_leeway,
        ),
        caching=CachePolicy(
            ttl=settings.cache_ttl,
            negative_ttl=settings.negative_cache_ttl,
            load_wait=settings.db_timeout,
        ),
        admin_token=settings.admin_token,
        limiter=_limiter(settings),
        passwords=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        auth=AuthPolicy(
            password_min_length=settings.password_min_length,
            password_max_length=settings.password_max_length,
            refresh_token_ttl=settings.refresh_token_ttl,
            refresh_reuse_grace=settings.refresh_reuse_grace,
        ),
        telemetry=telemetry,
        leases=(
            RedisLeases(
                settings.redis_url,
                lease_seconds=MemoryPolicy().lease_seconds,
                timeout=settings.redis_timeout,
            )
            if settings.redis_url
            else None
        ),
        memory=MemoryPolicy() if verify_memory and settings.redis_url else None,
        # The tenants warmed into memory live as long as the worker: out of the collector's
        # full passes, which otherwise stalled a worker 150-280 ms at 100,000 tenants.
        retain=gc.freeze,
    )


def _limiter(settings: Settings) -> FailureLimiter:
    """Failed-login counters: shared in Redis, or per process without it (embedded)."""
    policy = LimitPolicy(
        max_failures=settings.login_max_failures,
        window_seconds=settings.login_window,
        lockout_seconds=settings.login_lockout,
        ip_max_failures=settings.login_ip_max_failures,
    )
    return _counters(settings, policy)


def admin_limiter(settings: Settings) -> FailureLimiter:
    """Admin request counters: a FailureLimiter counting every request as one "failure".

    The lockout equals the window, so a client over its limit waits at most one window.
    """
    policy = LimitPolicy(
        max_failures=settings.admin_rate_limit,
        window_seconds=settings.admin_rate_window,
        lockout_seconds=settings.admin_rate_window,
        ip_max_failures=settings.admin_ip_rate_limit,
    )
    return _counters(settings, policy, prefix=ADMIN_RATE_PREFIX)


def _counters(
    settings: Settings, policy: LimitPolicy, prefix: str = DEFAULT_PREFIX
) -> FailureLimiter:
    """Counters under ``policy``: in Redis under ``prefix``, or per process without it
    (embedded)."""
    if settings.redis_url is None:
        return MemoryFailureLimiter(policy)
    client = _redis_client(settings.redis_url, settings.redis_timeout)
    return RedisFailureLimiter(client, policy, prefix)


def _redis_client(url: str, timeout: float) -> redis.Redis:
    """Return a (lazily connecting) Redis client whose calls give up after ``timeout``."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
