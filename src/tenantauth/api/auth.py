"""Reading bearer credentials (RFC 6750 §2.1) and admitting admin callers by scope.

Every admin view has a scope, declared with ``admin_scope`` (default ``TENANT``):

- ``GLOBAL``: global admins only (bootstrap token, global keys).
- ``TENANT``: global admins, or the admin of the tenant named by the URL's ``tenant_id``; a
  view without ``tenant_id`` in its URL is then global-only.
- ``ANY``: every admin; the view itself narrows what a tenant admin sees.

An out-of-scope request is refused with 403 before anything is looked up, from the URL alone,
so the answer is the same whether the other tenant exists or not (no existence oracle).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from tenantauth.api.context import services
from tenantauth.domain.admin.admin_models import AdminPrincipal
from tenantauth.domain.admin.admins import authenticate
from tenantauth.errors import AuthenticationError, MalformedRequestError, PermissionDeniedError

F = TypeVar("F", bound=Callable[..., Any])
GLOBAL, TENANT, ANY = "global", "tenant", "any"
_SCOPE_ATTR = "_tenantauth_admin_scope"
_OUT_OF_SCOPE = "This admin key is limited to one tenant and may not do this."

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive
# (RFC 9110 §11.1).
BEARER_RE = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")


def bearer_token() -> str | None:
    """Return the bearer token of the request, or None if there is no Authorization header.

    Raises ``MalformedRequestError`` (400) for several Authorization headers,
    ``AuthenticationError`` for a malformed one.
    """
    values = request.headers.getlist("Authorization")
    if not values:
        return None
    # WSGI servers (gunicorn, werkzeug) join repeated header lines with "," (RFC 9110 §5.3);
    # a b64token never contains one, so a comma means several credentials were sent.
    if len(values) > 1 or "," in values[0]:
        raise MalformedRequestError("Send exactly one Authorization header.")
    # RFC 9110 §5.5: leading and trailing whitespace is not part of a field value.
    match = BEARER_RE.fullmatch(values[0].strip(" \t"))
    if match is None:
        raise AuthenticationError("Authorization must be 'Bearer <token>'.")
    return match[1]


def admin_scope(scope: str) -> Callable[[F], F]:
    """Declare who may call an admin view (``GLOBAL``, ``TENANT`` or ``ANY``).

    Put it right under the route decorator, so it marks the function Flask dispatches to.
    """

    def mark(view: F) -> F:
        setattr(view, _SCOPE_ATTR, scope)
        return view

    return mark


def require_admin() -> None:
    """``before_request`` hook of admin blueprints: admit only admins in scope.

    Raises ``AuthenticationError`` (401) without a valid admin token or key,
    ``PermissionDeniedError`` (403) for a tenant admin outside its tenant.
    """
    principal = authenticate(services(), bearer_token())
    g.admin = principal  # set before the scope check, so a refusal is audited with its actor
    check_scope(principal, view_attribute(_SCOPE_ATTR, TENANT), request.view_args or {})


def check_scope(principal: AdminPrincipal, scope: str, view_args: dict[str, Any]) -> None:
    """Return if ``principal`` may call a view of ``scope`` with these URL arguments.

    Raises ``PermissionDeniedError`` otherwise (decided without any lookup).
    """
    if principal.is_global or scope == ANY:
        return
    if scope == TENANT and view_args.get("tenant_id") == principal.tenant_id:
        return
    raise PermissionDeniedError(_OUT_OF_SCOPE)


def current_admin() -> AdminPrincipal | None:
    """Return the admin authenticated for this request, or None."""
    principal: AdminPrincipal | None = g.get("admin")
    return principal


def view_attribute(name: str, default: Any = None) -> Any:
    """Return an attribute a decorator set on the view of this request (or ``default``)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, name, default)
