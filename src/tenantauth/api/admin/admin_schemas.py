"""Marshmallow schemas of the admin plane: admin API keys, resource servers and the audit log.

Split from api/schemas.py (which holds the tenant, user and client schemas) to keep modules
small; the same rules apply: strict input (``unknown = RAISE``), explicit output.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from tenantauth.api import rules
from tenantauth.api.schemas import (
    CURSOR_FIELD,
    NAME,
    PAGE_LIMIT,
    TENANT_ID_PATTERN,
    UNIQUE,
    Schema,
    StrictInt,
    StrictSchema,
    validate_tenant_id,
)
from tenantauth.domain import paging
from tenantauth.domain.admin import admin_keys
from tenantauth.domain.admin.audit_input import TIME_RANGE, representable
from tenantauth.domain.oauth import resource_servers
from tenantauth.domain.tokens import MAX_AUDIENCE_LENGTH

_HEX = {"type": "string", "description": "HMAC-SHA256, hex (docs/design.md, Audit log)."}
_TENANT_ID = {"validate": validate_tenant_id, "metadata": {"pattern": TENANT_ID_PATTERN}}


def _printable(**metadata: str) -> dict[str, Any]:
    """A filter of 1 to 100 characters without control characters (no stored value has any,
    and PostgreSQL text cannot hold NUL)."""
    return rules.text(
        rules.PRINTABLE,
        length=(1, 100),
        error="must not contain control characters",
        **metadata,
    )


def _time(what: str) -> dict[str, Any]:
    """An RFC 3339 time with an offset whose UTC equivalent exists (``TIME_RANGE``); 422 if
    not, before the storage adapter would overflow converting it."""
    rule = f"{what} (RFC 3339, with an offset); in UTC within {TIME_RANGE}."
    return {"validate": _representable, "metadata": {"description": rule}}


def _representable(value: datetime) -> None:
    if not representable(value):
        raise ma.ValidationError(f"must lie within {TIME_RANGE} once converted to UTC")


class AdminKeyCreateRequestSchema(StrictSchema):
    """POST /v1/admin/keys."""

    name = fields.String(
        required=True,
        **rules.text(
            rules.PRINTABLE,
            length=(1, admin_keys.MAX_KEY_NAME_LENGTH),
        ),
    )
    tenant_id = fields.String(
        validate=validate_tenant_id,
        metadata={
            "pattern": TENANT_ID_PATTERN,
            "description": "Make the key the admin of this tenant only; omit for a global key.",
        },
    )
    expires_in = StrictInt(
        validate=validate.Range(1, admin_keys.MAX_EXPIRES_IN),
        metadata={"description": "Seconds until the key stops working; omit for no expiry."},
    )


class AdminKeyResponseSchema(Schema):
    """An admin key as listed: never the key itself or its hash."""

    id = fields.String(required=True)
    prefix = fields.String(
        required=True, metadata={"description": "How the key starts: `ta_adm_<id>_`."}
    )
    name = fields.String(required=True)
    scope = fields.String(required=True, metadata={"enum": ["global", "tenant"]})
    tenant_id = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True, allow_none=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)
    last_used_at = fields.DateTime(required=True, allow_none=True)


class AdminKeySecretResponseSchema(AdminKeyResponseSchema):
    """A key just created, with the key text: in this response only."""

    key = fields.String(required=True, metadata={"description": "Shown this once; store it now."})


class AdminKeyListQuerySchema(StrictSchema):
    """GET /v1/admin/keys query."""

    limit = fields.Integer(load_default=paging.DEFAULT_PAGE_SIZE, validate=PAGE_LIMIT)
    cursor = fields.String(**CURSOR_FIELD)


class AdminKeyListResponseSchema(Schema):
    """One page of admin keys."""

    items = fields.List(fields.Nested(AdminKeyResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


_SERVER_TENANTS = {
    "validate": validate.Length(max=resource_servers.MAX_TENANTS),
    "metadata": UNIQUE
    | {"description": "Tenant ids whose tokens it may introspect (each must exist)."},
}
_SERVER_AUDIENCE = rules.text(
    rules.PRINTABLE,
    length=(1, MAX_AUDIENCE_LENGTH),
    description="If set, introspection calls a token active only if its `aud` names this.",
)


class ResourceServerCreateRequestSchema(StrictSchema):
    """POST /v1/admin/resource-servers."""

    name = fields.String(required=True, **NAME)
    tenants = fields.List(fields.String(**_TENANT_ID), required=True, **_SERVER_TENANTS)  # type: ignore[arg-type]
    audience = fields.String(allow_none=True, **_SERVER_AUDIENCE)


class ResourceServerUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/resource-servers/{server_id}: what is given replaces what is stored;
    ``audience: null`` removes the audience."""

    name = fields.String(**NAME)
    tenants = fields.List(fields.String(**_TENANT_ID), **_SERVER_TENANTS)  # type: ignore[arg-type]
    audience = fields.String(allow_none=True, **_SERVER_AUDIENCE)


class ResourceServerResponseSchema(Schema):
    """A resource server as listed: never its secret or the secret's hash."""

    id = fields.String(
        required=True, metadata={"description": "Its HTTP Basic user name: `tar_...`."}
    )
    name = fields.String(required=True)
    tenants = fields.List(fields.String(), required=True)
    audience = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    secret_rotated_at = fields.DateTime(required=True)


class ResourceServerSecretResponseSchema(ResourceServerResponseSchema):
    """A resource server with its secret: only when it is created or its secret rotated."""

    secret = fields.String(
        required=True, metadata={"description": "Shown this once; store it now."}
    )


class ResourceServerListQuerySchema(StrictSchema):
    """GET /v1/admin/resource-servers query."""

    limit = fields.Integer(load_default=paging.DEFAULT_PAGE_SIZE, validate=PAGE_LIMIT)
    cursor = fields.String(**CURSOR_FIELD)


class ResourceServerListResponseSchema(Schema):
    """One page of resource servers."""

    items = fields.List(fields.Nested(ResourceServerResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AuditQuerySchema(StrictSchema):
    """GET /v1/admin/audit query; every filter is optional and they combine with AND."""

    tenant = fields.String(**_TENANT_ID)  # type: ignore[arg-type]
    action = fields.String(**_printable(example="user.create"))
    actor = fields.String(**_printable(description="Key id, `bootstrap` or `cli:<OS user>`."))
    since = fields.AwareDateTime(**_time("Entries at or after this time"))
    until = fields.AwareDateTime(**_time("Entries at or before this time"))
    limit = fields.Integer(load_default=paging.DEFAULT_PAGE_SIZE, validate=PAGE_LIMIT)
    cursor = fields.String(
        **rules.text(
            rules.AUDIT_CURSOR,
            description="The `next_cursor` of the previous page (older entries follow).",
        )
    )


class AuditEntryResponseSchema(Schema):
    """One audit entry with its chain link."""

    seq = fields.Integer(required=True)
    occurred_at = fields.DateTime(required=True)
    actor = fields.String(required=True, attribute="event.actor")
    tenant_id = fields.String(required=True, allow_none=True, attribute="event.tenant_id")
    action = fields.String(required=True, attribute="event.action")
    target = fields.String(required=True, allow_none=True, attribute="event.target")
    request_id = fields.String(required=True, attribute="event.request_id")
    outcome = fields.String(
        required=True,
        attribute="event.outcome",
        metadata={"description": "`success`, or the HTTP status of a refused or failed attempt."},
    )
    prev_hash = fields.Function(lambda e: e.prev_hash.hex(), required=True, metadata=_HEX)
    entry_hash = fields.Function(lambda e: e.entry_hash.hex(), required=True, metadata=_HEX)


class AuditListResponseSchema(Schema):
    """One page of audit entries, newest first."""

    items = fields.List(fields.Nested(AuditEntryResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
