"""Sending one token to every verifying endpoint and checking the answer is the uniform one.

The endpoints that take a token from a stranger: ``GET /v1/verify`` (bearer header),
``POST /v1/verify`` (JSON body) and ``POST /v1/tenants/{id}/introspect`` (RFC 7662 form).
Each request carries the same ``X-Request-Id``, so two failures are byte-identical exactly
when nothing in them depends on the token (RFC 8725 §2, VERIFIER-CHECKLIST #13).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.domain.services import Services
from tenantauth.settings import MAX_HEADER_FIELD_BYTES
from tests.integration.helpers import assert_problem
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET
from tests.support import FixedClock

VERIFY = "/v1/verify"
INTROSPECT = "/v1/tenants/{}/introspect"
REQUEST_ID = "security-suite"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="tenantauth", error="invalid_token"'
#: Headers a successful verification adds; a failure must carry none of them.
IDENTITY_HEADERS = ("X-Tenant-Id", "X-Subject", "X-Scope")


@dataclass
class World:
    """An app on one backend with tenants acme and other, and the reference failures."""

    backend: str
    app: Flask
    client: FlaskClient
    services: Services
    clock: FixedClock
    refs: dict[str, TestResponse] = field(default_factory=dict)

    def get(self, authorization: str | None = None, **kw: Any) -> TestResponse:
        """GET /v1/verify with an optional raw Authorization value."""
        headers = {"X-Request-Id": REQUEST_ID}
        if authorization is not None:
            headers["Authorization"] = authorization
        return self.client.get(VERIFY, headers=headers, **kw)

    def post(self, body: Any, **kw: Any) -> TestResponse:
        """POST /v1/verify with ``body`` as JSON."""
        return self.client.post(VERIFY, json=body, headers={"X-Request-Id": REQUEST_ID}, **kw)

    def introspect(self, token: str, tenant: str = "acme") -> TestResponse:
        """POST the token to the tenant's introspection endpoint as its client (RFC 7662
        §2.1)."""
        form = {"token": token, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        return self.client.post(
            INTROSPECT.format(tenant), data=form, headers={"X-Request-Id": REQUEST_ID}
        )


def header_sendable(token: str) -> bool:
    """Whether ``token`` can travel in a header unchanged: printable ASCII, no edge blanks.

    (Blanks at the edges of a field value are not part of it, RFC 9110 §5.5; control
    characters cannot be sent at all.)
    """
    return all(0x20 <= ord(c) < 0x7F for c in token) and token.strip() == token != ""


def assert_rejected(world: World, token: str, tenant: str = "acme") -> None:
    """Assert every endpoint rejects ``token`` with the one uniform answer for it
    (introspected at ``tenant``, whose client has the suite's credentials)."""
    _assert_same(world.post({"token": token}), world.refs["invalid"])
    if header_sendable(token):
        _assert_same(world.get(f"Bearer {token}"), world.refs["invalid"])
    inactive = world.introspect(token, tenant)
    _assert_same(inactive, world.refs["inactive"])
    assert inactive.get_json() == {"active": False}


def assert_accepted(world: World, token: str, tenant: str = "acme") -> dict[str, Any]:
    """Assert every endpoint accepts ``token`` (introspected at ``tenant``); return the
    verified claims."""
    body = _ok(world.post({"token": token}))
    if header_sendable(token):
        assert _ok(world.get(f"Bearer {token}")) == body
    described = _ok(world.introspect(token, tenant))
    assert described["active"] is True
    assert described["tid"] == body["claims"]["tid"]
    return body["claims"]  # type: ignore[no-any-return]


def reference_failures(world: World, bad_signature: str) -> dict[str, TestResponse]:
    """Return the answers every failure is compared with, after checking them once."""
    refs = {
        "invalid": world.post({"token": bad_signature}),
        "inactive": world.introspect(bad_signature),
    }
    body = assert_problem(refs["invalid"], 401, "invalid_token")
    assert body["detail"] == "The access token is missing, invalid, expired or revoked."
    assert refs["invalid"].headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    # The gateway endpoint answers every unacceptable credential alike, unreadable (not a
    # b64token), ambiguous (a comma) and oversized (over the header field limit) included.
    for authorization in (
        f"Bearer {bad_signature}",
        "Bearer {}",
        "Bearer a,b",
        "Bearer " + "A" * MAX_HEADER_FIELD_BYTES,
    ):
        _assert_same(world.get(authorization), refs["invalid"])
    assert json.loads(refs["inactive"].get_data()) == {"active": False}
    assert refs["inactive"].status_code == 200
    return refs


def _assert_same(response: TestResponse, reference: TestResponse) -> None:
    """Status, body bytes, content type and challenge equal the reference; no identity."""
    assert response.status_code == reference.status_code, response.get_data(as_text=True)
    assert response.get_data() == reference.get_data()
    assert response.headers["Content-Type"] == reference.headers["Content-Type"]
    assert response.headers.get("WWW-Authenticate") == reference.headers.get("WWW-Authenticate")
    assert response.headers["Cache-Control"] == "no-store"
    assert not any(name in response.headers for name in IDENTITY_HEADERS)


def _ok(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    return response.get_json()  # type: ignore[no-any-return]
