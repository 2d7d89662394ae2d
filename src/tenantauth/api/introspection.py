"""Token introspection (RFC 7662): per tenant, and tenant-less for resource servers.

- ``POST /v1/tenants/{id}/introspect``: a client of the tenant, or a resource server allowed
  for it, authenticated with HTTP Basic or ``client_secret_post`` (RFC 7662 §2.1).
- ``POST /v1/introspect``: resource servers only; a token of a tenant the server is not
  allowed for is ``{"active": false}``.

Both take the optional ``audience`` parameter (an extension RFC 7662 §2.1 allows): a token
whose ``aud`` does not name it is inactive. Same form rules, error bodies (RFC 6749 §5.2) and
``no-store`` as the other OAuth endpoints (api/oauth.py).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, g, json, request
from marshmallow import fields, validate

from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.oauth import (
    CLIENT_SECURITY,
    TokenFormatSchema,
    form_only,
    no_store,
    oauth_errors_doc,
    required_credentials,
)
from tenantauth.api.problems import INTROSPECTION_BLUEPRINT
from tenantauth.api.schemas import Schema
from tenantauth.domain.oauth import introspection
from tenantauth.domain.tokens import MAX_AUDIENCE_LENGTH

bp = Blueprint(
    INTROSPECTION_BLUEPRINT,
    __name__,
    url_prefix="/v1",
    description="Token introspection (RFC 7662) for clients and resource servers.",
)
bp.before_request(form_only)
bp.after_request(no_store)


class IntrospectionFormSchema(TokenFormatSchema):
    """POST …/introspect (RFC 7662 §2.1), plus ``audience``."""

    audience = fields.String(
        validate=validate.Length(1, MAX_AUDIENCE_LENGTH),
        metadata={"description": "If given, the token is active only if its `aud` names it."},
    )


class IntrospectionResponseSchema(Schema):
    """RFC 7662 §2.2: only ``active`` when the token is not active. An active access token
    carries every claim ``/v1/verify`` returns for it (custom claims and ``kv`` too)."""

    class Meta:
        """Custom claims are members too (additionalProperties)."""

        unknown = ma.INCLUDE

    active = fields.Boolean(required=True)
    token_type = fields.String(metadata={"enum": ["Bearer", "refresh_token"]})
    scope = fields.String()
    client_id = fields.String()
    username = fields.String(metadata={"description": "Refresh tokens: the resource owner."})
    sub = fields.String()
    tid = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    nbf = fields.Integer()
    iss = fields.String()
    aud = fields.Raw(metadata={"description": "A string or a list of strings."})
    jti = fields.String()
    kv = fields.Integer(metadata={"description": "The tenant's key version (absent: 1)."})
    uv = fields.Integer(metadata={"description": "The subject's revocation version."})


@bp.post("/tenants/<tenant_id>/introspect")
@bp.arguments(IntrospectionFormSchema, location="form")
@bp.response(200, IntrospectionResponseSchema)
@oauth_errors_doc(bp, 400, 401, 404, 413, 415, 429, 503)
@bp.doc(security=CLIENT_SECURITY)
def introspect(form: dict[str, Any], tenant_id: str) -> Response:
    """Introspection endpoint of a tenant (RFC 7662 §2), for its clients and for resource
    servers allowed for it: ``{"active": false}`` for anything not valid."""
    body = introspection.introspect_at_tenant(
        services(),
        tenant_id,
        required_credentials(form),
        request.remote_addr,
        token=form.get("token"),
        audience=form.get("audience"),
    )
    return _json(body)


@bp.post("/introspect")
@bp.arguments(IntrospectionFormSchema, location="form")
@bp.response(200, IntrospectionResponseSchema)
@oauth_errors_doc(bp, 400, 401, 413, 415, 429, 503)
@bp.doc(security=CLIENT_SECURITY)
def introspect_any_tenant(form: dict[str, Any]) -> Response:
    """Introspection for resource servers, for every tenant they are allowed for (RFC 7662
    §2): a token of any other tenant is ``{"active": false}``. Clients get 401."""
    body = introspection.introspect_anywhere(
        services(),
        required_credentials(form),
        request.remote_addr,
        token=form.get("token"),
        audience=form.get("audience"),
    )
    return _json(body)


def _json(body: dict[str, Any]) -> Response:
    g.introspection_active = bool(body.get("active"))  # for metrics and the log line
    tid = body.get("tid")
    if tid:
        g.tenant_id = tid
    # Built here, not dumped through the schema: a schema dumps only its declared fields,
    # and custom claims are not declared.
    return Response(json.dumps(body), status=200, mimetype="application/json")
