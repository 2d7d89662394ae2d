"""Flask integration (install ``tenantauth-client[flask]``): the ``TenantAuth`` extension and
the ``require_token`` decorator.

    app.config["TENANTAUTH_URL"] = "http://tenantauth:8000"
    tenantauth = TenantAuth(app)          # or TenantAuth() then tenantauth.init_app(app)

    @app.get("/reports")
    @require_token(scope="reports:read")
    def reports():
        claims = current_claims()         # also flask.g.tenantauth_claims
        ...

Configuration keys: ``TENANTAUTH_URL`` (required unless a client is given),
``TENANTAUTH_TIMEOUT`` (5.0), ``TENANTAUTH_RETRIES`` (2), ``TENANTAUTH_VERIFY_CACHE_TTL`` (0:
off; see ``cache.VerifyCache`` for the revocation delay it brings; not the server's
``TENANTAUTH_CACHE_TTL``, so a shared environment cannot turn it on by accident),
``TENANTAUTH_AUDIENCE`` (default audience of ``require_token``, ``None``), ``TENANTAUTH_REALM``
(``"api"``).

Refusals are those of ``_bearer.authorize`` (401/403 per RFC 6750 §3, 503 fail closed),
as ``application/problem+json``; the view never runs for a refused request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from tenantauth_client._bearer import Denial, authorize, check_realm, required_scopes
from tenantauth_client.claims import Claims
from tenantauth_client.client import TenantAuthClient

EXTENSION = "tenantauth_client"
#: The ``flask.g`` attribute holding the verified claims during a protected request.
G_ATTRIBUTE = "tenantauth_claims"
_UNSET: Any = object()
View = TypeVar("View", bound=Callable[..., Any])


class TenantAuth:
    """The Flask extension: one ``TenantAuthClient`` per application, built from its config
    (or the ``client`` given, which then serves every app this extension is bound to)."""

    def __init__(self, app: Flask | None = None, client: TenantAuthClient | None = None) -> None:
        """Bind to ``app`` now if given (else call ``init_app`` later)."""
        self._client = client
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the application's client and register the extension.

        Raises ``KeyError`` if neither a client nor ``TENANTAUTH_URL`` is configured, and
        ``ValueError``/``ConfigurationError`` for invalid settings.
        """
        config = app.config
        client = self._client or TenantAuthClient(
            config["TENANTAUTH_URL"],
            timeout=float(config.get("TENANTAUTH_TIMEOUT", 5.0)),
            retries=int(config.get("TENANTAUTH_RETRIES", 2)),
            cache_ttl=float(config.get("TENANTAUTH_VERIFY_CACHE_TTL", 0)),
        )
        app.extensions[EXTENSION] = _State(
            client,
            config.get("TENANTAUTH_AUDIENCE"),
            check_realm(config.get("TENANTAUTH_REALM", "api")),
        )

    @staticmethod
    def client_for(app: Flask) -> TenantAuthClient:
        """Return the client of ``app``; raise ``RuntimeError`` if the extension is not set up."""
        return _state(app).client


class _State:
    def __init__(self, client: TenantAuthClient, audience: str | None, realm: str) -> None:
        self.client, self.audience, self.realm = client, audience, realm


def _state(app: Flask) -> _State:
    state: _State | None = app.extensions.get(EXTENSION)
    if state is None:
        raise RuntimeError("TenantAuth is not initialised on this app (TenantAuth(app))")
    return state


def require_token(
    scope: str | Iterable[str] | None = None, audience: str | None = _UNSET
) -> Callable[[View], View]:
    """Decorate a view so it runs only for a request bearing a token tenantauth verifies,
    granting every scope of ``scope`` (a space-delimited string or an iterable), for
    ``audience`` (default: ``TENANTAUTH_AUDIENCE``; ``None`` checks no audience).

    The verified ``Claims`` are in ``flask.g.tenantauth_claims`` (``current_claims()``) while
    the view runs. Raises ``ValueError`` at decoration time for a malformed scope.
    """
    scopes = required_scopes(scope)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _state(current_app)
            outcome = authorize(
                state.client,
                request.headers.get("Authorization"),
                scopes=scopes,
                audience=state.audience if audience is _UNSET else audience,
                realm=state.realm,
            )
            if isinstance(outcome, Denial):
                return _response(outcome)
            setattr(g, G_ATTRIBUTE, outcome)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return cast("View", wrapper)

    return decorate


def current_claims() -> Claims:
    """Return the verified claims of the current request; raise ``RuntimeError`` outside a
    view protected by ``require_token``."""
    claims: Claims | None = g.get(G_ATTRIBUTE)
    if claims is None:
        raise RuntimeError("no verified token: the view is not protected by require_token")
    return claims


def _response(outcome: Denial) -> Response:
    headers = [(k, v) for k, v in outcome.headers if k not in ("Content-Length", "Content-Type")]
    return Response(
        outcome.body, outcome.status, headers, content_type=dict(outcome.headers)["Content-Type"]
    )
