"""The composition root of the HTTP service: ``create_app`` puts the web layer on the services
``bootstrap.build_services`` wires (the one place where adapters meet the domain)."""

from __future__ import annotations

import sys

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
from tenantauth.bootstrap import admin_limiter, build_services
from tenantauth.domain.ports import Clock
from tenantauth.domain.telemetry import NULL_TELEMETRY
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
        admin_limiter=admin_limiter(settings),
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


def log_format(settings: Settings) -> str:
    """``json`` or ``console``: as set, or (``auto``) console for people — on a terminal, or
    in embedded mode — and JSON for log collectors."""
    if settings.log_format != "auto":
        return settings.log_format
    return "console" if settings.embedded or sys.stdout.isatty() else "json"
