"""Recording admin actions in the audit log, at the API layer.

A view declares its action with ``audited("tenant.rotate")``; ``record_outcome``, an
``after_request`` hook of every admin blueprint, appends one entry per request to such a view
with the outcome (``success`` or the error status) once the response is known. It runs for
refusals too (403 out of scope, 404, 409, 422 ...), but not for 401s: an unauthenticated
caller has no actor, and recording it would let anyone grow the chain.

The entry is written in its own transaction after the action's, so a change can commit while
its entry fails to be written (database lost in between). The response then still reports
the change, and the entry is logged at ERROR with every field (docs/design.md, "Audit log").
Both steps are ``domain.admin.audit.record_action``, which the CLI's admin commands use too
(cli/auditing.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g, request

from tenantauth.api.auth import current_admin, view_attribute
from tenantauth.api.context import services
from tenantauth.api.problems import request_id
from tenantauth.domain.admin import audit
from tenantauth.domain.admin.admin_models import AuditEvent

F = TypeVar("F", bound=Callable[..., Any])
_ACTION_ATTR = "_tenantauth_audit_action"
#: URL arguments naming the target of an action, most specific first.
_TARGET_ARGS = ("key_id", "server_id", "client_id", "username")


def audited(action: str) -> Callable[[F], F]:
    """Declare the audit action of a view (put it right under the route decorator)."""

    def mark(view: F) -> F:
        setattr(view, _ACTION_ATTR, action)
        return view

    return mark


def note(*, tenant_id: str | None = None, target: str | None = None) -> None:
    """Name the tenant or target of this request's entry when the URL does not (e.g. the id
    of a tenant being created, or of a key just made)."""
    if tenant_id is not None:
        g.audit_tenant = tenant_id
    if target is not None:
        g.audit_target = target


def record_outcome(response: Response) -> Response:
    """``after_request`` hook: append this request's entry if its view is audited.

    Returns ``response`` unchanged, even when the entry cannot be written (then logged).
    """
    action: str | None = view_attribute(_ACTION_ATTR)
    principal = current_admin()
    if action is None or principal is None:
        return response
    event = AuditEvent(
        actor=principal.actor,
        tenant_id=g.get("audit_tenant") or _url_arg(("tenant_id",)),
        action=action,
        target=g.get("audit_target") or _url_arg(_TARGET_ARGS),
        request_id=request_id(),
        outcome=audit.outcome(response.status_code),
    )
    audit.record_action(services(), event)  # logs, never raises: the response stands
    return response


def note_revoked_token(token: str) -> None:
    """Name the ``jti`` of ``token``, which the view has just revoked, as the target.

    Call it only once the revocation returned True: the jti is read without checking the
    signature again (``domain.admin.audit.revoked_token_ref``).
    """
    ref = audit.revoked_token_ref(token)
    if ref is not None:
        note(target=ref[1])


def _url_arg(names: tuple[str, ...]) -> str | None:
    args = request.view_args or {}
    return next((str(args[n]) for n in names if n in args), None)
