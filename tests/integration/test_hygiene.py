"""Request limits (body, headers, JSON depth), admin rate limits and security headers.

Each runs on both backends (SQLite without Redis: in-process counters; PostgreSQL + Redis:
shared counters) through the Flask test client; tests/integration/test_hygiene_served.py
checks the same limits through gunicorn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tenantauth.api.hygiene import json_depth, request_line_length
from tenantauth.app import create_app
from tenantauth.settings import MAX_HEADER_FIELD_BYTES, MAX_HEADER_FIELDS, MAX_REQUEST_LINE_BYTES
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
    issue,
)
from tests.support import Backend, FixedClock, make_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"
#: Written out, not imported from the code under test, so dropping one fails the test.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def nested(depth: int) -> Any:
    """Return ``{"name": [[...[1]...]]}`` whose JSON nests ``depth`` levels in all."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return {"name": value}


@pytest.fixture
def limited_app(backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app with small limits: 1 KiB bodies, depth 4, 3 admin requests per credential and
    5 per address per minute."""
    settings = make_settings(
        backend,
        tmp_path,
        max_body_bytes=1024,
        max_json_depth=4,
        admin_rate_limit=3,
        admin_ip_rate_limit=5,
        admin_rate_window=60,
    )
    application = create_app(settings, clock=clock)
    yield application
    application.extensions["tenantauth"]["services"].close()


@pytest.fixture
def limited(limited_app: Flask) -> FlaskClient:
    """The test client of ``limited_app``."""
    return limited_app.test_client()


# --------------------------------------------------------------------------- body size


def test_body_over_the_configured_limit_is_413(limited: FlaskClient) -> None:
    """MAX_BODY_BYTES is honoured: 1025 bytes is a 413 problem, nothing is created."""
    body = json.dumps({"id": "acme", "name": "x" * 1000})
    assert len(body) > 1024
    r = limited.post(TENANTS, data=body, content_type="application/json", headers=ADMIN)
    assert_problem(r, 413, "request_entity_too_large")
    assert limited.get(f"{TENANTS}/acme", headers=ADMIN).status_code == 404


def test_body_under_the_configured_limit_is_served(limited: FlaskClient) -> None:
    """A body under MAX_BODY_BYTES is served as usual."""
    assert_json(limited.post(TENANTS, json={"id": "acme", "name": "A"}, headers=ADMIN), 201)


def test_oversized_form_is_413_on_the_oauth_endpoint(limited: FlaskClient) -> None:
    """The limit covers form bodies too (the OAuth token endpoint)."""
    r = limited.post("/v1/tenants/acme/token", data={"grant_type": "x" * 2000})
    assert r.status_code == 413


# --------------------------------------------------------------------------- JSON depth


@pytest.mark.parametrize("path", [TENANTS, "/v1/verify"])
def test_json_deeper_than_the_limit_is_400(limited: FlaskClient, path: str) -> None:
    """A body nesting 5 levels (limit 4) is a 400 problem on admin and public endpoints."""
    r = limited.post(path, json=nested(5), headers=ADMIN)
    body = assert_problem(r, 400, "invalid_request")
    assert "nests deeper than 4" in body["detail"]


def test_json_at_the_limit_reaches_the_schema(limited: FlaskClient) -> None:
    """Depth 4 passes the depth check; the schema then refuses the body (422, not 400)."""
    assert_problem(limited.post(TENANTS, json=nested(4), headers=ADMIN), 422)


def test_json_nested_past_the_parser_is_400(client: FlaskClient) -> None:
    """Nesting that exhausts the parser's recursion (30,000 levels, < 64 KiB) is a 400."""
    data = "[" * 30_000 + "]" * 30_000
    r = client.post(TENANTS, data=data, content_type="application/json", headers=ADMIN)
    assert_problem(r, 400, "invalid_request")


def test_json_suffix_types_are_checked(limited: FlaskClient) -> None:
    """``application/*+json`` bodies are JSON too (webargs parses them): depth applies."""
    data = json.dumps(nested(6))
    r = limited.post(TENANTS, data=data, content_type="application/merge-patch+json")
    assert_problem(r, 400, "invalid_request")


def test_malformed_json_keeps_its_usual_problem(limited: FlaskClient) -> None:
    """Malformed JSON is still the view's 400, not a depth error."""
    r = limited.post(TENANTS, data='{"id": ', content_type="application/json", headers=ADMIN)
    body = assert_problem(r, 400)
    assert "deeper" not in body["detail"]


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), ([], 1), ({}, 1), ([1, [2]], 2), ({"a": [{"b": {}}]}, 4)],
)
def test_json_depth_counts_containers(value: Any, depth: int) -> None:
    """json_depth counts nested lists and dicts, scalars add nothing."""
    assert json_depth(value) == depth


# --------------------------------------------------------------------------- request line

#: "GET " + target + " HTTP/1.1": what a request line adds to its target.
LINE_OVERHEAD = len("GET  HTTP/1.1")


def query_of_line(length: int, path: str = "/healthz") -> str:
    """Return ``path`` with a query making the request line exactly ``length`` bytes."""
    return path + "?pad=" + "a" * (length - LINE_OVERHEAD - len(path) - len("?pad="))


@pytest.mark.parametrize("path", ["/healthz", "/v1/verify", "/v1/admin/tenants"])
def test_request_line_over_the_limit_is_414(client: FlaskClient, path: str) -> None:
    """A request line one byte over gunicorn's limit is a 414 problem from the app itself
    (granian has no limit of its own), the gateway endpoint included."""
    r = client.get(query_of_line(MAX_REQUEST_LINE_BYTES + 1, path))
    assert_problem(r, 414, "request_uri_too_long")


def test_request_line_at_the_limit_is_served(client: FlaskClient) -> None:
    """A request line of exactly the limit passes the check (gunicorn accepts it too)."""
    assert client.get(query_of_line(MAX_REQUEST_LINE_BYTES)).status_code == 200


def test_request_line_length_is_measured_as_sent() -> None:
    """The length is the server's raw target when it gives one, else the path escaped again
    (a decoded space counts 3 bytes, as %20) and the query."""
    environ = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/a b"}
    assert request_line_length(environ | {"QUERY_STRING": "x=1"}) == len("GET /a%20b?x=1 HTTP/1.1")
    assert request_line_length(environ | {"RAW_URI": "/a+b"}) == len("GET /a+b HTTP/1.1")


# --------------------------------------------------------------------------- headers


def test_too_many_headers_is_431(client: FlaskClient) -> None:
    """More header fields than gunicorn's limit is a 431 problem from the app itself."""
    extra = {f"X-Pad-{i}": "1" for i in range(MAX_HEADER_FIELDS)}
    assert_problem(client.get("/healthz", headers=extra), 431, "request_header_fields_too_large")


def test_oversized_header_line_is_431(client: FlaskClient) -> None:
    """One header line longer than the field limit is a 431 problem."""
    r = client.get("/healthz", headers={"X-Pad": "x" * MAX_HEADER_FIELD_BYTES})
    assert_problem(r, 431, "request_header_fields_too_large")


def test_headers_within_limits_are_served(client: FlaskClient) -> None:
    """A request near (under) both header limits is served."""
    extra = {f"X-Pad-{i}": "1" for i in range(MAX_HEADER_FIELDS - 5)}
    extra["X-Long"] = "x" * (MAX_HEADER_FIELD_BYTES - 100)
    assert client.get("/healthz", headers=extra).status_code == 200


# --------------------------------------------------------------------------- admin rate limits


def test_admin_credential_over_its_limit_is_429(limited: FlaskClient) -> None:
    """The 4th admin request of one credential in a window is a 429 problem with a
    Retry-After within the window."""
    for _ in range(3):
        assert_json(limited.get(TENANTS, headers=ADMIN), 200)
    r = limited.get(TENANTS, headers=ADMIN)
    body = assert_problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "admin requests" in body["detail"]


def test_wrong_credentials_are_counted_before_authentication(limited: FlaskClient) -> None:
    """Guesses count: a bad token gets 401 three times, then 429 without being checked."""
    guess = bearer("g" * 40)
    for _ in range(3):
        assert_problem(limited.get(TENANTS, headers=guess), 401)
    assert_problem(limited.get(TENANTS, headers=guess), 429, "rate_limited")


def test_address_limit_spans_credentials(limited: FlaskClient) -> None:
    """One address is refused after 5 requests even when each carries another credential;
    another address is not."""
    for i in range(5):
        assert_problem(limited.get(TENANTS, headers=bearer(f"{i}" * 40)), 401)
    assert_problem(limited.get(TENANTS, headers=bearer("z" * 40)), 429, "rate_limited")
    other = {"REMOTE_ADDR": "2001:db8::7"}
    assert_json(limited.get(TENANTS, headers=ADMIN, environ_base=other), 200)


def test_non_admin_paths_are_not_admin_limited(limited: FlaskClient) -> None:
    """Probes, verification and OAuth endpoints do not count against the admin limits."""
    for _ in range(10):
        assert limited.get("/healthz").status_code == 200
        assert limited.get("/v1/verify", headers=bearer("a.b.c")).status_code == 401
    assert_json(limited.get(TENANTS, headers=ADMIN), 200)


def test_admin_limit_fails_open_when_its_store_is_down(
    sqlite_backend: Backend, tmp_path: Path, clock: FixedClock
) -> None:
    """With the limiter's Redis unreachable, admin requests are served (not 503, not 429):
    the admin credential is still checked, and an outage must not lock operators out."""
    backend = Backend("sqlite-dead-redis", sqlite_backend.database_url, DEAD_REDIS)
    settings = make_settings(backend, tmp_path, admin_rate_limit=1, admin_ip_rate_limit=1)
    application = create_app(settings, clock=clock)
    try:
        c = application.test_client()
        for _ in range(3):
            assert_json(c.get(TENANTS, headers=ADMIN), 200)
        assert_problem(c.get(TENANTS, headers=bearer("g" * 40)), 401)
    finally:
        application.extensions["tenantauth"]["services"].close()


# --------------------------------------------------------------------------- security headers


def _responses(client: FlaskClient) -> dict[str, Any]:
    """Return one response of each kind: success, token, secret, problem, 405, docs."""
    create_tenant(client, "acme")
    return {
        "health": client.get("/healthz"),
        "tenant": client.get(f"{TENANTS}/acme", headers=ADMIN),
        "rotate": client.post(f"{TENANTS}/acme/rotate", json={}, headers=ADMIN),
        "issue": client.post(f"{TENANTS}/acme/tokens", json={"sub": "u"}, headers=ADMIN),
        "verify": client.get("/v1/verify", headers=bearer(issue(client, "acme"))),
        "oauth_error": client.post("/v1/tenants/acme/token", data={"grant_type": "x"}),
        "problem": client.get(f"{TENANTS}/nope", headers=ADMIN),
        "not_allowed": client.put(TENANTS, headers=ADMIN),
        "openapi": client.get("/openapi.json"),
    }


def test_every_response_carries_the_security_headers(client: FlaskClient) -> None:
    """Successes, token and secret responses, problems, 405s and the spec all carry
    no-store, Pragma, nosniff, framing and referrer protection."""
    for name, response in _responses(client).items():
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (name, header, response.headers)
        assert response.headers["X-Request-Id"], name
