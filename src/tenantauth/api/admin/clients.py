"""Admin API for the OAuth clients of a tenant: /v1/admin/tenants/{id}/clients.

A client's secret appears in exactly two responses, creation and rotation, both ``no-store``;
no other response carries the secret or its hash.
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
from tenantauth.domain.models import Client
from tenantauth.domain.oauth import clients as use

bp = Blueprint(
    "clients",
    __name__,
    url_prefix="/v1/admin/tenants",
    description="Manage OAuth clients of a tenant.",
)
bp.before_request(require_admin)
bp.after_request(record_outcome)
NO_STORE = {"Cache-Control": {"schema": {"type": "string"}, "description": "no-store"}}
SecretResponse = tuple[dict[str, Any], int, dict[str, str]]


@bp.post("/<tenant_id>/clients")
@audited("client.create")
@bp.arguments(schemas.ClientCreateRequestSchema)
@bp.response(201, schemas.ClientSecretResponseSchema, headers=NO_STORE)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def create(body: dict[str, Any], tenant_id: str) -> SecretResponse:
    """Register a confidential client. ``client_secret`` is in this response only: store it."""
    client, secret = use.create_client(
        services(), tenant_id, body["name"], body["scopes"], body["grant_types"]
    )
    note(target=client.client_id)
    return _with_secret(client, secret, 201)


@bp.get("/<tenant_id>/clients")
@bp.arguments(schemas.ClientListQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.ClientListResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any], tenant_id: str) -> use.ClientPage:
    """List the tenant's clients ordered by client_id; follow ``next_cursor`` for more."""
    return use.list_clients(services(), tenant_id, query.get("cursor"), query["limit"])


@bp.get("/<tenant_id>/clients/<client_id>")
@bp.response(200, schemas.ClientResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def show(tenant_id: str, client_id: str) -> Client:
    """Show one client (never its secret)."""
    return use.get_client(services(), tenant_id, client_id)


@bp.patch("/<tenant_id>/clients/<client_id>")
@audited("client.update")
@bp.arguments(schemas.ClientUpdateRequestSchema)
@bp.response(200, schemas.ClientResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def update(body: dict[str, Any], tenant_id: str, client_id: str) -> Client:
    """Rename a client or replace its scopes or grant types."""
    return use.update_client(
        services(),
        tenant_id,
        client_id,
        name=body.get("name"),
        scopes=body.get("scopes"),
        grant_types=body.get("grant_types"),
    )


@bp.delete("/<tenant_id>/clients/<client_id>")
@audited("client.delete")
@bp.response(204)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def delete(tenant_id: str, client_id: str) -> Response:
    """Delete a client: it can no longer obtain or refresh tokens."""
    use.delete_client(services(), tenant_id, client_id)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, so no content type (RFC 9110 §15.3.5)
    return response


@bp.post("/<tenant_id>/clients/<client_id>/rotate-secret")
@audited("client.rotate_secret")
@bp.arguments(schemas.EmptyRequestSchema, required=False)
@bp.response(200, schemas.ClientSecretResponseSchema, headers=NO_STORE)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def rotate_secret(_body: dict[str, Any], tenant_id: str, client_id: str) -> SecretResponse:
    """Give the client a new secret, shown in this response only; the old secret stops
    working when this returns."""
    client, secret = use.rotate_client_secret(services(), tenant_id, client_id)
    return _with_secret(client, secret, 200)


def _with_secret(client: Client, secret: str, status: int) -> SecretResponse:
    # The schema dumps only its declared fields, so secret_hash never leaves.
    return {**vars(client), "client_secret": secret}, status, {"Cache-Control": "no-store"}
