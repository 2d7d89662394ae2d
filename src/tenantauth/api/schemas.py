"""Marshmallow schemas: strict input (``unknown = RAISE``, bounded sizes), explicit output.

Schemas check types and sizes; the domain checks meaning (TTL bounds, reserved claims).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from tenantauth.api import rules
from tenantauth.crypto import keypairs
from tenantauth.crypto.jwt import ALGORITHMS, TENANT_ID_RE
from tenantauth.domain import paging, tenants, tokens
from tenantauth.domain.oauth import clients


class StrictInt(fields.Integer):
    """A JSON integer: no strings, booleans (bool is an int in Python) or fractions.

    A number with a zero fraction (``60.0``, ``6e1``) is an integer: JSON does not tell them
    apart, and neither does the document's dialect (JSON Schema 2020-12 §6.1.1, OpenAPI 3.1),
    so a client following the document may send one.
    """

    def _validated(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
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


class Schema(ma.Schema):
    """Base of every schema here: marshmallow's, shared instead of copied by ``deepcopy``.

    flask-smorest keeps a view's OpenAPI notes in a dict that each of its decorators
    deep-copies before adding to it, so a view documenting eight problem responses copied its
    schema instances (every field of each) dozens of times: most of the time a worker took to
    import the app (docs/design.md, "The CLI does not load the web layer"). The copies are
    only read (by apispec, to write the document) and a schema instance is not changed after
    it is built, so the copy may be the instance itself: the served document is byte for
    byte the same (tests/unit/test_schema_copies.py)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Schema:
        """Return this instance (see the class)."""
        return self


class StrictSchema(Schema):
    """Base for request schemas: unknown fields are an error."""

    class Meta:
        """Refuse unknown fields (STYLE: strict input schemas)."""

        unknown = ma.RAISE


#: The id pattern as OpenAPI (ECMA-262) reads it; Python's ``$`` would also accept a trailing
#: newline, so the check itself uses ``fullmatch``.
TENANT_ID_PATTERN = rules.TENANT_ID


def validate_tenant_id(value: str) -> None:
    """Accept exactly ``^[a-z0-9][a-z0-9-]{1,62}$``; raise ``ValidationError`` otherwise."""
    if TENANT_ID_RE.fullmatch(value) is None:
        raise ma.ValidationError(f"must match {TENANT_ID_PATTERN}")


TTL = validate.Range(min=1, max=10 * 365 * 86_400)
#: Token lifetimes are capped by TENANTAUTH_MAX_TOKEN_TTL, shown as the document's maximum.
CAPPED = {rules.MAXIMUM_SETTING: "max_token_ttl"}
ACCESS_TTL_DOC = CAPPED | {"description": "Default token lifetime (s); at most max_token_ttl."}
SECRET = rules.text(
    rules.SECRET,
    description="Import this HS256 secret instead of generating one: base64url (RFC 4648 §5) "
    "of 32 to 512 bytes (RFC 7518 §3.2). Only with alg HS256 (the default). Never returned.",
)
ALG: dict[str, Any] = {
    "validate": validate.OneOf(ALGORITHMS),
    "metadata": {
        "description": "The signing algorithm (RFC 7518 §3.1, RFC 8037 §3.1): HS256 (a shared "
        "secret, the default; never published), or a key pair whose public key the tenant's "
        "JWKS publishes: EdDSA (Ed25519), ES256 (P-256) or RS256 (2048-bit RSA when "
        "generated). A rotation without alg keeps the tenant's algorithm."
    },
}
# The bound is the domain's (keypairs.import_private_key, a 422 naming it) and in the
# description, not a maxLength: a schema-violating string of 16,385 characters or more, in
# JSON's escapes, may pass the 64 KiB body limit and be a 413 instead of the 422 a client
# reading maxLength would expect.
PRIVATE_KEY: dict[str, Any] = {
    "validate": validate.Length(min=1),
    "metadata": {
        "format": rules.PRIVATE_KEY_FORMAT,
        "description": "Import this private key instead of generating one: unencrypted PEM "
        "(PKCS#8 or the traditional form) or a private JWK as JSON text, of the type alg "
        f"names (Ed25519; EC P-256; RSA of 2048 to 8192 bits), at most "
        f"{keypairs.MAX_IMPORT_CHARS:,} characters. Needs a key-pair alg; with alg absent "
        "on creation, give alg too. Never returned.",
    },
}
NAME = rules.text(
    rules.NAME,
    length=(1, tenants.MAX_NAME_LENGTH),
)
CLAIM_NAME = validate.Length(1, 100)
_AUDIENCE = {"type": "string", "minLength": 1, "maxLength": tokens.MAX_AUDIENCE_LENGTH}
_AUDIENCE_LIST = {"type": "array", "items": _AUDIENCE, "minItems": 1, "maxItems": 10}
#: A token subject (``sub``): any printable text, ``/`` included (usernames are narrower).
SUBJECT = rules.text(rules.PRINTABLE, length=(1, tokens.MAX_SUBJECT_LENGTH))
#: A list cursor; ``rules.CURSOR_FORMAT`` because a cursor must also be one we issued.
CURSOR_FIELD = rules.text(
    rules.CURSOR,
    length=(1, 1400),  # a username: ≤ 255 characters of ≤ 4 UTF-8 bytes, in base64url
    format=rules.CURSOR_FORMAT,
    description="Opaque: the `next_cursor` of the previous page, as it was given.",
)


class TenantCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants."""

    id = fields.String(
        required=True, validate=validate_tenant_id, metadata={"pattern": TENANT_ID_PATTERN}
    )
    name = fields.String(required=True, **NAME)
    secret = fields.String(**SECRET)  # import an existing secret instead of generating one
    access_token_ttl = StrictInt(validate=TTL, metadata=ACCESS_TTL_DOC)
    max_token_ttl = StrictInt(validate=TTL, metadata=CAPPED)
    alg = fields.String(**ALG)
    private_key = fields.String(**PRIVATE_KEY)


class TenantUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/tenants/{id}."""

    name = fields.String(**NAME)
    status = fields.String(validate=validate.OneOf(["active", "suspended"]))
    access_token_ttl = StrictInt(validate=TTL, metadata=ACCESS_TTL_DOC)
    max_token_ttl = StrictInt(validate=TTL, metadata=CAPPED)


class TenantResponseSchema(Schema):
    """A tenant as the API shows it: never its secret."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    key_version = fields.Integer(required=True)
    alg = fields.String(required=True, metadata={"description": "The signing algorithm."})
    kid = fields.String(
        required=True,
        metadata={"description": "The `kid` its tokens carry now: `<id>.<key name>`."},
    )
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
    cursor = fields.String(**CURSOR_FIELD)


class TenantListResponseSchema(Schema):
    """One page of tenants."""

    items = fields.List(fields.Nested(TenantResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class EmptyRequestSchema(StrictSchema):
    """The body of an action without parameters: none, ``{}``, or no body at all.

    Declared so that such a route refuses what every other route refuses (an unknown field is
    a 422, malformed JSON a 400, a body that is not JSON a 415) instead of ignoring its body.
    """


class RotateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/rotate."""

    secret = fields.String(**SECRET)  # import this secret instead of generating one
    alg = fields.String(**ALG)
    private_key = fields.String(**PRIVATE_KEY)


class RotateResponseSchema(Schema):
    """The result of a rotation."""

    id = fields.String(required=True)
    key_version = fields.Integer(required=True)
    alg = fields.String(required=True)
    kid = fields.String(required=True)
    rotated_at = fields.DateTime(required=True)
    offline_verifiers_may_accept_until = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "tenantauth's own endpoints reject the old key's tokens when this "
            "returns; a verifier holding a copy of the tenant's JWKS may accept them until its "
            "copy expires (the JWKS max-age after this call). None when the old key was an "
            "HS256 secret, which no JWKS publishes."
        },
    )


WINDOW = validate.Range(min=0, max=366 * 86_400)


class RolloverRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/rollover."""

    grace = StrictInt(
        validate=WINDOW,
        metadata={
            "description": "Seconds the previous key keeps verifying (and stays in the JWKS); "
            "default: the tenant's max_token_ttl plus the clock leeway, so every token it "
            "signed lives out its lifetime."
        },
    )
    secret = fields.String(**SECRET)
    alg = fields.String(**ALG)
    private_key = fields.String(**PRIVATE_KEY)


class PublishNextRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/keys/next."""

    ahead = StrictInt(
        required=True,
        validate=WINDOW,
        metadata={
            "description": "Seconds from now before a rollover may promote the key (it is in "
            "the JWKS at once): at least the JWKS max-age (300) so verifiers caching it hold "
            "the key before it signs."
        },
    )
    secret = fields.String(**SECRET)
    alg = fields.String(**ALG)
    private_key = fields.String(**PRIVATE_KEY)


class TenantKeySchema(Schema):
    """One of a tenant's keys, never its material."""

    kid = fields.String(required=True, metadata={"description": "The `kid` its tokens carry."})
    alg = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["current", "next", "retiring"]})
    signs_from = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "A next key: when a rollover may promote it."},
    )
    verifies_until = fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "A retiring key: when it stops verifying."},
    )
    published = fields.Boolean(
        required=True, metadata={"description": "In the JWKS (key pairs only: never a secret)."}
    )


class TenantKeysResponseSchema(Schema):
    """GET /v1/admin/tenants/{id}/keys, and the answer of rollover and keys/next."""

    id = fields.String(required=True)
    key_version = fields.Integer(required=True)
    keys = fields.List(fields.Nested(TenantKeySchema), required=True)


class KeyPolicySchema(StrictSchema):
    """PUT /v1/admin/tenants/{id}/keys/policy, and its answer."""

    every = StrictInt(
        required=True,
        validate=validate.Range(min=86_400, max=10 * 366 * 86_400),
        metadata={"description": "Roll the signing key over when it is this many seconds old."},
    )
    publish_ahead = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=10 * 366 * 86_400),
        metadata={
            "description": "Publish the next key this many seconds before it signs; less "
            "than every (at least the JWKS max-age, 300, is advised)."
        },
    )
    grace = StrictInt(
        allow_none=True,
        validate=WINDOW,
        metadata={
            "description": "Seconds the previous key keeps verifying; null or absent: the "
            "tenant's max_token_ttl plus the clock leeway."
        },
    )


class TokenIssueRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/tokens."""

    sub = fields.String(required=True, **SUBJECT)
    ttl = StrictInt(
        validate=TTL,
        metadata=CAPPED | {"description": "Lifetime (s); at most the tenant's max_token_ttl."},
    )
    aud = Audience(metadata={"oneOf": [_AUDIENCE, _AUDIENCE_LIST]})
    scope = fields.String(
        **rules.text(
            rules.SCOPE,
            length=(1, tokens.MAX_SCOPE_LENGTH),
        )
    )
    claims = fields.Dict(
        keys=fields.String(validate=CLAIM_NAME),
        metadata={"propertyNames": rules.CLAIM_NAMES, "description": rules.CLAIMS_DESCRIPTION},
    )


class TokenResponseSchema(Schema):
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


class VerifyResponseSchema(Schema):
    """A successful verification."""

    active = fields.Boolean(required=True)
    claims = fields.Dict(required=True)


class SubjectRevocationResponseSchema(Schema):
    """The result of revoking every token of one subject."""

    tenant_id = fields.String(required=True)
    subject = fields.String(required=True)
    version = fields.Integer(
        required=True, metadata={"description": "Tokens with a lower `uv` claim are revoked."}
    )
    revoked_at = fields.DateTime(required=True)


class SubjectRevokeRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/subjects/revoke."""

    sub = fields.String(
        required=True,
        **rules.text(
            rules.PRINTABLE,
            length=(1, tokens.MAX_SUBJECT_LENGTH),
            description="The subject to log out everywhere: a username, or any `sub` a "
            "token can be issued to ('/' included).",
        ),
    )


class TokenRevokeRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/tokens/revoke."""

    token = fields.String(required=True, validate=validate.Length(min=1))


class TokenRevokeResponseSchema(Schema):
    """Whether a token was revoked (False: it was not a valid token of this tenant)."""

    revoked = fields.Boolean(required=True)


class ProblemSchema(Schema):
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


class HealthResponseSchema(Schema):
    """Liveness/readiness report."""

    status = fields.String(required=True)


class DependencySchema(Schema):
    """One dependency's probe; a dependency that is not configured has only ``configured``."""

    configured = fields.Boolean(required=True)
    ok = fields.Boolean()
    latency_ms = fields.Float(metadata={"description": "How long the bounded probe took."})
    eviction_policy = fields.String(
        metadata={"description": "Redis maxmemory-policy (cache only; 'unknown' if hidden)."}
    )


class DependenciesSchema(Schema):
    """The state of each dependency."""

    database = fields.Nested(DependencySchema, required=True)
    cache = fields.Nested(DependencySchema, required=True)


class ReadinessSchema(Schema):
    """Readiness: "ready", or "degraded" (still in rotation) with the reasons."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["ready", "degraded"]),
        metadata={"description": "503 (problem+json, readiness 'unavailable') otherwise."},
    )
    reasons = fields.List(fields.String(), required=True)
    dependencies = fields.Nested(DependenciesSchema, required=True)


# --------------------------------------------------------------------------- users and clients

#: Generous bound for the schema; the password policy (settings) says the real limits.
PASSWORD = validate.Length(max=4096)
POLICY_TEXT = (
    "At least TENANTAUTH_PASSWORD_MIN_LENGTH (default 12) and at most "
    "TENANTAUTH_PASSWORD_MAX_LENGTH characters after NFKC normalisation, not only whitespace, "
    "not the username (NIST SP 800-63B §5.1.1.2)."
)
PASSWORD_DOC = {"writeOnly": True, "format": rules.PASSWORD_FORMAT, "description": POLICY_TEXT}
PAGE_LIMIT = validate.Range(1, paging.MAX_PAGE_SIZE)
SCOPE_TOKEN = rules.text(
    rules.SCOPE_TOKEN,
    length=(1, tokens.MAX_SCOPE_LENGTH),
)
SCOPE_LIST = validate.Length(max=clients.MAX_SCOPES)
GRANT_TYPE = validate.OneOf(clients.GRANT_TYPES)
GRANT_LIST = validate.Length(1, len(clients.GRANT_TYPES))
#: No duplicates in scope and grant type lists (the domain refuses them).
UNIQUE = {"uniqueItems": True}
USERNAME = rules.text(
    rules.USERNAME,
    length=(1, tokens.MAX_SUBJECT_LENGTH),
    format=rules.USERNAME_FORMAT,
    description="Unicode NFC (accented letters precomposed); no control characters or '/', "
    "no whitespace at either end.",
)


class UserCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/users."""

    username = fields.String(required=True, **USERNAME)
    password = fields.String(
        required=True, validate=PASSWORD, load_only=True, metadata=PASSWORD_DOC
    )
    claims = fields.Dict(
        keys=fields.String(validate=CLAIM_NAME),
        metadata={"propertyNames": rules.CLAIM_NAMES, "description": rules.CLAIMS_DESCRIPTION},
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
        metadata=PASSWORD_DOC
        | {"description": "Resetting revokes the user's tokens. " + POLICY_TEXT},
    )
    claims = fields.Dict(
        keys=fields.String(validate=CLAIM_NAME),
        metadata={
            "propertyNames": rules.CLAIM_NAMES,
            "description": "Replaces the claims. " + rules.CLAIMS_DESCRIPTION,
        },
    )


class UserResponseSchema(Schema):
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
    cursor = fields.String(**CURSOR_FIELD)


class UserListResponseSchema(Schema):
    """One page of users."""

    items = fields.List(fields.Nested(UserResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ClientCreateRequestSchema(StrictSchema):
    """POST /v1/admin/tenants/{id}/clients."""

    name = fields.String(required=True, **NAME)
    scopes = fields.List(
        fields.String(**SCOPE_TOKEN),
        required=True,
        validate=SCOPE_LIST,
        metadata=UNIQUE
        | {
            "description": "Scopes the client may request (RFC 6749 §3.3 tokens); joined by "
            "spaces they fit in 1024 characters."
        },
    )
    grant_types = fields.List(
        fields.String(validate=GRANT_TYPE),
        required=True,
        validate=GRANT_LIST,
        metadata=UNIQUE,
    )


class ClientUpdateRequestSchema(StrictSchema):
    """PATCH /v1/admin/tenants/{id}/clients/{client_id}."""

    name = fields.String(**NAME)
    scopes = fields.List(fields.String(**SCOPE_TOKEN), validate=SCOPE_LIST, metadata=UNIQUE)
    grant_types = fields.List(
        fields.String(validate=GRANT_TYPE), validate=GRANT_LIST, metadata=UNIQUE
    )


class ClientResponseSchema(Schema):
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
    cursor = fields.String(**CURSOR_FIELD)


class ClientListResponseSchema(Schema):
    """One page of clients."""

    items = fields.List(fields.Nested(ClientResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
