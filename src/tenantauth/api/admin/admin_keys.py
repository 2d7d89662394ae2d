"""Admin API for admin API keys: /v1/admin/keys (global admins only).

The key text appears in exactly one response, creation, which is ``no-store``; listings show
the id and the recognisable prefix only.
"""

from __future__ import annotations

from typing import Any

from tenantauth.api.admin import admin_schemas as schemas
from tenantauth.api.admin.auditing import audited, note, record_outcome
from tenantauth.api.auth import GLOBAL, admin_scope, require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.api.schemas import EmptyRequestSchema
from tenantauth.domain.admin import admin_keys as use
from tenantauth.domain.admin.admin_models import AdminKey

bp = Blueprint(
    "admin_keys", __name__, url_prefix="/v1/admin/keys", description="Manage admin API keys."
)
bp.before_request(require_admin)
bp.after_request(record_outcome)
NO_STORE = {"Cache-Control": {"schema": {"type": "string"}, "description": "no-store"}}


@bp.post("")
@admin_scope(GLOBAL)
@audited("admin_key.create")
@bp.arguments(schemas.AdminKeyCreateRequestSchema)
@bp.response(201, schemas.AdminKeySecretResponseSchema, headers=NO_STORE)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def create(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create an admin key, global or limited to one tenant. ``key`` is in this response
    only: store it."""
    key, full = use.create_admin_key(
        services(), body["name"], body.get("tenant_id"), body.get("expires_in")
    )
    note(tenant_id=key.tenant_id, target=key.id)
    return {**_view(key), "key": full}, 201, {"Cache-Control": "no-store"}


@bp.get("")
@admin_scope(GLOBAL)
@bp.arguments(schemas.AdminKeyListQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.AdminKeyListResponseSchema)
@errors_doc(bp, 400, 401, 403, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any]) -> dict[str, Any]:
    """List admin keys ordered by id (revoked and expired ones too); never the keys."""
    page = use.list_admin_keys(services(), query.get("cursor"), query["limit"])
    return {"items": [_view(k) for k in page.items], "next_cursor": page.next_cursor}


@bp.get("/<key_id>")
@admin_scope(GLOBAL)
@bp.response(200, schemas.AdminKeyResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def show(key_id: str) -> dict[str, Any]:
    """Show one admin key (never the key)."""
    return _view(use.get_admin_key(services(), key_id))


@bp.post("/<key_id>/revoke")
@admin_scope(GLOBAL)
@audited("admin_key.revoke")
@bp.arguments(EmptyRequestSchema, required=False)
@bp.response(200, schemas.AdminKeyResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def revoke(_body: dict[str, Any], key_id: str) -> dict[str, Any]:
    """Revoke an admin key: requests that start after this returns are refused (401).
    Revoking a revoked key changes nothing."""
    key = use.revoke_admin_key(services(), key_id)
    note(tenant_id=key.tenant_id)
    return _view(key)


def _view(key: AdminKey) -> dict[str, Any]:
    # The schema dumps only its declared fields, so key_hash never leaves.
    return {**vars(key), "prefix": key.prefix, "scope": key.scope}
