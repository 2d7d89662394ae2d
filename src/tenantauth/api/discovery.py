"""Discovery for verifiers that work offline: each tenant's JWK Set and its metadata where
libraries look for it.

- ``GET /v1/tenants/{id}/.well-known/jwks.json`` (RFC 7517 §5): the tenant's public keys.
  Cacheable, unlike the rest of the API: ``Cache-Control: public, max-age`` (the bound an
  offline verifier's revocation lag is stated in) and a strong ``ETag`` (RFC 9110 §8.8.3), so
  a refresh of an unchanged set costs a 304 without a body.
- The tenant's RFC 8414 metadata (``jwks_uri`` among it), besides
  ``/v1/tenants/{id}/.well-known/oauth-authorization-server`` (api/oauth.py), at the two
  places libraries derive from an issuer URL: RFC 8414 §3.1's
  ``/.well-known/oauth-authorization-server/v1/tenants/{id}`` (the well-known segment inserted
  before the issuer's path) and OpenID Connect Discovery's ``{issuer}/.well-known/
  openid-configuration``, which PyJWT's users and jose's examples start from. It is the same
  OAuth document: we issue no ID tokens and claim no OpenID Provider conformance.
"""

from __future__ import annotations

import hashlib
import json

from flask import Response, request
from marshmallow import fields

from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.docs import errors_doc
from tenantauth.api.oauth import MetadataResponseSchema
from tenantauth.api.schemas import Schema
from tenantauth.domain.jwks import JWKS_MAX_AGE, tenant_jwks
from tenantauth.domain.oauth import oauth
from tenantauth.domain.oauth.grants import GRANT_TYPES

#: RFC 7517 §8.5.1.
JWK_SET_JSON = "application/jwk-set+json"
bp = Blueprint(
    "discovery",
    __name__,
    description="Public keys and metadata for verifiers that work offline.",
)


class JwkSchema(Schema):
    """One public JWK (RFC 7517 §4; members per key type: RFC 7518 §6, RFC 8037 §2)."""

    kty = fields.String(required=True, metadata={"enum": ["OKP", "EC", "RSA"]})
    kid = fields.String(required=True, metadata={"description": "`<tenant id>.<key name>`."})
    alg = fields.String(required=True, metadata={"enum": ["EdDSA", "ES256", "RS256"]})
    use = fields.String(required=True, metadata={"enum": ["sig"]})
    crv = fields.String(metadata={"enum": ["Ed25519", "P-256"]})
    x = fields.String()
    y = fields.String()
    n = fields.String()
    e = fields.String()


class JwkSetSchema(Schema):
    """RFC 7517 §5."""

    keys = fields.List(fields.Nested(JwkSchema), required=True)


@bp.get("/v1/tenants/<tenant_id>/.well-known/jwks.json")
@bp.response(
    200,
    JwkSetSchema,
    content_type=JWK_SET_JSON,
    description="The tenant's public keys: none for an HS256 or a suspended tenant.",
    headers={
        "ETag": {"schema": {"type": "string"}, "description": "Strong validator of the set."},
        "Cache-Control": {"schema": {"type": "string"}, "description": "public, max-age=…"},
    },
)
@bp.alt_response(304, description="The set still has the ETag of `If-None-Match`.")
@errors_doc(bp, 404, 503)
def jwks(tenant_id: str) -> Response:
    """The tenant's JWK Set (RFC 7517 §5), read from the state verification reads: a key
    rotated away, or a tenant suspended or deleted, leaves it when that change returns.
    Verifiers holding a copy may keep using it for its max-age."""
    body = json.dumps(tenant_jwks(services(), tenant_id), separators=(",", ":")).encode()
    etag = hashlib.sha256(body).hexdigest()[:32]
    response = Response(body, status=200, content_type=JWK_SET_JSON)
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    if request.if_none_match.contains_weak(etag):  # RFC 9110 §13.1.2: weak comparison
        response.status_code = 304
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


@bp.get("/.well-known/oauth-authorization-server/v1/tenants/<tenant_id>")
@bp.response(200, MetadataResponseSchema)
@errors_doc(bp, 404, 503)
def rfc8414_metadata(tenant_id: str) -> Response:
    """The tenant's authorization server metadata where RFC 8414 §3.1 puts it for an issuer
    with a path (the same document as ``{issuer}/.well-known/oauth-authorization-server``)."""
    return _metadata(tenant_id)


@bp.get("/v1/tenants/<tenant_id>/.well-known/openid-configuration")
@bp.response(200, MetadataResponseSchema)
@errors_doc(bp, 404, 503)
def openid_configuration(tenant_id: str) -> Response:
    """The same metadata where OpenID Connect Discovery §4 looks (many JWT libraries start
    there); an OAuth document: no ID tokens are issued."""
    return _metadata(tenant_id)


def _metadata(tenant_id: str) -> Response:
    body = json.dumps(oauth.metadata(services(), tenant_id, GRANT_TYPES), separators=(",", ":"))
    response = Response(body, status=200, content_type="application/json")
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response
