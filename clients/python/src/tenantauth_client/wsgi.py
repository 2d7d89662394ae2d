"""``TenantAuthMiddleware``: protect any WSGI application (Django, Pyramid, Bottle, Falcon,
plain WSGI ...) with tenantauth, without importing a web framework.

Every request not exempt must carry ``Authorization: Bearer <token>``; the verified
``Claims`` are put in ``environ["tenantauth.claims"]`` for the application. Refusals follow
RFC 6750 §3 (see ``_bearer.authorize``): 401 with ``WWW-Authenticate: Bearer realm=...``
(plus ``error="invalid_token"`` when a token was sent), 403 ``insufficient_scope`` with the
required ``scope``, 503 when tenantauth cannot answer (fail closed); bodies are RFC 9457
``application/problem+json``. A refused request never reaches the application.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenantauth_client._bearer import Denial, authorize, check_realm, required_scopes
from tenantauth_client.client import TenantAuthClient

if TYPE_CHECKING:  # wsgiref.types is Python 3.11+; only the type checker reads it
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

#: The environ key holding the verified ``Claims`` of the request.
ENVIRON_KEY = "tenantauth.claims"


class TenantAuthMiddleware:
    """WSGI middleware that lets through only requests bearing a token tenantauth verifies
    (and that grants ``scope``, for ``audience`` if given).

    ``exempt_paths`` are never checked (health checks, say): an entry ending in ``/`` exempts
    every path under it, any other entry exactly that path; ``PATH_INFO`` is compared as the
    server decoded it, so mount the middleware where paths are final.
    """

    def __init__(
        self,
        app: WSGIApplication,
        client: TenantAuthClient,
        scope: str | Iterable[str] | None = None,
        *,
        audience: str | None = None,
        exempt_paths: Iterable[str] = (),
        realm: str = "api",
    ) -> None:
        """Wrap ``app``; ``scope`` is a space-delimited string or an iterable of scope tokens,
        all required. Raises ``ValueError`` for a malformed scope or realm."""
        self.app = app
        self.client = client
        self.scopes = required_scopes(scope)
        self.audience = audience
        self.realm = check_realm(realm)
        paths = tuple(exempt_paths)
        self._exact = frozenset(p for p in paths if not p.endswith("/"))
        self._prefixes = tuple(p for p in paths if p.endswith("/"))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a refusal, or call the application with the claims in ``environ``."""
        path = environ.get("PATH_INFO", "") or "/"
        if path in self._exact or path.startswith(self._prefixes):
            return self.app(environ, start_response)
        outcome = authorize(
            self.client,
            environ.get("HTTP_AUTHORIZATION"),
            scopes=self.scopes,
            audience=self.audience,
            realm=self.realm,
        )
        if isinstance(outcome, Denial):
            start_response(outcome.status_line, list(outcome.headers))
            return [outcome.body]
        environ[ENVIRON_KEY] = outcome
        return self.app(environ, start_response)
