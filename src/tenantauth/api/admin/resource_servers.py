"""Admin API for resource servers: /v1/admin/resource-servers (global admins only).

A resource server's secret appears in exactly two responses, creation and rotation, both
``no-store``; no other response carries the secret or its hash. Every change is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from tenantauth.api.admin import admin_schemas as schemas
from tenantauth.api.admin.auditing import audited, note, record_outcome
from tenantauth.api.auth import GLOBAL, admin_scope, require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.api.schemas import EmptyRequestSchema
from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.domain.oauth import resource_servers as use

bp = Blueprint(
    "resource_servers",
    __name__,
    url_prefix="/v1/admin/resource-servers",
    description="Manage resource servers: credentials that may only introspect tokens.",
)
bp.before_request(require_admin)
bp.after_request(record_outcome)
NO_STORE = {"Cache-Control": {"schema": {"type": "string"}, "description": "no-store"}}
SecretResponse = tuple[dict[str, Any], int, dict[str, str]]


@bp.post("")
@admin_scope(GLOBAL)
@audited("resource_server.create")
@bp.arguments(schemas.ResourceServerCreateRequestSchema)
@bp.response(201, schemas.ResourceServerSecretResponseSchema, headers=NO_STORE)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def create(body: dict[str, Any]) -> SecretResponse:
    """Register a resource server allowed to introspect tokens of the listed tenants.
    ``secret`` is in this response only: store it."""
    server, secret = use.create_resource_server(
        services(), body["name"], body["tenants"], body.get("audience")
    )
    note(target=server.id)
    return _with_secret(server, secret, 201)


@bp.get("")
@admin_scope(GLOBAL)
@bp.arguments(schemas.ResourceServerListQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.ResourceServerListResponseSchema)
@errors_doc(bp, 400, 401, 403, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any]) -> use.ResourceServerPage:
    """List resource servers ordered by id, with their tenants; never their secrets."""
    return use.list_resource_servers(services(), query.get("cursor"), query["limit"])


@bp.get("/<server_id>")
@admin_scope(GLOBAL)
@bp.response(200, schemas.ResourceServerResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def show(server_id: str) -> ResourceServer:
    """Show one resource server (never its secret)."""
    return use.get_resource_server(services(), server_id)


@bp.patch("/<server_id>")
@admin_scope(GLOBAL)
@audited("resource_server.update")
@bp.arguments(schemas.ResourceServerUpdateRequestSchema)
@bp.response(200, schemas.ResourceServerResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def update(body: dict[str, Any], server_id: str) -> ResourceServer:
    """Rename a resource server, replace its tenants, or set or remove (null) its audience.
    A tenant taken off the list is refused from the next request on."""
    return use.update_resource_server(
        services(),
        server_id,
        name=body.get("name"),
        tenants=body.get("tenants"),
        audience=body.get("audience", use.KEEP),  # absent: keep; null: remove
    )


@bp.delete("/<server_id>")
@admin_scope(GLOBAL)
@audited("resource_server.delete")
@bp.response(204)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def delete(server_id: str) -> Response:
    """Delete a resource server: its secret authenticates nothing from the next request on."""
    use.delete_resource_server(services(), server_id)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, so no content type (RFC 9110 §15.3.5)
    return response


@bp.post("/<server_id>/rotate-secret")
@admin_scope(GLOBAL)
@audited("resource_server.rotate_secret")
@bp.arguments(EmptyRequestSchema, required=False)
@bp.response(200, schemas.ResourceServerSecretResponseSchema, headers=NO_STORE)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def rotate_secret(_body: dict[str, Any], server_id: str) -> SecretResponse:
    """Give the resource server a new secret, shown in this response only; the old secret
    stops working when this returns."""
    server, secret = use.rotate_resource_server_secret(services(), server_id)
    return _with_secret(server, secret, 200)


def _with_secret(server: ResourceServer, secret: str, status: int) -> SecretResponse:
    # The schema dumps only its declared fields, so secret_hash never leaves.
    return {**vars(server), "secret": secret}, status, {"Cache-Control": "no-store"}
