"""Admin API for reading the audit log: /v1/admin/audit.

Any admin may read it; a tenant admin sees only its own tenant's entries. Reading is not
itself recorded.
"""

from __future__ import annotations

from typing import Any

from tenantauth.api.admin import admin_schemas as schemas
from tenantauth.api.auth import ANY, admin_scope, current_admin, require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.domain.admin import audit as use
from tenantauth.domain.admin.admin_models import AuditQuery

bp = Blueprint("audit", __name__, url_prefix="/v1/admin/audit", description="Read the audit log.")
bp.before_request(require_admin)


@bp.get("")
@admin_scope(ANY)
@bp.arguments(schemas.AuditQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.AuditListResponseSchema)
@errors_doc(bp, 400, 401, 403, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any]) -> use.AuditPage:
    """List audit entries newest first, filtered by tenant, action, actor and time; follow
    ``next_cursor`` for older entries. A tenant admin sees only its tenant (asking for
    another is a 403)."""
    viewer = current_admin()
    assert viewer is not None  # noqa: S101 - require_admin ran
    filters = AuditQuery(
        tenant_id=query.get("tenant"),
        action=query.get("action"),
        actor=query.get("actor"),
        since=query.get("since"),
        until=query.get("until"),
    )
    return use.list_entries(services(), viewer, filters, query.get("cursor"), query["limit"])
