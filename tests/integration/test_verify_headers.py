"""Claims copied into response headers can never break or inject into the response."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import (
    ADMIN,
    assert_json,
    assert_problem,
    bearer,
    claims_for,
    create_tenant,
    issue,
    new_secret,
    sign,
)
from tests.support import FixedClock

HOSTILE = ["a\nb", "a\r\nX-Injected: 1", "用户", "ü", "100%", "tab\there", "\x00", "\u2028"]


@pytest.mark.parametrize("sub", HOSTILE, ids=repr)
def test_foreign_token_with_any_sub_gets_a_decodable_header(
    client: FlaskClient, clock: FixedClock, sub: str
) -> None:
    """A token signed elsewhere (imported secret) with any sub verifies with 200; X-Subject
    percent-decodes to the exact claim and no header is injected."""
    key, text = new_secret()
    create_tenant(client, "acme", secret=text)
    token = sign(key, claims_for("acme", clock.now(), sub=sub, scope="read"), "acme")
    r = client.get("/v1/verify", headers=bearer(token))
    body = assert_json(r, 200)
    assert body["claims"]["sub"] == sub
    assert unquote(r.headers["X-Subject"]) == sub
    assert all(0x20 <= ord(c) < 0x7F for c in r.headers["X-Subject"])
    assert "X-Injected" not in r.headers


def test_plain_ascii_sub_and_scope_are_sent_unchanged(client: FlaskClient) -> None:
    """Printable-ASCII values without % need no decoding."""
    create_tenant(client, "acme")
    token = issue(client, "acme", sub="user 42@example.com", scope="read write:all")
    r = client.get("/v1/verify", headers=bearer(token))
    assert r.headers["X-Subject"] == "user 42@example.com"
    assert r.headers["X-Scope"] == "read write:all"


@pytest.mark.parametrize("sub", ["a\nb", "a\rb", "\x00", "tab\there", "\x85"], ids=repr)
def test_issuing_with_control_characters_in_sub_is_refused(client: FlaskClient, sub: str) -> None:
    """Minting a token whose sub holds control characters is a 422 saying why."""
    create_tenant(client, "acme")
    r = client.post("/v1/admin/tenants/acme/tokens", json={"sub": sub}, headers=ADMIN)
    assert "control characters" in assert_problem(r, 422)["detail"]


@pytest.mark.parametrize(
    "scope", ["read  write", " read", "read ", 'a"b', "a\\b", "r\nw", "ü"], ids=repr
)
def test_issuing_with_a_malformed_scope_is_refused(client: FlaskClient, scope: str) -> None:
    """scope must follow RFC 6749 §3.3 (space-separated printable-ASCII tokens)."""
    create_tenant(client, "acme")
    r = client.post(
        "/v1/admin/tenants/acme/tokens", json={"sub": "u1", "scope": scope}, headers=ADMIN
    )
    assert "RFC 6749" in assert_problem(r, 422)["detail"]
