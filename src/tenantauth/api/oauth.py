"""OAuth 2.0 endpoints of each tenant: token (RFC 6749), revocation (RFC 7009) and
authorization server metadata (RFC 8414); introspection (RFC 7662) is api/introspection.py,
which shares this module's hooks, client authentication parsing and error documentation.

Requests are ``application/x-www-form-urlencoded`` (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662
§2.1); unrecognised parameters are ignored (RFC 6749 §3.2), repeated ones refused. Errors are
problem documents served as ``application/json`` with the RFC 6749 §5.2 ``error`` and
``error_description`` members added (``api/problems.py``). Every response carries
``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 §5.1).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any
from urllib.parse import unquote_plus

import marshmallow as ma
from flask import Response, request
from marshmallow import fields

from tenantauth.api.bodies import Blueprint
from tenantauth.api.context import services
from tenantauth.api.problems import OAUTH_BLUEPRINT
from tenantauth.api.schemas import OAuthErrorSchema, Schema
from tenantauth.domain.models import Client
from tenantauth.domain.oauth import oauth
from tenantauth.domain.oauth.grants import GRANT_TYPES, GrantRequest, TokenResponse, grant_token
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.errors import InvalidClientError, OAuthError, UnsupportedMediaTypeError

FORM = "application/x-www-form-urlencoded"
bp = Blueprint(
    OAUTH_BLUEPRINT, __name__, url_prefix="/v1/tenants", description="OAuth 2.0 endpoints."
)
CLIENT_SECURITY: list[dict[str, list[str]]] = [
    {"clientBasic": []},
    {},
]  # Basic, or client_secret_post in the form
_ERRORS = {
    400: "RFC 6749 §5.2 error: invalid_request, invalid_grant, unauthorized_client, "
    "unsupported_grant_type or invalid_scope (see `error`).",
    401: "invalid_client, with `WWW-Authenticate: Basic`.",
    404: "No such tenant.",
    413: "The body exceeds 64 KiB.",
    415: f"The body is not {FORM} (`error` is invalid_request; `Accept-Post` names the type).",
    429: "Too many failed attempts for this client, username or address; see Retry-After.",
    503: "A dependency is unavailable (`error` is temporarily_unavailable).",
}


class OAuthFormSchema(Schema):
    """Form parameters: unknown ones are ignored, as RFC 6749 §3.2 requires."""

    class Meta:
        """Ignore unrecognised parameters."""

        unknown = ma.EXCLUDE

    client_id = fields.String(metadata={"description": "client_secret_post (RFC 6749 §2.3.1)."})
    client_secret = fields.String(metadata={"description": "client_secret_post."})


class TokenFormSchema(OAuthFormSchema):
    """POST /v1/tenants/{id}/token (RFC 6749 §4.3.2, §4.4.2, §6)."""

    grant_type = fields.String(metadata={"enum": list(GRANT_TYPES), "description": "Required."})
    scope = fields.String(metadata={"description": "Space-separated; default: all allowed."})
    username = fields.String(metadata={"description": "password grant."})
    password = fields.String(metadata={"description": "password grant."})
    refresh_token = fields.String(metadata={"description": "refresh_token grant."})


#: One instance for every request: given the class, webargs builds a new schema per request
#: (~65 µs on the bench machine, issue 14). Loading keeps no state on the schema.
TOKEN_FORM = TokenFormSchema()


class TokenFormatSchema(OAuthFormSchema):
    """POST …/revoke (RFC 7009 §2.1); introspection adds ``audience`` (RFC 7662 §2.1)."""

    token = fields.String(metadata={"description": "Required: an access or refresh token."})
    token_type_hint = fields.String(
        metadata={"description": "access_token or refresh_token; optional and not needed."}
    )


class OAuthTokenResponseSchema(Schema):
    """RFC 6749 §5.1."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    scope = fields.String()
    refresh_token = fields.String()


#: The lean path's instance of the token view's response schema (api/lean_token.py).
TOKEN_RESPONSE = OAuthTokenResponseSchema()
#: The token endpoint's route, below the blueprint's prefix.
TOKEN_RULE = "/<tenant_id>/token"  # noqa: S105 - a URL rule, not a password


class MetadataResponseSchema(Schema):
    """RFC 8414 §2."""

    issuer = fields.String(required=True)
    token_endpoint = fields.String(required=True)
    revocation_endpoint = fields.String(required=True)
    introspection_endpoint = fields.String(required=True)
    jwks_uri = fields.String(required=True)
    grant_types_supported = fields.List(fields.String(), required=True)
    response_types_supported = fields.List(fields.String(), required=True)
    token_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    revocation_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    introspection_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)


def oauth_errors_doc(blueprint: Blueprint, *statuses: int) -> Any:
    """Document the RFC 6749 §5.2 error responses a view of ``blueprint`` can return."""

    def decorate(view: Any) -> Any:
        for status in statuses:
            view = blueprint.alt_response(
                status,
                schema=OAuthErrorSchema,
                content_type="application/json",
                description=_ERRORS[status],
            )(view)
        return view

    return decorate


@bp.before_request
def form_only() -> None:
    """Refuse bodies that are not form-encoded (415; 400 when there is no body at all), and
    repeated parameters (400, RFC 6749 §3.2)."""
    if request.method != "POST":
        return
    if request.mimetype != FORM:
        detail = f"Send the parameters as {FORM} (RFC 6749 section 3.2)."
        if request.get_data(cache=True):  # a body of another type: 415 (RFC 9110 §15.5.16)
            raise UnsupportedMediaTypeError(detail, accept=FORM)
        raise OAuthError(detail)  # no body at all: the parameters are missing
    repeated = sorted(k for k in request.form if len(request.form.getlist(k)) > 1)
    if repeated:
        raise OAuthError(f"Parameters must not be repeated: {', '.join(repeated)}.")


@bp.after_request
def no_store(response: Response) -> Response:
    """RFC 6749 §5.1: token responses (and ours all carry tokens or secrets) are not cached."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def client_credentials(form: dict[str, Any]) -> ClientCredentials | None:
    """Return the client's credentials from HTTP Basic or the form, or None if neither.

    HTTP Basic carries the form-urlencoded id and secret (RFC 6749 §2.3.1). Raises
    ``OAuthError`` (invalid_request) when both methods are used or the ids disagree,
    ``InvalidClientError`` for a malformed Authorization header.
    """
    values = request.headers.getlist("Authorization")
    if not values:
        if "client_id" in form and "client_secret" in form:
            return ClientCredentials(form["client_id"], form["client_secret"], "client_secret_post")
        if "client_id" in form or "client_secret" in form:
            raise InvalidClientError("client_secret_post needs both client_id and client_secret.")
        return None
    if len(values) > 1 or "client_secret" in form:
        raise OAuthError("Use exactly one client authentication method (RFC 6749 section 2.3).")
    credentials = basic_credentials(values[0])
    if "client_id" in form and form["client_id"] != credentials.client_id:
        raise OAuthError("client_id in the body differs from the Authorization header.")
    return credentials


def basic_credentials(authorization: str) -> ClientCredentials:
    """Return the client's id and secret from one ``Authorization: Basic`` value.

    Both are form-urlencoded before base64 (RFC 6749 §2.3.1). Raises ``InvalidClientError``
    for another scheme, bad base64, non-UTF-8 or a missing ``:``.
    """
    scheme, _, encoded = authorization.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if scheme.lower() != "basic" or ":" not in decoded:
        raise InvalidClientError("Authorization must be HTTP Basic with the client's id:secret.")
    raw_id, _, raw_secret = decoded.partition(":")
    return ClientCredentials(unquote_plus(raw_id), unquote_plus(raw_secret), "client_secret_basic")


def required_credentials(form: dict[str, Any]) -> ClientCredentials:
    """Return the caller's credentials (as ``client_credentials``).

    Raises ``InvalidClientError`` when there are none, and what ``client_credentials`` raises.
    """
    credentials = client_credentials(form)
    if credentials is None:
        raise InvalidClientError("Authenticate the client with HTTP Basic or client_secret_post.")
    return credentials


def _authenticated(tenant_id: str, form: dict[str, Any]) -> Client:
    credentials = required_credentials(form)
    return oauth.authenticate_client(services(), tenant_id, credentials, request.remote_addr)


@bp.post(TOKEN_RULE)
@bp.arguments(TOKEN_FORM, location="form")
@bp.response(200, OAuthTokenResponseSchema)
@oauth_errors_doc(bp, 400, 401, 404, 413, 415, 429, 503)
@bp.doc(security=CLIENT_SECURITY)
def token(form: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """Token endpoint (RFC 6749 §3.2): client_credentials, password and refresh_token grants."""
    grant = GrantRequest(
        grant_type=form.get("grant_type"),
        scope=form.get("scope"),
        username=form.get("username"),
        password=form.get("password"),
        refresh_token=form.get("refresh_token"),
    )
    creds = client_credentials(form)
    issued = grant_token(services(), tenant_id, creds, grant, request.remote_addr)
    return token_fields(issued)


def token_fields(issued: TokenResponse) -> dict[str, Any]:
    """Return the members of a token response (RFC 6749 §5.1: absent ones omitted, not null),
    before ``TOKEN_RESPONSE`` dumps them."""
    # Not dataclasses.asdict: it deep-copies every value (~100 µs a call, issue 14).
    members = {f.name: getattr(issued, f.name) for f in dataclasses.fields(issued)}
    return {k: v for k, v in members.items() if v is not None}


@bp.post("/<tenant_id>/revoke")
@bp.arguments(TokenFormatSchema, location="form")
@bp.response(200)
@oauth_errors_doc(bp, 400, 401, 404, 413, 415, 429, 503)
@bp.doc(security=CLIENT_SECURITY)
def revoke(form: dict[str, Any], tenant_id: str) -> Response:
    """Revocation endpoint (RFC 7009 §2): 200 with an empty body, also for tokens that are
    invalid, unknown or another client's (§2.2); refresh tokens take their family along."""
    client = _authenticated(tenant_id, form)
    if "token" not in form:
        raise OAuthError("token is required (RFC 7009 section 2.1).")
    oauth.revoke(services(), tenant_id, client, form["token"])
    return Response(status=200)


@bp.get("/<tenant_id>/.well-known/oauth-authorization-server")
@bp.response(200, MetadataResponseSchema)
@oauth_errors_doc(bp, 404, 503)
def server_metadata(tenant_id: str) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414 §3): what this tenant actually supports."""
    return oauth.metadata(services(), tenant_id, GRANT_TYPES)
