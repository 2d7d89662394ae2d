"""Admin API for the users of a tenant: /v1/admin/tenants/{id}/users.

Log out everywhere (``…/users/{username}/revoke``) lives in api/admin/revocations.py.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from tenantauth.api import schemas
from tenantauth.api.admin.auditing import audited, note, record_outcome
from tenantauth.api.auth import require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.domain import users as use
from tenantauth.domain.models import User, UserStatus

bp = Blueprint(
    "users", __name__, url_prefix="/v1/admin/tenants", description="Manage users of a tenant."
)
bp.before_request(require_admin)
bp.after_request(record_outcome)


@bp.post("/<tenant_id>/users")
@audited("user.create")
@bp.arguments(schemas.UserCreateRequestSchema)
@bp.response(201, schemas.UserResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def create(body: dict[str, Any], tenant_id: str) -> User:
    """Create an active user. The password is stored as an argon2id hash and never returned."""
    note(target=body["username"])
    return use.create_user(
        services(), tenant_id, body["username"], body["password"], body.get("claims")
    )


@bp.get("/<tenant_id>/users")
@bp.arguments(schemas.UserListQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.UserListResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any], tenant_id: str) -> use.UserPage:
    """List the tenant's users ordered by username; follow ``next_cursor`` for more."""
    return use.list_users(services(), tenant_id, query.get("cursor"), query["limit"])


@bp.get("/<tenant_id>/users/<username>")
@bp.response(200, schemas.UserResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def show(tenant_id: str, username: str) -> User:
    """Show one user."""
    return use.get_user(services(), tenant_id, username)


@bp.patch("/<tenant_id>/users/<username>")
@audited("user.update")
@bp.arguments(schemas.UserUpdateRequestSchema)
@bp.response(200, schemas.UserResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def update(body: dict[str, Any], tenant_id: str, username: str) -> User:
    """Disable or enable a user, reset its password or replace its claims.

    Disabling and resetting the password revoke every access and refresh token of the user
    on every verifier by the time this returns; enabling lets newly issued tokens verify.
    """
    return use.update_user(
        services(),
        tenant_id,
        username,
        status=UserStatus(body["status"]) if "status" in body else None,
        password=body.get("password"),
        claims=body.get("claims"),
    )


@bp.delete("/<tenant_id>/users/<username>")
@audited("user.delete")
@bp.response(204)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def delete(tenant_id: str, username: str) -> Response:
    """Delete a user after revoking every token it holds."""
    use.delete_user(services(), tenant_id, username)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, so no content type (RFC 9110 §15.3.5)
    return response
