"""Marshmallow schemas: strict input (``unknown = RAISE``, bounded sizes), explicit output.

Schemas check types and sizes; the domain checks meaning (TTL bounds, reserved claims).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from tenantauth.crypto.jwt import TENANT_ID_RE
from tenantauth.domain import clients, paging, tenants, tokens


class StrictInt(fields.Integer):
    """A JSON integer: no strings, floats or booleans (bool is an int in Python)."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)

    def __init__(self, **kwargs: Any) -> None:
        """Like ``fields.Integer(strict=True)``."""
        super().__init__(strict=True, **kwargs)


class Audience(fields.Field):  # type: ignore[type-arg]
    """``aud``: one string or a list of strings (RFC 7519 §4.1.3)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ma.ValidationError("must be a string or a list of strings")


class StrictSchema(ma.Schema):
    """Base for request schemas: unknown fields are an error."""

    class Meta:
        """Refuse unknown fields (STYLE: strict input schemas)."""

        unknown = ma.RAISE


#: The id pattern as OpenAPI (ECMA-262) reads it; Python's ``$`` would also accept a trailing
#: newline, so the check itself uses ``fullmatch``.
TENANT_ID_PATTERN = f"^{TENANT_ID_RE.pattern}$"


def validate_tenant_id(value: str) -> None:
    """Accept exactly ``^[a-z0-9][a-z0-9-]{1,62}$``; raise ``ValidationError`` otherwise."""
    if TENANT_ID_RE.fullmatch(value) is None:
        raise ma.ValidationError(f"must match {TENANT_ID_PATTERN}")


TTL = validate.Range(min=1, max=10 * 365 * 86_400)
SECRET = validate.Length(min=1, max=1024)


class TenantCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants."""

    id = fields.String(
        required=True, validate=validate_tenant_id, metadata={"pattern": TENANT_ID_PATTERN}
    )
    name = fields.String(required=True, validate=validate.Length(1, tenants.MAX_NAME_LENGTH))
    secret = fields.String(
        validate=SECRET,
        metadata={"description": "Import an existing secret: base64url, ≥ 32 bytes."},
    )
    access_token_ttl = StrictInt(validate=TTL)
    max_token_ttl = StrictInt(validate=TTL)


class TenantUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/tenants/{id}."""

    name = fields.String(validate=validate.Length(1, tenants.MAX_NAME_LENGTH))
    status = fields.String(validate=validate.OneOf(["active", "suspended"]))
    access_token_ttl = StrictInt(validate=TTL)
    max_token_ttl = StrictInt(validate=TTL)


class TenantResponseSchema(ma.Schema):
    """A tenant as the API shows it: never its secret."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    key_version = fields.Integer(required=True)
    access_token_ttl = fields.Integer(required=True)
    max_token_ttl = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    rotated_at = fields.DateTime(required=True)


class TenantListQuerySchema(StrictSchema):
    """GET /v1/admin/tenants query."""

    limit = fields.Integer(
        load_default=paging.DEFAULT_PAGE_SIZE, validate=validate.Range(1, paging.MAX_PAGE_SIZE)
    )
    cursor = fields.String(validate=validate.Length(1, 200))


class TenantListResponseSchema(ma.Schema):
    """One page of tenants."""

    items = fields.List(fields.Nested(TenantResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class RotateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/rotate."""

    secret = fields.String(
        validate=SECRET, metadata={"description": "Import this secret instead of generating one."}
    )


class RotateResponseSchema(ma.Schema):
    """The result of a rotation."""

    id = fields.String(required=True)
    key_version = fields.Integer(required=True)
    rotated_at = fields.DateTime(required=True)


class TokenIssueRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/tokens."""

    sub = fields.String(required=True, validate=validate.Length(1, tokens.MAX_SUBJECT_LENGTH))
    ttl = StrictInt(validate=TTL)
    aud = Audience(
        metadata={"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    )
    scope = fields.String(validate=validate.Length(1, tokens.MAX_SCOPE_LENGTH))
    claims = fields.Dict(keys=fields.String(validate=validate.Length(1, 100)))


class TokenResponseSchema(ma.Schema):
    """RFC 6749 §5.1 shaped token response."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class VerifyQuerySchema(StrictSchema):
    """GET /v1/verify query."""

    audience = fields.String(validate=validate.Length(1, tokens.MAX_AUDIENCE_LENGTH))


class VerifyRequestSchema(StrictSchema):
    """POST /v1/verify body."""

    # No schema maximum: an over-long token is a bad token like any other, so it gets the
    # uniform 401 from the verifier (which checks the length first); the body cap bounds it.
    token = fields.String(required=True, validate=validate.Length(min=1))
    audience = fields.String(validate=validate.Length(1, tokens.MAX_AUDIENCE_LENGTH))


class VerifyResponseSchema(ma.Schema):
    """A successful verification."""

    active = fields.Boolean(required=True)
    claims = fields.Dict(required=True)


class SubjectRevocationResponseSchema(ma.Schema):
    """The result of revoking every token of one subject."""

    tenant_id = fields.String(required=True)
    subject = fields.String(required=True)
    version = fields.Integer(
        required=True, metadata={"description": "Tokens with a lower `uv` claim are revoked."}
    )
    revoked_at = fields.DateTime(required=True)


class TokenRevokeRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/tokens/revoke."""

    token = fields.String(required=True, validate=validate.Length(min=1))


class TokenRevokeResponseSchema(ma.Schema):
    """Whether a token was revoked (False: it was not a valid token of this tenant)."""

    revoked = fields.Boolean(required=True)


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, plus ``code`` and ``request_id``."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(required=True)
    code = fields.String(required=True)
    request_id = fields.String(required=True)
    errors = fields.Dict()


class OAuthErrorSchema(ProblemSchema):
    """A problem plus the RFC 6749 §5.2 members the OAuth endpoints' errors carry."""

    error = fields.String(required=True)
    error_description = fields.String(required=True)


class HealthResponseSchema(ma.Schema):
    """Liveness/readiness report."""

    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


# --------------------------------------------------------------------------- users and clients

#: Generous bound for the schema; the password policy (settings) says the real limits.
PASSWORD = validate.Length(max=4096)
CLAIM_NAME = validate.Length(1, 100)
PAGE_LIMIT = validate.Range(1, paging.MAX_PAGE_SIZE)
#: A cursor encodes a username (≤ 255 characters of up to 4 UTF-8 bytes) in base64url.
CURSOR = validate.Length(1, 1400)
SCOPE_TOKEN = validate.Length(1, tokens.MAX_SCOPE_LENGTH)
SCOPE_LIST = validate.Length(max=clients.MAX_SCOPES)
GRANT_TYPE = validate.OneOf(clients.GRANT_TYPES)
GRANT_LIST = validate.Length(1, len(clients.GRANT_TYPES))


class UserCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/users."""

    username = fields.String(required=True, validate=validate.Length(1, tokens.MAX_SUBJECT_LENGTH))
    password = fields.String(
        required=True, validate=PASSWORD, load_only=True, metadata={"writeOnly": True}
    )
    claims = fields.Dict(
        keys=fields.String(validate=CLAIM_NAME),
        metadata={"description": "Added to the user's tokens (≤ 2 KiB)."},
    )


class UserUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/tenants/{id}/users/{username}."""

    status = fields.String(
        validate=validate.OneOf(["active", "disabled"]),
        metadata={"description": "Disabling revokes every token of the user at once."},
    )
    password = fields.String(
        validate=PASSWORD,
        load_only=True,
        metadata={"writeOnly": True, "description": "Resetting revokes the user's tokens."},
    )
    claims = fields.Dict(
        keys=fields.String(validate=CLAIM_NAME), metadata={"description": "Replaces the claims."}
    )


class UserResponseSchema(ma.Schema):
    """A user as the API shows it: never its password or hash."""

    tenant_id = fields.String(required=True)
    username = fields.String(required=True)
    status = fields.String(required=True)
    claims = fields.Dict(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class UserListQuerySchema(StrictSchema):
    """GET /v1/admin/tenants/{id}/users query."""

    limit = fields.Integer(load_default=paging.DEFAULT_PAGE_SIZE, validate=PAGE_LIMIT)
    cursor = fields.String(validate=CURSOR)


class UserListResponseSchema(ma.Schema):
    """One page of users."""

    items = fields.List(fields.Nested(UserResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ClientCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/clients."""

    name = fields.String(required=True, validate=validate.Length(1, tenants.MAX_NAME_LENGTH))
    scopes = fields.List(
        fields.String(validate=SCOPE_TOKEN),
        required=True,
        validate=SCOPE_LIST,
        metadata={"description": "Scopes the client may request (RFC 6749 §3.3 tokens)."},
    )
    grant_types = fields.List(
        fields.String(validate=GRANT_TYPE),
        required=True,
        validate=GRANT_LIST,
    )


class ClientUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/tenants/{id}/clients/{client_id}."""

    name = fields.String(validate=validate.Length(1, tenants.MAX_NAME_LENGTH))
    scopes = fields.List(fields.String(validate=SCOPE_TOKEN), validate=SCOPE_LIST)
    grant_types = fields.List(
        fields.String(validate=GRANT_TYPE),
        validate=GRANT_LIST,
    )


class ClientResponseSchema(ma.Schema):
    """A client as the API shows it: never its secret or the secret's hash."""

    tenant_id = fields.String(required=True)
    client_id = fields.String(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    grant_types = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    secret_rotated_at = fields.DateTime(required=True)


class ClientSecretResponseSchema(ClientResponseSchema):
    """A client with its secret: only when it is created or its secret rotated."""

    client_secret = fields.String(
        required=True, metadata={"description": "Shown this once; store it now."}
    )


class ClientListQuerySchema(StrictSchema):
    """GET /v1/admin/tenants/{id}/clients query."""

    limit = fields.Integer(load_default=paging.DEFAULT_PAGE_SIZE, validate=PAGE_LIMIT)
    cursor = fields.String(validate=CURSOR)


class ClientListResponseSchema(ma.Schema):
    """One page of clients."""

    items = fields.List(fields.Nested(ClientResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
