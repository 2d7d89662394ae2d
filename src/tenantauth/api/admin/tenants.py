"""Admin API for tenants: /v1/admin/tenants."""

from __future__ import annotations

from typing import Any

from flask import Response

from tenantauth.api import schemas
from tenantauth.api.admin.auditing import audited, note, record_outcome
from tenantauth.api.auth import GLOBAL, admin_scope, require_admin
from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import ADMIN_SECURITY, errors_doc
from tenantauth.domain import key_rollover as keys_use
from tenantauth.domain import key_schedule as schedule
from tenantauth.domain import tenants as use
from tenantauth.domain.models import KeyPolicy, Page, Tenant, TenantStatus
from tenantauth.errors import NotFoundError

bp = Blueprint("tenants", __name__, url_prefix="/v1/admin/tenants", description="Manage tenants.")
bp.before_request(require_admin)
bp.after_request(record_outcome)


@bp.post("")
@admin_scope(GLOBAL)
@audited("tenant.create")
@bp.arguments(schemas.TenantCreateRequestSchema)
@bp.response(201, schemas.TenantResponseSchema)
@errors_doc(bp, 400, 401, 403, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def create(body: dict[str, Any]) -> Tenant:
    """Create a tenant with a new (or imported) signing key: an HS256 secret by default, or
    an EdDSA, ES256 or RS256 key pair (``alg``) whose public key its JWKS publishes. The secret
    or private key is never returned."""
    note(tenant_id=body["id"], target=body["id"])
    return use.create_tenant(
        services(),
        body["id"],
        body["name"],
        secret=body.get("secret"),
        access_token_ttl=body.get("access_token_ttl"),
        max_token_ttl=body.get("max_token_ttl"),
        alg=body.get("alg"),
        private_key=body.get("private_key"),
    )


@bp.get("")
@admin_scope(GLOBAL)
@bp.arguments(schemas.TenantListQuerySchema, location="query", unknown="raise")
@bp.response(200, schemas.TenantListResponseSchema)
@errors_doc(bp, 400, 401, 403, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def list_(query: dict[str, Any]) -> Page:
    """List tenants ordered by id; follow ``next_cursor`` for the next page."""
    return use.list_tenants(services(), query.get("cursor"), query["limit"])


@bp.get("/<tenant_id>")
@bp.response(200, schemas.TenantResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def show(tenant_id: str) -> Tenant:
    """Show one tenant."""
    return use.get_tenant(services(), tenant_id)


@bp.patch("/<tenant_id>")
@admin_scope(GLOBAL)
@audited("tenant.update")
@bp.arguments(schemas.TenantUpdateRequestSchema)
@bp.response(200, schemas.TenantResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def update(body: dict[str, Any], tenant_id: str) -> Tenant:
    """Rename, suspend/resume or change token TTLs. Suspension applies at once everywhere."""
    status = TenantStatus(body["status"]) if "status" in body else None
    changes = use.TenantChanges(
        name=body.get("name"),
        status=status,
        access_token_ttl=body.get("access_token_ttl"),
        max_token_ttl=body.get("max_token_ttl"),
    )
    return use.update_tenant(services(), tenant_id, changes)


@bp.delete("/<tenant_id>")
@admin_scope(GLOBAL)
@audited("tenant.delete")
@bp.response(204)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def delete(tenant_id: str) -> Response:
    """Delete a tenant: its secret is erased and its tokens stop verifying at once."""
    use.delete_tenant(services(), tenant_id)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, so no content type (RFC 9110 §15.3.5)
    return response


@bp.post("/<tenant_id>/rotate")
@audited("tenant.rotate")
@bp.arguments(schemas.RotateRequestSchema, required=False)
@bp.response(200, schemas.RotateResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def rotate(body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """Rotate the signing key (optionally to another ``alg``). When this returns, every token
    signed with the old key is rejected by every verifier process and replica of this service;
    a verifier holding a copy of the JWKS may accept them until
    ``offline_verifiers_may_accept_until``."""
    body = body or {}
    rotation = use.rotate_key(
        services(),
        tenant_id,
        body.get("secret"),
        alg=body.get("alg"),
        private_key=body.get("private_key"),
    )
    tenant = rotation.tenant
    return {
        "id": tenant.id,
        "key_version": tenant.key_version,
        "alg": tenant.alg,
        "kid": tenant.kid,
        "rotated_at": tenant.rotated_at,
        "offline_verifiers_may_accept_until": rotation.offline_until,
    }


def _keys_answer(tenant: Tenant) -> dict[str, Any]:
    """The body of the key routes: the tenant's keys as they verify now."""
    views = keys_use.key_views(tenant, services().clock.now())
    return {"id": tenant.id, "key_version": tenant.key_version, "keys": views}


@bp.get("/<tenant_id>/keys")
@bp.response(200, schemas.TenantKeysResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def keys(tenant_id: str) -> dict[str, Any]:
    """The tenant's keys that verify now: the signing key, a published next key, retiring
    keys in their grace window (never their material)."""
    return _keys_answer(keys_use.list_keys(services(), tenant_id)[0])


@bp.post("/<tenant_id>/rollover")
@audited("tenant.rollover")
@bp.arguments(schemas.RolloverRequestSchema, required=False)
@bp.response(200, schemas.TenantKeysResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def rollover(body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """Planned key change: the tenant signs with a new key from now on (its published next
    key, or a new one); tokens of the previous key keep verifying until `grace` ends, here and
    in the JWKS. Revokes nothing: `rotate` is the call that revokes."""
    body = body or {}
    change = keys_use.rollover(
        services(),
        tenant_id,
        grace=body.get("grace"),
        alg=body.get("alg"),
        secret=body.get("secret"),
        private_key=body.get("private_key"),
    )
    return _keys_answer(change.tenant)


@bp.post("/<tenant_id>/keys/next")
@audited("tenant.publish_next")
@bp.arguments(schemas.PublishNextRequestSchema)
@bp.response(201, schemas.TenantKeysResponseSchema)
@errors_doc(bp, 400, 401, 403, 404, 409, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def publish_next(body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """Publish a next key: in the JWKS at once, promoted by a rollover once `ahead` seconds
    have passed, so verifiers caching the JWKS already hold it when it starts signing."""
    change = keys_use.publish_next(
        services(),
        tenant_id,
        ahead=body["ahead"],
        alg=body.get("alg"),
        secret=body.get("secret"),
        private_key=body.get("private_key"),
    )
    return _keys_answer(change.tenant)


@bp.get("/<tenant_id>/keys/policy")
@bp.response(200, schemas.KeyPolicySchema)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def key_policy(tenant_id: str) -> KeyPolicy:
    """The tenant's scheduled rollover (404 when it has none)."""
    policy = schedule.get_policy(services(), tenant_id)
    if policy is None:
        raise NotFoundError(f"tenant {tenant_id!r} has no rollover policy")
    return policy


@bp.put("/<tenant_id>/keys/policy")
@audited("tenant.key_policy")
@bp.arguments(schemas.KeyPolicySchema)
@bp.response(200, schemas.KeyPolicySchema)
@errors_doc(bp, 400, 401, 403, 404, 413, 415, 422, 503)
@bp.doc(security=ADMIN_SECURITY)
def put_key_policy(body: dict[str, Any], tenant_id: str) -> KeyPolicy:
    """Schedule the tenant's rollovers: `tenantauth keys roll-due` (a CronJob) publishes its
    next key `publish_ahead` seconds before the signing key turns `every` seconds old, then
    rolls over to it."""
    policy = KeyPolicy(tenant_id, body["every"], body["publish_ahead"], body.get("grace"))
    return schedule.set_policy(services(), policy)


@bp.delete("/<tenant_id>/keys/policy")
@audited("tenant.key_policy")
@bp.response(204)
@errors_doc(bp, 400, 401, 403, 404, 503)
@bp.doc(security=ADMIN_SECURITY)
def delete_key_policy(tenant_id: str) -> Response:
    """Stop the tenant's scheduled rollovers (keys then change only when asked); 204 also
    when it had none."""
    schedule.clear_policy(services(), tenant_id)
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
