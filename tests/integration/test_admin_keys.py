"""Admin API keys over HTTP, on both backends: shown once, stored hashed, uniform 401s."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from flask.testing import FlaskClient

from tenantauth.crypto.client_secrets import derive_key
from tenantauth.domain.admin.admins import ADMIN_KEY_PURPOSE
from tenantauth.domain.services import Services
from tests.integration.admin_support import KEYS, key_headers, make_key, without_volatile
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
)
from tests.support import MASTER_KEY, FixedClock


def test_key_is_shown_once_and_stored_as_a_keyed_hash(
    client: FlaskClient, services: Services
) -> None:
    """Creation returns ``ta_adm_<id>_…`` with no-store; the row holds only its HMAC under
    the master-derived key; listing and show never include the key or hash."""
    r = client.post(KEYS, json={"name": "deploy bot"}, headers=ADMIN)
    made = assert_json(r, 201)
    assert r.headers["Cache-Control"] == "no-store"
    assert made["key"].startswith(made["prefix"]) and made["prefix"] == f"ta_adm_{made['id']}_"
    assert (made["scope"], made["tenant_id"], made["expires_at"]) == ("global", None, None)
    with services.storage.transaction() as tx:
        row = tx.admin_keys.get(made["id"])
    assert row is not None
    mac_key = derive_key(MASTER_KEY, ADMIN_KEY_PURPOSE)
    assert row.key_hash == hmac.new(mac_key, made["key"].encode(), hashlib.sha256).digest()
    listed = assert_json(client.get(KEYS, headers=ADMIN), 200)
    shown = assert_json(client.get(f"{KEYS}/{made['id']}", headers=ADMIN), 200)
    secret_part = made["key"].removeprefix(made["prefix"])
    for body in (listed, shown):
        assert secret_part not in json.dumps(body)
        assert "key" not in body and "key_hash" not in json.dumps(body)
    assert listed["items"] == [shown]
    assert shown["last_used_at"] is None


def test_key_authenticates_and_records_last_use(
    client: FlaskClient, services: Services, clock: FixedClock
) -> None:
    """A global key works like the bootstrap token and its last use is recorded."""
    made = make_key(client)
    assert_json(client.get(TENANTS, headers=key_headers(made)), 200)
    shown = assert_json(client.get(f"{KEYS}/{made['id']}", headers=ADMIN), 200)
    assert shown["last_used_at"] is not None


def test_every_bad_credential_gets_the_same_401(client: FlaskClient, clock: FixedClock) -> None:
    """Wrong secret of a real id, unknown id, malformed, revoked, expired and a wrong
    bootstrap token are all the same 401 problem."""
    create_tenant(client, "acme")
    live, revoked = make_key(client), make_key(client, "acme")
    expiring = make_key(client, expires_in=60)
    assert_json(client.post(f"{KEYS}/{revoked['id']}/revoke", headers=ADMIN), 200)
    assert_json(client.get(TENANTS, headers=key_headers(expiring)), 200)
    clock.advance(60)
    wrong_secret = live["prefix"] + "A" * 43
    candidates = [
        wrong_secret,
        "ta_adm_ffffffffffffffff_" + "A" * 43,
        live["key"] + "x",
        live["key"][:-1],
        revoked["key"],
        expiring["key"],
        "not-the-admin-token",
    ]
    bodies = []
    for token in candidates:
        r = client.get(f"{TENANTS}/acme", headers=bearer(token))
        bodies.append(without_volatile(assert_problem(r, 401, "unauthenticated")))
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="tenantauth"'
    assert all(b == bodies[0] for b in bodies), bodies
    assert_json(client.get(TENANTS, headers=key_headers(live)), 200)


def test_revocation_is_idempotent_and_immediate(client: FlaskClient) -> None:
    """Revoking twice keeps the first time; the key is refused right after."""
    made = make_key(client)
    first = assert_json(client.post(f"{KEYS}/{made['id']}/revoke", headers=ADMIN), 200)
    again = assert_json(client.post(f"{KEYS}/{made['id']}/revoke", headers=ADMIN), 200)
    assert first["revoked_at"] is not None and again["revoked_at"] == first["revoked_at"]
    assert_problem(client.get(TENANTS, headers=key_headers(made)), 401)


def test_key_requests_are_validated(client: FlaskClient) -> None:
    """Unknown fields, bad lifetimes and tenant ids are 422; an unknown tenant and an
    impossible or unknown key id are 404."""
    for body in (
        {"name": "x", "scope": "global"},
        {"name": "x", "expires_in": 0},
        {"name": "x", "expires_in": "60"},
        {"name": ""},
        {"name": "x", "tenant_id": "Not_An_Id"},
    ):
        assert_problem(client.post(KEYS, json=body, headers=ADMIN), 422)
    assert_problem(client.post(KEYS, json={"name": "x", "tenant_id": "ghost"}, headers=ADMIN), 404)
    assert_problem(client.get(f"{KEYS}/ffffffffffffffff", headers=ADMIN), 404)
    assert_problem(client.post(f"{KEYS}/..%2Fx/revoke", headers=ADMIN), 404)
    assert_problem(client.get(KEYS, query_string={"bogus": 1}, headers=ADMIN), 422)


def test_listing_pages_by_cursor(client: FlaskClient) -> None:
    """limit/next_cursor walk every key exactly once, in id order."""
    made = sorted(make_key(client)["id"] for _ in range(5))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = assert_json(client.get(KEYS, query_string=query, headers=ADMIN), 200)
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
