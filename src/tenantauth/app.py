"""The composition root: ``create_app`` is the one place where adapters meet the domain."""

from __future__ import annotations

import gc
import sys

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tenantauth import __version__
from tenantauth.api import discovery, health, introspection, oauth, problems, verify
from tenantauth.api.admin import (
    admin_keys,
    audit,
    clients,
    issue,
    resource_servers,
    revocations,
    tenants,
    users,
)
from tenantauth.api.bodies import Blueprint, StrictJSONProvider
from tenantauth.api.context import EXTENSION
from tenantauth.api.docs import ProblemApi
from tenantauth.api.hygiene import RequestGuard
from tenantauth.api.lean_token import LeanToken
from tenantauth.api.lean_verify import LeanVerify
from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.limits_memory import MemoryFailureLimiter
from tenantauth.cache.limits_redis import RedisFailureLimiter
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
from tenantauth.observability import logs
from tenantauth.observability.http import RequestTelemetry, request_json
from tenantauth.observability.metrics import PrometheusTelemetry
from tenantauth.settings import (
    MAX_HEADER_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE_BYTES,
    ROLES,
    Settings,
)
from tenantauth.storage import MigratableStorage, open_storage

#: Redis key prefix of the admin request counters (the login limiter has its own).
ADMIN_RATE_PREFIX = "tenantauth:admin-rate:"
#: ``TENANTAUTH_ROLE`` values that leave out part of the API (``all`` serves everything).
_, PUBLIC_ROLE, ADMIN_ROLE = ROLES
#: Every blueprint, in the order the OpenAPI document lists them.
_BLUEPRINTS = (
    health.bp,
    tenants.bp,
    users.bp,
    clients.bp,
    issue.bp,
    revocations.bp,
    verify.bp,
    oauth.bp,
    discovery.bp,
    introspection.bp,
    admin_keys.bp,
    resource_servers.bp,
    audit.bp,
)
#: What verifying services and OAuth clients call; everything else but the probes is admin.
_PUBLIC_BLUEPRINTS = frozenset({verify.bp, oauth.bp, discovery.bp, introspection.bp})


def served_blueprints(role: str) -> list[Blueprint]:
    """Return the blueprints a server of ``role`` (``all``, ``public`` or ``admin``)
    registers, in the document's order. The probes (``health``) are in every role."""
    if role == PUBLIC_ROLE:
        return [bp for bp in _BLUEPRINTS if bp in _PUBLIC_BLUEPRINTS or bp is health.bp]
    if role == ADMIN_ROLE:
        return [bp for bp in _BLUEPRINTS if bp not in _PUBLIC_BLUEPRINTS]
    return list(_BLUEPRINTS)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the Flask app for ``settings`` (default: from the environment).

    Opens no connection: pools open lazily in each (forked) worker. Applies migrations first
    when ``settings.auto_migrate``. Raises ``ConfigurationError`` listing every bad setting.
    """
    settings = settings or Settings.from_env()
    writer = logs.configure(settings.log_level, log_format(settings), fast_json=request_json)
    metrics = PrometheusTelemetry() if settings.metrics_port else None
    if metrics is not None:
        writer.on_drop = metrics.log_dropped
    services = build_services(
        settings,
        clock=clock,
        telemetry=metrics or NULL_TELEMETRY,
        # An admin server verifies only the tokens it is asked to revoke: the exact path serves
        # those, and its workers then hold no lease that every change would wait for.
        verify_memory=settings.verify_memory and settings.role != ADMIN_ROLE,
    )
    if settings.auto_migrate:
        services.storage.migrate()  # type: ignore[attr-defined]
    app = Flask("tenantauth")
    app.json = StrictJSONProvider(app)  # request.get_json: the parser of api/bodies.py
    app.config.update(
        API_TITLE="tenantauth",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,  # 413 beyond it
        API_SPEC_OPTIONS={
            "info": {"description": "Multi-tenant JWT issuing and verification."},
            "components": {
                "securitySchemes": {
                    "adminToken": {"type": "http", "scheme": "bearer"},
                    "bearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "clientBasic": {"type": "http", "scheme": "basic"},
                }
            },
        },
    )
    app.extensions[EXTENSION] = {"services": services, "settings": settings}
    api = ProblemApi(app)
    for blueprint in served_blueprints(settings.role):
        api.register_blueprint(blueprint)
    problems.register(app)  # after Api(): ours replace flask-smorest's error handler
    # First of the request hooks: its clock starts before every check, its line is last.
    telemetry = RequestTelemetry(metrics, writer, settings.log_sample_accepted)
    telemetry.install(app)
    if settings.role != ADMIN_ROLE:
        _install_lean_paths(app, settings, telemetry)
    if settings.proxy_hops:
        # Trust exactly this many proxies: remote_addr (login limits) then names the client,
        # not the load balancer; more hops than real proxies would let clients spoof it.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
        )
    RequestGuard(
        admin_limiter=_admin_limiter(settings),
        max_json_depth=settings.max_json_depth,
        max_header_fields=MAX_HEADER_FIELDS,
        max_header_field_bytes=MAX_HEADER_FIELD_BYTES,
        max_request_line=MAX_REQUEST_LINE_BYTES,
        gateway_path=verify.GATEWAY_PATH,
    ).install(app)
    return app


def _install_lean_paths(app: Flask, settings: Settings, telemetry: RequestTelemetry) -> None:
    """Put the verify and token endpoints' lean paths in front of ``app.wsgi_app``."""
    # The gateway endpoint's and the token endpoint's common requests skip the framework
    # (issue 14): same bytes out, same metrics and log line; inside ProxyFix, so they see the
    # client address too (the token endpoint's failure limiter counts per address).
    app.wsgi_app = LeanToken(  # type: ignore[method-assign]
        app.wsgi_app,
        services=lambda: app.extensions[EXTENSION]["services"],
        issuer=settings.issuer,
        dumps=app.json.dumps,
        record=telemetry.record,
        max_header_fields=MAX_HEADER_FIELDS,
        max_header_field_bytes=MAX_HEADER_FIELD_BYTES,
    )
    app.wsgi_app = LeanVerify(  # type: ignore[method-assign]
        app.wsgi_app,
        verifier=lambda: app.extensions[EXTENSION]["services"].verifier,
        issuer=settings.issuer,
        dumps=app.json.dumps,
        record=telemetry.record,
        max_header_fields=MAX_HEADER_FIELDS,
        max_header_field_bytes=MAX_HEADER_FIELD_BYTES,
        max_request_line=MAX_REQUEST_LINE_BYTES,
    )


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
    if settings.redis_url is None:
        return MemoryFailureLimiter(policy)
    return RedisFailureLimiter(_redis_client(settings.redis_url, settings.redis_timeout), policy)


def _admin_limiter(settings: Settings) -> FailureLimiter:
    """Admin request counters: a FailureLimiter counting every request as one "failure".

    The lockout equals the window, so a client over its limit waits at most one window.
    """
    policy = LimitPolicy(
        max_failures=settings.admin_rate_limit,
        window_seconds=settings.admin_rate_window,
        lockout_seconds=settings.admin_rate_window,
        ip_max_failures=settings.admin_ip_rate_limit,
    )
    if settings.redis_url is None:
        return MemoryFailureLimiter(policy)
    client = _redis_client(settings.redis_url, settings.redis_timeout)
    return RedisFailureLimiter(client, policy, prefix=ADMIN_RATE_PREFIX)


def _redis_client(url: str, timeout: float) -> redis.Redis:
    """Return a (lazily connecting) Redis client whose calls give up after ``timeout``."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def log_format(settings: Settings) -> str:
    """``json`` or ``console``: as set, or (``auto``) console for people — on a terminal, or
    in embedded mode — and JSON for log collectors."""
    if settings.log_format != "auto":
        return settings.log_format
    return "console" if settings.embedded or sys.stdout.isatty() else "json"
