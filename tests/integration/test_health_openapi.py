"""Probes, failing closed when a dependency is down, and the OpenAPI document's truthfulness."""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from tenantauth.app import create_app
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    claims_for,
    create_tenant,
    issue,
    sign,
)
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, add_client
from tests.support import ADMIN_TOKEN, NOW, Backend, FixedClock, make_settings

#: Port 1 refuses connections at once, so "storage down" costs no network timeout.
DEAD_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
DEAD_REDIS = "redis://127.0.0.1:1/0"
ACME = f"{TENANTS}/acme"
TWO_ADMIN_HEADERS = [("Authorization", f"Bearer {ADMIN_TOKEN}")] * 2
BAD_JSON = {"data": '{"oops": ', "content_type": "application/json"}
HUGE_JSON = {"data": '{"pad": "' + "x" * (64 * 1024) + '"}', "content_type": "application/json"}
#: A JSON body sent as another media type: a 415 wherever a body is JSON.
TEXT_BODY = {"data": "{}", "content_type": "text/plain"}
#: An imported secret (35 bytes, base64url) for the "rotate to the same secret" conflict.
IMPORTED = "aW1wb3J0ZWQtc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmctISE"
#: A well-formed token for "acme" signed with a key no tenant has.
FORGED = sign(secrets.token_bytes(32), claims_for("acme", NOW), "acme")

Send = Callable[[FlaskClient], TestResponse]
ONE = f"{TENANTS}/{{tenant_id}}"
OAUTH_BASE = "/v1/tenants/acme"
ROTATE = f"{ONE}/rotate"
TOKENS = f"{ONE}/tokens"
USER_REVOKE = f"{ONE}/users/{{username}}/revoke"
TOKEN_REVOKE = f"{ONE}/tokens/revoke"
SUBJECT_REVOKE = f"{ONE}/subjects/revoke"


def call(method: str, path: str, headers: Any = ADMIN, **kwargs: Any) -> Send:
    """Return a sender of one request (as the admin unless ``headers`` says otherwise)."""
    return lambda c: c.open(path, method=method, headers=headers, **kwargs)


def verify_issued(method: str, path: str = "/v1/verify") -> Send:
    """Return a sender that verifies a freshly issued token of "acme"."""
    if method == "GET":
        return lambda c: c.get(path, headers=bearer(issue(c, "acme")))
    return lambda c: c.post("/v1/verify", json={"token": issue(c, "acme")})


OAUTH = "/v1/tenants/{tenant_id}"
OAUTH_TOKEN, OAUTH_REVOKE, OAUTH_INTROSPECT = (
    f"{OAUTH}/{p}" for p in ("token", "revoke", "introspect")
)
OAUTH_METADATA = f"{OAUTH}/.well-known/oauth-authorization-server"
_BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
HUGE_FORM = {
    "data": "pad=" + "x" * (64 * 1024),
    "content_type": "application/x-www-form-urlencoded",
}


def oauth(path: str, form: dict[str, str] | None = None, auth: bool = True, **kwargs: Any) -> Send:
    """Return a sender of one OAuth request, as client tac_app of acme (added on first use)."""

    def send(c: FlaskClient) -> TestResponse:
        svc = c.application.extensions["tenantauth"]["services"]
        with svc.storage.transaction() as tx:
            exists = tx.get_tenant("acme") is not None and tx.clients.get("acme", CLIENT_ID)
        if not exists:
            add_client(svc, "acme")
        headers = {"Authorization": _BASIC} if auth else {}
        if form is None and not kwargs:
            return c.get(path, headers=headers)
        if form is not None:
            kwargs["data"] = form
        return c.post(path, headers=headers, **kwargs)

    return send


def oauth_locked(path: str, form: dict[str, str]) -> Send:
    """Return a sender that fails client authentication 5 times, then sends ``form`` (429)."""
    bad = {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:x".encode()).decode()}

    def send(c: FlaskClient) -> TestResponse:
        for _ in range(5):
            c.post(path, data=form, headers=bad)
        return oauth(path, form)(c)

    return send


def assert_oauth_error(response: TestResponse, status: int) -> None:
    """Assert an OAuth endpoint error: application/json with RFC 6749 §5.2 ``error``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert isinstance(body["error"], str)
    assert isinstance(body["error_description"], str)
    assert body["status"] == status


def assert_error(path: str, response: TestResponse, status: int) -> None:
    """Assert the error format of ``path``: OAuth endpoints add §5.2 members, JSON typed."""
    if path.startswith("/v1/tenants/") or path == ANY_INTROSPECT:
        assert_oauth_error(response, status)
    else:
        assert_problem(response, status)


USERS, CLIENTS = f"{ONE}/users", f"{ONE}/clients"
USER, CLIENT = f"{USERS}/{{username}}", f"{CLIENTS}/{{client_id}}"
ROTATE_SECRET = f"{CLIENT}/rotate-secret"
ALICE = {"username": "alice", "password": "correct horse battery"}
NEW_CLIENT = {"name": "C", "scopes": ["read"], "grant_types": ["client_credentials"]}
ACME_USERS, ACME_ALICE = f"{ACME}/users", f"{ACME}/users/alice"
ACME_CLIENTS, ACME_CLIENT = f"{ACME}/clients", f"{ACME}/clients/{{client}}"


def account(method: str, path: str, headers: Any = ADMIN, **kwargs: Any) -> Send:
    """Return a sender that first adds user alice and a client to acme; ``{client}`` in
    ``path`` becomes that client's id."""

    def send(c: FlaskClient) -> TestResponse:
        c.post(ACME_USERS, json=ALICE, headers=ADMIN)
        made = c.post(ACME_CLIENTS, json=NEW_CLIENT, headers=ADMIN).get_json()
        target = path.replace("{client}", made["client_id"])
        return c.open(target, method=method, headers=headers, **kwargs)

    return send


SERVERS = "/v1/admin/resource-servers"
SERVER, SERVER_ROTATE = f"{SERVERS}/{{server_id}}", f"{SERVERS}/{{server_id}}/rotate-secret"
ANY_INTROSPECT = "/v1/introspect"
NEW_SERVER = {"name": "S", "tenants": ["acme"]}
GHOST_SERVER = "tar_" + "A" * 22


def basic_header(user: str, secret: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _new_server(c: FlaskClient) -> dict[str, Any]:
    return c.post(SERVERS, json=NEW_SERVER, headers=ADMIN).get_json()  # type: ignore[no-any-return]


def server_admin_call(method: str, suffix: str, headers: Any = ADMIN, **kwargs: Any) -> Send:
    """Return a sender that first registers a resource server; ``{server}`` in ``suffix``
    becomes its admin URL."""

    def send(c: FlaskClient) -> TestResponse:
        url = suffix.replace("{server}", f"{SERVERS}/{_new_server(c)['id']}")
        return c.open(url, method=method, headers=headers, **kwargs)

    return send


def server_call(path: str, form: dict[str, str]) -> Send:
    """Return a sender of a form, authenticated as a resource server allowed for acme."""

    def send(c: FlaskClient) -> TestResponse:
        made = _new_server(c)
        return c.post(path, data=form, headers=basic_header(made["id"], made["secret"]))

    return send


def tenant_admin_call(method: str, path: str, **kwargs: Any) -> Send:
    """Return a sender acting with an admin key limited to acme (403 on global routes)."""

    def send(c: FlaskClient) -> TestResponse:
        key = c.post("/v1/admin/keys", json={"name": "k", "tenant_id": "acme"}, headers=ADMIN)
        return c.open(path, method=method, headers=bearer(key.get_json()["key"]), **kwargs)

    return send


CC = {"grant_type": "client_credentials"}
NEW_TENANT = {"id": "b2", "name": "B"}
# (method, OpenAPI path, status, how to provoke it); tenants acme, imported, paused exist.
OBSERVED: list[tuple[str, str, int, Send]] = [
    ("get", "/healthz", 200, call("GET", "/healthz", None)),
    ("get", "/readyz", 200, call("GET", "/readyz", None)),
    ("post", TENANTS, 201, call("POST", TENANTS, json=NEW_TENANT)),
    ("post", TENANTS, 400, call("POST", TENANTS, **BAD_JSON)),
    ("post", TENANTS, 401, call("POST", TENANTS, None, json=NEW_TENANT)),
    ("post", TENANTS, 409, call("POST", TENANTS, json={"id": "acme", "name": "A"})),
    ("post", TENANTS, 413, call("POST", TENANTS, **HUGE_JSON)),
    ("post", TENANTS, 415, call("POST", TENANTS, **TEXT_BODY)),
    ("post", TENANTS, 422, call("POST", TENANTS, json={"id": "B!", "name": "B"})),
    ("get", TENANTS, 200, call("GET", TENANTS)),
    ("get", TENANTS, 400, call("GET", TENANTS, TWO_ADMIN_HEADERS)),
    ("get", TENANTS, 401, call("GET", TENANTS, None)),
    ("get", TENANTS, 422, call("GET", TENANTS, query_string={"limit": 0})),
    ("get", ONE, 200, call("GET", ACME)),
    ("get", ONE, 400, call("GET", ACME, TWO_ADMIN_HEADERS)),
    ("get", ONE, 401, call("GET", ACME, None)),
    ("get", ONE, 404, call("GET", f"{TENANTS}/zz")),
    ("patch", ONE, 200, call("PATCH", ACME, json={})),
    ("patch", ONE, 400, call("PATCH", ACME, **BAD_JSON)),
    ("patch", ONE, 401, call("PATCH", ACME, None, json={})),
    ("patch", ONE, 404, call("PATCH", f"{TENANTS}/zz", json={})),
    ("patch", ONE, 413, call("PATCH", ACME, **HUGE_JSON)),
    ("patch", ONE, 415, call("PATCH", ACME, **TEXT_BODY)),
    ("patch", ONE, 422, call("PATCH", ACME, json={"status": "deleted"})),
    ("delete", ONE, 204, call("DELETE", ACME)),
    ("delete", ONE, 400, call("DELETE", ACME, TWO_ADMIN_HEADERS)),
    ("delete", ONE, 401, call("DELETE", ACME, None)),
    ("delete", ONE, 404, call("DELETE", f"{TENANTS}/zz")),
    ("post", ROTATE, 200, call("POST", f"{ACME}/rotate")),
    ("post", ROTATE, 400, call("POST", f"{ACME}/rotate", **BAD_JSON)),
    ("post", ROTATE, 401, call("POST", f"{ACME}/rotate", None)),
    ("post", ROTATE, 404, call("POST", f"{TENANTS}/zz/rotate")),
    ("post", ROTATE, 409, call("POST", f"{TENANTS}/imported/rotate", json={"secret": IMPORTED})),
    ("post", ROTATE, 413, call("POST", f"{ACME}/rotate", **HUGE_JSON)),
    ("post", ROTATE, 415, call("POST", f"{ACME}/rotate", **TEXT_BODY)),
    ("post", ROTATE, 422, call("POST", f"{ACME}/rotate", json={"secret": "c2hvcnQ"})),
    ("post", TOKENS, 201, call("POST", f"{ACME}/tokens", json={"sub": "u"})),
    ("post", TOKENS, 400, call("POST", f"{ACME}/tokens", **BAD_JSON)),
    ("post", TOKENS, 401, call("POST", f"{ACME}/tokens", None, json={"sub": "u"})),
    ("post", TOKENS, 404, call("POST", f"{TENANTS}/zz/tokens", json={"sub": "u"})),
    ("post", TOKENS, 409, call("POST", f"{TENANTS}/paused/tokens", json={"sub": "u"})),
    ("post", TOKENS, 413, call("POST", f"{ACME}/tokens", **HUGE_JSON)),
    ("post", TOKENS, 415, call("POST", f"{ACME}/tokens", **TEXT_BODY)),
    ("post", TOKENS, 422, call("POST", f"{ACME}/tokens", json={"sub": "u", "ttl": "9"})),
    ("post", USER_REVOKE, 200, call("POST", f"{ACME}/users/u/revoke")),
    ("post", USER_REVOKE, 400, call("POST", f"{ACME}/users/u/revoke", TWO_ADMIN_HEADERS)),
    ("post", USER_REVOKE, 401, call("POST", f"{ACME}/users/u/revoke", None)),
    ("post", USER_REVOKE, 404, call("POST", f"{TENANTS}/zz/users/u/revoke")),
    ("post", USER_REVOKE, 413, call("POST", f"{ACME}/users/u/revoke", **HUGE_JSON)),
    ("post", USER_REVOKE, 415, call("POST", f"{ACME}/users/u/revoke", **TEXT_BODY)),
    ("post", USER_REVOKE, 422, call("POST", f"{ACME}/users/a%0Ab/revoke")),
    ("post", SUBJECT_REVOKE, 200, call("POST", f"{ACME}/subjects/revoke", json={"sub": "a/b"})),
    ("post", SUBJECT_REVOKE, 400, call("POST", f"{ACME}/subjects/revoke", **BAD_JSON)),
    ("post", SUBJECT_REVOKE, 401, call("POST", f"{ACME}/subjects/revoke", None, json={})),
    ("post", SUBJECT_REVOKE, 404, call("POST", f"{TENANTS}/zz/subjects/revoke", json={"sub": "u"})),
    ("post", SUBJECT_REVOKE, 413, call("POST", f"{ACME}/subjects/revoke", **HUGE_JSON)),
    ("post", SUBJECT_REVOKE, 415, call("POST", f"{ACME}/subjects/revoke", **TEXT_BODY)),
    ("post", SUBJECT_REVOKE, 422, call("POST", f"{ACME}/subjects/revoke", json={})),
    ("post", TOKEN_REVOKE, 200, call("POST", f"{ACME}/tokens/revoke", json={"token": FORGED})),
    ("post", TOKEN_REVOKE, 400, call("POST", f"{ACME}/tokens/revoke", **BAD_JSON)),
    ("post", TOKEN_REVOKE, 401, call("POST", f"{ACME}/tokens/revoke", None, json={})),
    ("post", TOKEN_REVOKE, 413, call("POST", f"{ACME}/tokens/revoke", **HUGE_JSON)),
    ("post", TOKEN_REVOKE, 415, call("POST", f"{ACME}/tokens/revoke", **TEXT_BODY)),
    ("post", TOKEN_REVOKE, 422, call("POST", f"{ACME}/tokens/revoke", json={"x": 1})),
    ("get", "/v1/verify", 200, verify_issued("GET")),
    ("get", "/v1/verify", 401, call("GET", "/v1/verify", bearer(FORGED))),
    ("get", "/v1/verify/{forwarded}", 200, verify_issued("GET", "/v1/verify/api/x?y=z")),
    ("get", "/v1/verify/{forwarded}", 401, call("GET", "/v1/verify/a/b?c=d", bearer(FORGED))),
    ("get", "/v1/verify", 422, call("GET", "/v1/verify?aud=x", bearer(FORGED))),
    ("post", "/v1/verify", 200, verify_issued("POST")),
    ("post", "/v1/verify", 400, call("POST", "/v1/verify", None, **BAD_JSON)),
    ("post", "/v1/verify", 401, call("POST", "/v1/verify", None, json={"token": FORGED})),
    ("post", "/v1/verify", 413, call("POST", "/v1/verify", None, **HUGE_JSON)),
    ("post", "/v1/verify", 415, call("POST", "/v1/verify", None, **TEXT_BODY)),
    ("post", "/v1/verify", 422, call("POST", "/v1/verify", None, json={})),
    ("post", OAUTH_TOKEN, 200, oauth(f"{OAUTH_BASE}/token", CC)),
    ("post", OAUTH_TOKEN, 400, oauth(f"{OAUTH_BASE}/token", {"grant_type": "x"})),
    ("post", OAUTH_TOKEN, 401, oauth(f"{OAUTH_BASE}/token", CC, auth=False)),
    ("post", OAUTH_TOKEN, 404, oauth("/v1/tenants/A!/token", CC)),
    ("post", OAUTH_TOKEN, 413, oauth(f"{OAUTH_BASE}/token", None, **HUGE_FORM)),
    ("post", OAUTH_TOKEN, 415, oauth(f"{OAUTH_BASE}/token", None, json=CC)),
    ("post", OAUTH_TOKEN, 429, oauth_locked(f"{OAUTH_BASE}/token", CC)),
    ("post", OAUTH_REVOKE, 200, oauth(f"{OAUTH_BASE}/revoke", {"token": "x"})),
    ("post", OAUTH_REVOKE, 400, oauth(f"{OAUTH_BASE}/revoke", {})),
    ("post", OAUTH_REVOKE, 401, oauth(f"{OAUTH_BASE}/revoke", {"token": "x"}, auth=False)),
    ("post", OAUTH_REVOKE, 404, oauth("/v1/tenants/A!/revoke", {"token": "x"})),
    ("post", OAUTH_REVOKE, 413, oauth(f"{OAUTH_BASE}/revoke", None, **HUGE_FORM)),
    ("post", OAUTH_REVOKE, 415, oauth(f"{OAUTH_BASE}/revoke", None, json={"token": "x"})),
    ("post", OAUTH_REVOKE, 429, oauth_locked(f"{OAUTH_BASE}/revoke", {"token": "x"})),
    ("post", OAUTH_INTROSPECT, 200, oauth(f"{OAUTH_BASE}/introspect", {"token": "x"})),
    ("post", OAUTH_INTROSPECT, 400, oauth(f"{OAUTH_BASE}/introspect", {})),
    ("post", OAUTH_INTROSPECT, 401, oauth(f"{OAUTH_BASE}/introspect", {"token": "x"}, auth=False)),
    ("post", OAUTH_INTROSPECT, 404, oauth("/v1/tenants/A!/introspect", {"token": "x"})),
    ("post", OAUTH_INTROSPECT, 413, oauth(f"{OAUTH_BASE}/introspect", None, **HUGE_FORM)),
    ("post", OAUTH_INTROSPECT, 415, oauth(f"{OAUTH_BASE}/introspect", None, json={"token": "x"})),
    ("post", OAUTH_INTROSPECT, 429, oauth_locked(f"{OAUTH_BASE}/introspect", {"token": "x"})),
    ("get", OAUTH_METADATA, 200, oauth(f"{OAUTH_BASE}/.well-known/oauth-authorization-server")),
    ("get", OAUTH_METADATA, 404, oauth("/v1/tenants/zz/.well-known/oauth-authorization-server")),
    ("post", USERS, 201, call("POST", ACME_USERS, json=ALICE)),
    ("post", USERS, 400, call("POST", ACME_USERS, **BAD_JSON)),
    ("post", USERS, 401, call("POST", ACME_USERS, None, json=ALICE)),
    ("post", USERS, 404, call("POST", f"{TENANTS}/zz/users", json=ALICE)),
    ("post", USERS, 409, account("POST", ACME_USERS, json=ALICE)),
    ("post", USERS, 413, call("POST", ACME_USERS, **HUGE_JSON)),
    ("post", USERS, 415, call("POST", ACME_USERS, **TEXT_BODY)),
    ("post", USERS, 422, call("POST", ACME_USERS, json={"username": "alice"})),
    ("get", USERS, 200, call("GET", ACME_USERS)),
    ("get", USERS, 400, call("GET", ACME_USERS, TWO_ADMIN_HEADERS)),
    ("get", USERS, 401, call("GET", ACME_USERS, None)),
    ("get", USERS, 404, call("GET", f"{TENANTS}/zz/users")),
    ("get", USERS, 422, call("GET", f"{ACME_USERS}?limit=0")),
    ("get", USER, 200, account("GET", ACME_ALICE)),
    ("get", USER, 400, account("GET", ACME_ALICE, TWO_ADMIN_HEADERS)),
    ("get", USER, 401, account("GET", ACME_ALICE, None)),
    ("get", USER, 404, call("GET", f"{ACME_USERS}/ghost")),
    ("patch", USER, 200, account("PATCH", ACME_ALICE, json={"status": "disabled"})),
    ("patch", USER, 400, account("PATCH", ACME_ALICE, **BAD_JSON)),
    ("patch", USER, 401, account("PATCH", ACME_ALICE, None, json={})),
    ("patch", USER, 404, call("PATCH", f"{ACME_USERS}/ghost", json={})),
    ("patch", USER, 413, account("PATCH", ACME_ALICE, **HUGE_JSON)),
    ("patch", USER, 415, account("PATCH", ACME_ALICE, **TEXT_BODY)),
    ("patch", USER, 422, account("PATCH", ACME_ALICE, json={"status": "deleted"})),
    ("delete", USER, 204, account("DELETE", ACME_ALICE)),
    ("delete", USER, 400, account("DELETE", ACME_ALICE, TWO_ADMIN_HEADERS)),
    ("delete", USER, 401, account("DELETE", ACME_ALICE, None)),
    ("delete", USER, 404, call("DELETE", f"{ACME_USERS}/ghost")),
    ("post", CLIENTS, 201, call("POST", ACME_CLIENTS, json=NEW_CLIENT)),
    ("post", CLIENTS, 400, call("POST", ACME_CLIENTS, **BAD_JSON)),
    ("post", CLIENTS, 401, call("POST", ACME_CLIENTS, None, json=NEW_CLIENT)),
    ("post", CLIENTS, 404, call("POST", f"{TENANTS}/zz/clients", json=NEW_CLIENT)),
    ("post", CLIENTS, 413, call("POST", ACME_CLIENTS, **HUGE_JSON)),
    ("post", CLIENTS, 415, call("POST", ACME_CLIENTS, **TEXT_BODY)),
    ("post", CLIENTS, 422, call("POST", ACME_CLIENTS, json={"name": "C"})),
    ("get", CLIENTS, 200, call("GET", ACME_CLIENTS)),
    ("get", CLIENTS, 400, call("GET", ACME_CLIENTS, TWO_ADMIN_HEADERS)),
    ("get", CLIENTS, 401, call("GET", ACME_CLIENTS, None)),
    ("get", CLIENTS, 404, call("GET", f"{TENANTS}/zz/clients")),
    ("get", CLIENTS, 422, call("GET", f"{ACME_CLIENTS}?cursor=!!!")),
    ("get", CLIENT, 200, account("GET", ACME_CLIENT)),
    ("get", CLIENT, 400, account("GET", ACME_CLIENT, TWO_ADMIN_HEADERS)),
    ("get", CLIENT, 401, account("GET", ACME_CLIENT, None)),
    ("get", CLIENT, 404, call("GET", f"{ACME_CLIENTS}/tac_none")),
    ("patch", CLIENT, 200, account("PATCH", ACME_CLIENT, json={"name": "D"})),
    ("patch", CLIENT, 400, account("PATCH", ACME_CLIENT, **BAD_JSON)),
    ("patch", CLIENT, 401, account("PATCH", ACME_CLIENT, None, json={})),
    ("patch", CLIENT, 404, call("PATCH", f"{ACME_CLIENTS}/tac_none", json={})),
    ("patch", CLIENT, 413, account("PATCH", ACME_CLIENT, **HUGE_JSON)),
    ("patch", CLIENT, 415, account("PATCH", ACME_CLIENT, **TEXT_BODY)),
    ("patch", CLIENT, 422, account("PATCH", ACME_CLIENT, json={"scopes": ["a b"]})),
    ("delete", CLIENT, 204, account("DELETE", ACME_CLIENT)),
    ("delete", CLIENT, 400, account("DELETE", ACME_CLIENT, TWO_ADMIN_HEADERS)),
    ("delete", CLIENT, 401, account("DELETE", ACME_CLIENT, None)),
    ("delete", CLIENT, 404, call("DELETE", f"{ACME_CLIENTS}/tac_none")),
    ("post", ROTATE_SECRET, 200, account("POST", f"{ACME_CLIENT}/rotate-secret")),
    (
        "post",
        ROTATE_SECRET,
        400,
        account("POST", f"{ACME_CLIENT}/rotate-secret", TWO_ADMIN_HEADERS),
    ),
    ("post", ROTATE_SECRET, 401, account("POST", f"{ACME_CLIENT}/rotate-secret", None)),
    ("post", ROTATE_SECRET, 404, call("POST", f"{ACME_CLIENTS}/tac_none/rotate-secret")),
    ("post", ANY_INTROSPECT, 200, server_call(ANY_INTROSPECT, {"token": "x"})),
    ("post", ANY_INTROSPECT, 400, server_call(ANY_INTROSPECT, {})),
    ("post", ANY_INTROSPECT, 401, oauth(ANY_INTROSPECT, {"token": "x"})),
    ("post", ANY_INTROSPECT, 413, oauth(ANY_INTROSPECT, None, **HUGE_FORM)),
    ("post", ANY_INTROSPECT, 429, oauth_locked(ANY_INTROSPECT, {"token": "x"})),
    ("post", SERVERS, 201, call("POST", SERVERS, json=NEW_SERVER)),
    ("post", SERVERS, 400, call("POST", SERVERS, **BAD_JSON)),
    ("post", SERVERS, 401, call("POST", SERVERS, None, json=NEW_SERVER)),
    ("post", SERVERS, 403, tenant_admin_call("POST", SERVERS, json=NEW_SERVER)),
    ("post", SERVERS, 404, call("POST", SERVERS, json={"name": "S", "tenants": ["zz"]})),
    ("post", SERVERS, 413, call("POST", SERVERS, **HUGE_JSON)),
    ("post", SERVERS, 422, call("POST", SERVERS, json={"name": "S"})),
    ("get", SERVERS, 200, call("GET", SERVERS)),
    ("get", SERVERS, 400, call("GET", SERVERS, TWO_ADMIN_HEADERS)),
    ("get", SERVERS, 401, call("GET", SERVERS, None)),
    ("get", SERVERS, 403, tenant_admin_call("GET", SERVERS)),
    ("get", SERVERS, 422, call("GET", f"{SERVERS}?limit=0")),
    ("get", SERVER, 200, server_admin_call("GET", "{server}")),
    ("get", SERVER, 400, server_admin_call("GET", "{server}", TWO_ADMIN_HEADERS)),
    ("get", SERVER, 401, server_admin_call("GET", "{server}", None)),
    ("get", SERVER, 403, tenant_admin_call("GET", f"{SERVERS}/{GHOST_SERVER}")),
    ("get", SERVER, 404, call("GET", f"{SERVERS}/{GHOST_SERVER}")),
    ("patch", SERVER, 200, server_admin_call("PATCH", "{server}", json={"name": "T"})),
    ("patch", SERVER, 400, server_admin_call("PATCH", "{server}", **BAD_JSON)),
    ("patch", SERVER, 401, server_admin_call("PATCH", "{server}", None, json={})),
    ("patch", SERVER, 403, tenant_admin_call("PATCH", f"{SERVERS}/{GHOST_SERVER}", json={})),
    ("patch", SERVER, 404, call("PATCH", f"{SERVERS}/{GHOST_SERVER}", json={})),
    ("patch", SERVER, 413, server_admin_call("PATCH", "{server}", **HUGE_JSON)),
    ("patch", SERVER, 422, server_admin_call("PATCH", "{server}", json={"tenants": "acme"})),
    ("delete", SERVER, 204, server_admin_call("DELETE", "{server}")),
    ("delete", SERVER, 400, server_admin_call("DELETE", "{server}", TWO_ADMIN_HEADERS)),
    ("delete", SERVER, 401, server_admin_call("DELETE", "{server}", None)),
    ("delete", SERVER, 403, tenant_admin_call("DELETE", f"{SERVERS}/{GHOST_SERVER}")),
    ("delete", SERVER, 404, call("DELETE", f"{SERVERS}/{GHOST_SERVER}")),
    ("post", SERVER_ROTATE, 200, server_admin_call("POST", "{server}/rotate-secret")),
    (
        "post",
        SERVER_ROTATE,
        400,
        server_admin_call("POST", "{server}/rotate-secret", TWO_ADMIN_HEADERS),
    ),
    ("post", SERVER_ROTATE, 401, server_admin_call("POST", "{server}/rotate-secret", None)),
    (
        "post",
        SERVER_ROTATE,
        403,
        tenant_admin_call("POST", f"{SERVERS}/{GHOST_SERVER}/rotate-secret"),
    ),
    ("post", SERVER_ROTATE, 404, call("POST", f"{SERVERS}/{GHOST_SERVER}/rotate-secret")),
    ("post", ROTATE_SECRET, 413, account("POST", f"{ACME_CLIENT}/rotate-secret", **HUGE_JSON)),
    ("post", ROTATE_SECRET, 415, account("POST", f"{ACME_CLIENT}/rotate-secret", **TEXT_BODY)),
    ("post", ROTATE_SECRET, 422, account("POST", f"{ACME_CLIENT}/rotate-secret", json={"x": 1})),
]
#: (method, OpenAPI path, how to call it) for what only a dead database provokes: 503.
#: (/readyz needs the cache dead too: test_readyz_unavailable_is_documented.)
UNAVAILABLE: list[tuple[str, str, Send]] = [
    ("post", TENANTS, call("POST", TENANTS, json=NEW_TENANT)),
    ("get", TENANTS, call("GET", TENANTS)),
    ("get", ONE, call("GET", ACME)),
    ("patch", ONE, call("PATCH", ACME, json={})),
    ("delete", ONE, call("DELETE", ACME)),
    ("post", ROTATE, call("POST", f"{ACME}/rotate")),
    ("post", TOKENS, call("POST", f"{ACME}/tokens", json={"sub": "u"})),
    ("post", USER_REVOKE, call("POST", f"{ACME}/users/u/revoke")),
    ("post", SUBJECT_REVOKE, call("POST", f"{ACME}/subjects/revoke", json={"sub": "a/b"})),
    ("post", TOKEN_REVOKE, call("POST", f"{ACME}/tokens/revoke", json={"token": FORGED})),
    ("get", "/v1/verify", call("GET", "/v1/verify", bearer(FORGED))),
    ("post", "/v1/verify", call("POST", "/v1/verify", None, json={"token": FORGED})),
    ("post", OAUTH_TOKEN, call("POST", f"{OAUTH_BASE}/token", {"Authorization": _BASIC}, data=CC)),
    (
        "post",
        OAUTH_REVOKE,
        call("POST", f"{OAUTH_BASE}/revoke", {"Authorization": _BASIC}, data={"token": "x"}),
    ),
    (
        "post",
        OAUTH_INTROSPECT,
        call("POST", f"{OAUTH_BASE}/introspect", {"Authorization": _BASIC}, data={"token": "x"}),
    ),
    (
        "get",
        OAUTH_METADATA,
        call("GET", f"{OAUTH_BASE}/.well-known/oauth-authorization-server", None),
    ),
    ("post", USERS, call("POST", ACME_USERS, json=ALICE)),
    ("get", USERS, call("GET", ACME_USERS)),
    ("get", USER, call("GET", ACME_ALICE)),
    ("patch", USER, call("PATCH", ACME_ALICE, json={})),
    ("delete", USER, call("DELETE", ACME_ALICE)),
    ("post", CLIENTS, call("POST", ACME_CLIENTS, json=NEW_CLIENT)),
    ("get", CLIENTS, call("GET", ACME_CLIENTS)),
    ("get", CLIENT, call("GET", f"{ACME_CLIENTS}/tac_x")),
    ("patch", CLIENT, call("PATCH", f"{ACME_CLIENTS}/tac_x", json={})),
    ("delete", CLIENT, call("DELETE", f"{ACME_CLIENTS}/tac_x")),
    ("post", ROTATE_SECRET, call("POST", f"{ACME_CLIENTS}/tac_x/rotate-secret")),
    (
        "post",
        ANY_INTROSPECT,
        call("POST", ANY_INTROSPECT, basic_header(GHOST_SERVER, "s"), data={"token": "x"}),
    ),
    ("post", SERVERS, call("POST", SERVERS, json=NEW_SERVER)),
    ("get", SERVERS, call("GET", SERVERS)),
    ("get", SERVER, call("GET", f"{SERVERS}/{GHOST_SERVER}")),
    ("patch", SERVER, call("PATCH", f"{SERVERS}/{GHOST_SERVER}", json={})),
    ("delete", SERVER, call("DELETE", f"{SERVERS}/{GHOST_SERVER}")),
    ("post", SERVER_ROTATE, call("POST", f"{SERVERS}/{GHOST_SERVER}/rotate-secret")),
]


@pytest.fixture
def dead_storage_app(backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app whose database refuses connections; the cache is the backend's (none or Redis)."""
    settings = make_settings(
        backend, tmp_path, database_url=DEAD_DATABASE, auto_migrate=False, db_timeout=0.2
    )
    app = create_app(settings, clock=clock)
    yield app
    app.extensions["tenantauth"]["services"].close()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The served OpenAPI document, read once per module: it depends on the settings, which
    every app here shares, not on the backend or the data (test_document_is_the_same_on_
    every_backend). Building it is most of an app's start-up (api/docs.py, ``spec``)."""
    state = tmp_path_factory.mktemp("spec")
    backend = Backend("sqlite", f"sqlite:///{state / 'tenantauth.db'}", None)
    app = create_app(make_settings(backend, state))
    try:
        yield assert_json(app.test_client().get("/openapi.json"), 200)
    finally:
        app.extensions["tenantauth"]["services"].close()


def test_document_is_the_same_on_every_backend(client: FlaskClient, spec: dict[str, Any]) -> None:
    """Each backend's app serves the document the module's ``spec`` holds."""
    assert assert_json(client.get("/openapi.json"), 200) == spec


def test_concurrent_first_reads_get_the_whole_document(app: Flask, spec: dict[str, Any]) -> None:
    """The document is built on first read (api/docs.py): eight threads reading it at once
    on a fresh app each get all of it, once (no operation missing, none registered twice)."""
    barrier = threading.Barrier(8)

    def read() -> Any:
        barrier.wait()
        return assert_json(app.test_client().get("/openapi.json"), 200)

    with ThreadPoolExecutor(8) as pool:
        documents = list(pool.map(lambda _: read(), range(8)))
    assert all(document == spec for document in documents)


def _documented(spec: dict[str, Any], method: str, path: str) -> set[int]:
    responses = spec["paths"][path][method]["responses"]
    return {int(code) for code in responses if code != "default"}


# --------------------------------------------------------------------------- probes


def test_healthz_answers_ok(client: FlaskClient) -> None:
    """/healthz is 200 {"status": "ok"} with no-store."""
    r = client.get("/healthz")
    assert assert_json(r, 200) == {"status": "ok"}
    assert r.headers["Cache-Control"] == "no-store"


def test_readyz_reports_each_dependency(client: FlaskClient, backend: Backend) -> None:
    """/readyz is 200 "ready" naming each dependency's state, and no URL or secret."""
    r = client.get("/readyz")
    body = assert_json(r, 200)
    assert body["status"] == "ready" and body["reasons"] == []
    database = body["dependencies"]["database"]
    assert database["configured"] is True and database["ok"] is True
    assert 0 <= database["latency_ms"] < 5000
    cache = body["dependencies"]["cache"]
    if backend.redis_url:
        assert cache["ok"] is True and cache["eviction_policy"] == "noeviction"
    else:  # embedded mode: SQLite only
        assert cache == {"configured": False}
    assert "://" not in r.get_data(as_text=True)


def test_healthz_touches_no_dependency(dead_storage_app: Flask) -> None:
    """/healthz stays 200 while the database is down: it touches nothing."""
    client = dead_storage_app.test_client()
    assert assert_json(client.get("/healthz"), 200) == {"status": "ok"}


def test_readyz_with_storage_down_depends_on_the_cache(
    dead_storage_app: Flask, backend: Backend
) -> None:
    """Database down: 200 "degraded" while Redis can serve warm tenants; a 503 problem
    ("unavailable") when there is no cache (embedded) to answer from."""
    r = dead_storage_app.test_client().get("/readyz")
    if backend.redis_url:
        body = assert_json(r, 200)
        assert body["status"] == "degraded"
        assert "database unavailable" in body["reasons"][0]
    else:
        body = assert_problem(r, 503, "not_ready")
        assert body["readiness"] == "unavailable"
        assert body["dependencies"]["cache"] == {"configured": False}
    assert body["dependencies"]["database"]["ok"] is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_verify_fails_closed_when_storage_is_down(dead_storage_app: Flask, method: str) -> None:
    """With the database down and nothing cached, verify is 503 — never 200, 401 or 500."""
    client = dead_storage_app.test_client()
    token = FORGED
    if method == "GET":
        r = client.get("/v1/verify", headers=bearer(token))
    else:
        r = client.post("/v1/verify", json={"token": token})
    assert_problem(r, 503, "storage_unavailable")
    assert "WWW-Authenticate" not in r.headers


def test_admin_writes_fail_closed_when_storage_is_down(dead_storage_app: Flask) -> None:
    """With the database down, creating and rotating are 503 problems."""
    client = dead_storage_app.test_client()
    r = client.post(TENANTS, json={"id": "acme", "name": "A"}, headers=ADMIN)
    assert_problem(r, 503, "storage_unavailable")
    assert_problem(client.post(f"{ACME}/rotate", headers=ADMIN), 503, "storage_unavailable")


def test_readyz_stays_ready_when_redis_is_down(
    postgres_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """With Redis unreachable, /readyz is 200 "degraded" blaming the cache only.

    (What verify and rotate do meanwhile is covered in test_dependency_outage.py.)
    """
    settings = make_settings(postgres_backend, tmp_path, redis_url=DEAD_REDIS, redis_timeout=0.1)
    app = create_app(settings, clock=clock)
    try:
        body = assert_json(app.test_client().get("/readyz"), 200)
        assert body["status"] == "degraded"
        assert body["dependencies"]["database"]["ok"] is True
        assert body["dependencies"]["cache"]["ok"] is False
        assert "eviction_policy" not in body["dependencies"]["cache"]
        assert ["cache unavailable" in reason for reason in body["reasons"]] == [True]
        assert assert_json(app.test_client().get("/healthz"), 200) == {"status": "ok"}
    finally:
        app.extensions["tenantauth"]["services"].close()


# --------------------------------------------------------------------------- OpenAPI


def test_openapi_document_is_valid(spec: dict[str, Any]) -> None:
    """/openapi.json is a valid OpenAPI 3.1 document."""
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_every_route_is_documented_and_nothing_else(app: Flask, spec: dict[str, Any]) -> None:
    """Every URL rule (but static and the spec itself) is in the spec with its methods, and
    the spec documents no operation the app lacks."""
    routed: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "api-docs.openapi_json"}:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routed |= {(m.lower(), path) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert routed == documented
    assert len(routed) == 14 + 6 + 8 + 11 + 5 + 1 + 6
    # + a tenant's keys: list, rollover, publish next, the rollover policy (get, put, delete)
    # + OAuth: token, revoke, introspect (per tenant and tenant-less), metadata, JWKS, and
    #   the metadata at RFC 8414 §3.1's and OpenID Discovery's places
    # + users (create, list, show, patch, delete) and clients (the same, and rotate-secret)
    # + admin keys (create, list, show, revoke) and the audit listing
    # + GET /v1/verify/{forwarded} (gateways that append the protected request's path)
    # + resource servers (create, list, show, patch, delete, rotate-secret)


@pytest.mark.parametrize("case", OBSERVED, ids=[f"{m.upper()} {p} {s}" for m, p, s, _ in OBSERVED])
def test_observed_status_is_documented(
    client: FlaskClient, spec: dict[str, Any], case: tuple[str, str, int, Send]
) -> None:
    """The route answers this status, and the spec documents it for that operation."""
    method, path, status, send = case
    create_tenant(client, "acme")
    create_tenant(client, "imported", secret=IMPORTED)
    create_tenant(client, "paused")
    client.patch(f"{TENANTS}/paused", json={"status": "suspended"}, headers=ADMIN)
    r = send(client)
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert_error(path, r, status)
    assert status in _documented(spec, method, path)


@pytest.mark.parametrize(
    ("method", "path", "send"),
    UNAVAILABLE,
    ids=[f"{m.upper()} {p} 503" for m, p, _ in UNAVAILABLE],
)
def test_unavailable_status_is_documented(
    dead_storage_app: Flask, spec: dict[str, Any], method: str, path: str, send: Send
) -> None:
    """With the database down the route answers a 503 problem, and the spec documents 503."""
    r = send(dead_storage_app.test_client())
    assert_error(path, r, 503)
    assert 503 in _documented(spec, method, path)


def test_readyz_unavailable_is_documented(
    postgres_backend: Backend, tmp_path: Path, clock: FixedClock, spec: dict[str, Any]
) -> None:
    """Database and Redis both down: /readyz is the documented 503 problem "unavailable"."""
    settings = make_settings(
        postgres_backend,
        tmp_path,
        database_url=DEAD_DATABASE,
        redis_url=DEAD_REDIS,
        auto_migrate=False,
        db_timeout=0.2,
        redis_timeout=0.1,
    )
    app = create_app(settings, clock=clock)
    try:
        problem = assert_problem(app.test_client().get("/readyz"), 503, "not_ready")
    finally:
        app.extensions["tenantauth"]["services"].close()
    assert problem["readiness"] == "unavailable"
    assert problem["reasons"] == ["database and cache are both unavailable"]
    assert {200, 503} <= _documented(spec, "get", "/readyz")


def test_request_bodies_refuse_unknown_fields(spec: dict[str, Any]) -> None:
    """Every documented request body is an object schema with additionalProperties false."""
    schemas = spec["components"]["schemas"]
    bodies = forms = 0
    for operations in spec["paths"].values():
        for method, operation in operations.items():
            if method == "parameters" or "requestBody" not in operation:
                continue
            content = operation["requestBody"]["content"]
            if "application/x-www-form-urlencoded" in content:
                # RFC 6749 §3.2: OAuth endpoints must ignore unrecognised parameters.
                ref = content["application/x-www-form-urlencoded"]["schema"]["$ref"]
                assert schemas[ref.rsplit("/", 1)[-1]].get("additionalProperties") is not False
                forms += 1
                continue
            ref = content["application/json"]["schema"]["$ref"]
            schema = schemas[ref.rsplit("/", 1)[-1]]
            assert schema["type"] == "object"
            assert schema["additionalProperties"] is False, ref
            bodies += 1
    # tenants: create, patch, rotate; tokens: issue, revoke; subjects/revoke; POST /v1/verify
    # + users and clients: create and patch each; + admin key create
    # + the actions without parameters: user revoke, rotate-secret, admin key revoke
    # + resource servers: create, patch and rotate-secret (without parameters)
    # + a tenant's keys: rollover, publish next, put the rollover policy
    assert bodies == 7 + 4 + 1 + 3 + 3 + 3
    assert forms == 4  # OAuth token, revoke, introspect (per tenant and tenant-less)


def test_every_body_is_declared_and_its_refusals_documented(spec: dict[str, Any]) -> None:
    """Every POST and PATCH declares its body (so none ignores one), and documents the 400
    of a body the parser refuses, the 413 of one too large and the 415 of one not JSON."""
    for path, operations in spec["paths"].items():
        for method in ("post", "patch"):
            if method in operations:
                operation = operations[method]
                assert "requestBody" in operation, (method, path)
                assert {"400", "413", "415"} <= operation["responses"].keys(), (method, path)


def test_spec_states_the_tenant_id_pattern_portably(spec: dict[str, Any]) -> None:
    """The id pattern is the issue's ECMA-262 regex, anchored, with no Python-only escapes."""
    create = spec["components"]["schemas"]["TenantCreateRequest"]
    assert create["properties"]["id"]["pattern"] == "^[a-z0-9][a-z0-9-]{1,62}$"
    assert create["required"] == ["id", "name"]


def test_spec_documents_verify_headers_and_security(spec: dict[str, Any]) -> None:
    """GET /v1/verify documents its identity headers; admin operations require the admin token."""
    ok = spec["paths"]["/v1/verify"]["get"]["responses"]["200"]
    assert {"X-Tenant-Id", "X-Subject", "X-Scope"} <= ok["headers"].keys()
    params = spec["paths"]["/v1/verify"]["get"]["parameters"]
    assert [(p["in"], p["name"]) for p in params] == [("query", "audience")]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith(TENANTS) and method != "parameters":
                assert operation["security"] == [{"adminToken": []}], (method, path)
