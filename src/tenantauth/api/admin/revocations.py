"""Admin API for logging subjects out everywhere and for revoking one token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenantauth.api import schemas
from tenantauth.api.admin.auditing import audited, note, note_revoked_token, record_outcome
from tenantauth.api.auth import require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.domain import revocations as use
from tenantauth.domain.models import SubjectRevocation
from tenantauth.domain.tenants import require_tenant_id

bp = Blueprint(
    "revocations", __name__, url_prefix="/v1/admin/tenants", description="Revoke tokens."
)
bp.before_request(require_admin)
bp.after_request(record_outcome)


@bp.post("/<tenant_id>/users/<username>/revoke")
@audited("user.revoke_tokens")
@bp.arguments(schemas.EmptyRequestSchema, required=False)
@bp.response(200, schemas.SubjectRevocationResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def revoke_user(_body: dict[str, Any], tenant_id: str, username: str) -> dict[str, Any]:
    """Log a user out everywhere: every access token of this subject issued until now is
    rejected by every verifier once this returns; tokens issued later verify.

    A subject that a path segment cannot carry (one holding ``/``, or ``.`` and ``..``) is
    revoked with ``POST …/subjects/revoke`` instead."""
    return _revoked(use.revoke_subject(services(), tenant_id, username))


@bp.post("/<tenant_id>/subjects/revoke")
@audited("user.revoke_tokens")
@bp.arguments(schemas.SubjectRevokeRequestSchema)
@bp.response(200, schemas.SubjectRevocationResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def revoke_subject(body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """Log a subject out everywhere, as ``…/users/{username}/revoke`` does, naming it in the
    body: any ``sub`` a token can be issued to, ``/`` included (docs/design.md, "Revoking a
    subject")."""
    note(target=body["sub"])
    return _revoked(use.revoke_subject(services(), tenant_id, body["sub"]))


@bp.post("/<tenant_id>/tokens/revoke")
@audited("token.revoke")
@bp.arguments(schemas.TokenRevokeRequestSchema)
@bp.response(200, schemas.TokenRevokeResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def revoke_token(body: dict[str, Any], tenant_id: str) -> dict[str, bool]:
    """Revoke one access token of this tenant (by its jti, until it expires). A token that is
    not valid for this tenant is reported as not revoked, not as an error (RFC 7009 §2.2)."""
    require_tenant_id(tenant_id)  # an id that cannot name a tenant is a 404, as elsewhere
    revoked = use.revoke_token(services(), body["token"], tenant_id)
    if revoked:  # the audit entry's target is the jti (only sound once it verified)
        note_revoked_token(body["token"])
    return {"revoked": revoked}


def _revoked(done: SubjectRevocation) -> dict[str, Any]:
    return {
        "tenant_id": done.tenant_id,
        "subject": done.subject,
        "version": done.version,
        "revoked_at": datetime.fromtimestamp(done.revoked_at, UTC),
    }
