"""Admin API for minting tokens: /v1/admin/tenants/{id}/tokens."""

from __future__ import annotations

from typing import Any

from tenantauth.api import schemas
from tenantauth.api.auth import require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.domain.models import IssuedToken
from tenantauth.domain.tokens import TokenRequest, issue_token

bp = Blueprint("tokens", __name__, url_prefix="/v1/admin/tenants", description="Mint tokens.")
bp.before_request(require_admin)


@bp.post("/<tenant_id>/tokens")
@bp.arguments(schemas.TokenIssueRequestSchema)
@bp.response(
    201, schemas.TokenResponseSchema, headers={"Cache-Control": {"schema": {"type": "string"}}}
)
@errors_doc(bp, 400, 401, 404, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def issue(body: dict[str, Any], tenant_id: str) -> tuple[IssuedToken, int, dict[str, str]]:
    """Mint an access token for a subject of the tenant (header ``kid`` = tenant id)."""
    svc = services()
    request = TokenRequest(
        tenant_id,
        body["sub"],
        ttl=body.get("ttl"),
        audience=body.get("aud"),
        scope=body.get("scope"),
        claims=body.get("claims"),
    )
    token = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request)
    return token, 201, {"Cache-Control": "no-store"}
