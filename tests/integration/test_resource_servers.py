"""Resource servers over HTTP, on both backends: managed by global admins, audited, and able
to introspect (RFC 7662) tokens of the tenants they are allowed for — and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.crypto.client_secrets import derive_key
from tenantauth.domain.oauth.resource_servers import RESOURCE_SERVER_PURPOSE
from tenantauth.domain.services import Services
from tests.integration.admin_support import audit_items, key_headers, make_key, without_volatile
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
    issue,
)
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, add_client
from tests.support import MASTER_KEY

SERVERS = "/v1/admin/resource-servers"
ANY_TENANT = "/v1/introspect"


def introspect_url(tenant_id: str) -> str:
    """The introspection endpoint of a tenant."""
    return f"/v1/tenants/{tenant_id}/introspect"


@pytest.fixture(autouse=True)
def _tenants(client: FlaskClient) -> None:
    """Tenants acme, globex and initech."""
    for tenant_id in ("acme", "globex", "initech"):
        create_tenant(client, tenant_id)


def make_server(client: FlaskClient, tenants: list[str], **body: Any) -> dict[str, Any]:
    """Register a resource server as the bootstrap admin; return the 201 body."""
    r = client.post(SERVERS, json={"name": "Orders API", "tenants": tenants, **body}, headers=ADMIN)
    return assert_json(r, 201)  # type: ignore[no-any-return]


def basic(user: str, password: str) -> dict[str, str]:
    """HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(user)}:{quote_plus(password)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def as_server(made: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    """The Basic header of a created server (optionally with another secret)."""
    return basic(made["id"], made["secret"] if secret is None else secret)


def introspect(
    client: FlaskClient, url: str, token: str, headers: dict[str, str], **form: str
) -> TestResponse:
    """POST a token to an introspection endpoint."""
    return client.post(url, data={"token": token, **form}, headers=headers)


def active(response: TestResponse) -> dict[str, Any]:
    """Assert a 200 no-store JSON introspection response; return its body."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()  # type: ignore[no-any-return]


def invalid_client(response: TestResponse) -> dict[str, Any]:
    """Assert the RFC 6749 §5.2 invalid_client answer (401, Basic challenge)."""
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="tenantauth"')
    body = response.get_json()
    assert body["error"] == "invalid_client"
    return body  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- admin API


def test_created_server_shows_its_secret_once_stored_as_a_keyed_hash(
    client: FlaskClient, services: Services
) -> None:
    """Creation is 201 no-store with the secret; the row holds only its HMAC under the
    master-derived subkey; show and list never carry the secret or its hash."""
    r = client.post(
        SERVERS,
        json={"name": "Orders API", "tenants": ["globex", "acme"], "audience": "orders"},
        headers=ADMIN,
    )
    made = assert_json(r, 201)
    assert r.headers["Cache-Control"] == "no-store"
    assert made["id"].startswith("tar_") and made["secret"].startswith("tars_")
    assert (made["name"], made["tenants"], made["audience"]) == (
        "Orders API",
        ["acme", "globex"],
        "orders",
    )
    with services.storage.transaction() as tx:
        row = tx.resource_servers.get(made["id"])
    assert row is not None
    mac_key = derive_key(MASTER_KEY, RESOURCE_SERVER_PURPOSE)
    assert row.secret_hash == hmac.new(mac_key, made["secret"].encode(), hashlib.sha256).digest()
    shown = assert_json(client.get(f"{SERVERS}/{made['id']}", headers=ADMIN), 200)
    listed = assert_json(client.get(SERVERS, headers=ADMIN), 200)
    assert listed == {"items": [shown], "next_cursor": None}
    assert shown == {k: v for k, v in made.items() if k != "secret"}
    assert made["secret"] not in json.dumps(listed)
    assert "secret_hash" not in json.dumps(listed)


def test_patch_changes_what_is_given(client: FlaskClient) -> None:
    """PATCH renames, replaces the tenants, and removes the audience with null."""
    made = make_server(client, ["acme"], audience="orders")
    url = f"{SERVERS}/{made['id']}"
    renamed = assert_json(client.patch(url, json={"name": "Billing"}, headers=ADMIN), 200)
    assert (renamed["name"], renamed["tenants"], renamed["audience"]) == (
        "Billing",
        ["acme"],
        "orders",
    )
    moved = assert_json(
        client.patch(url, json={"tenants": ["initech"], "audience": None}, headers=ADMIN), 200
    )
    assert (moved["tenants"], moved["audience"]) == (["initech"], None)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "A", "tenants": ["ghost"]}, 404),
        ({"name": "A", "tenants": ["acme", "acme"]}, 422),
        ({"name": "A", "tenants": ["Acme!"]}, 422),
        ({"name": "A", "tenants": "acme"}, 422),
        ({"name": "A"}, 422),
        ({"name": " ", "tenants": []}, 422),
        ({"name": "A", "tenants": [], "audience": "a\nb"}, 422),
        ({"name": "A", "tenants": [], "secret": "mine"}, 422),
    ],
)
def test_bad_bodies_are_refused(client: FlaskClient, body: dict[str, Any], status: int) -> None:
    """Unknown tenants are 404; malformed bodies (and a chosen secret) are 422 problems."""
    assert_problem(client.post(SERVERS, json=body, headers=ADMIN), status)
    assert assert_json(client.get(SERVERS, headers=ADMIN), 200)["items"] == []


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret")],
)
def test_unknown_servers_are_404(client: FlaskClient, method: str, suffix: str) -> None:
    """Show, patch, delete and rotate of an id that does not exist (or cannot) are 404."""
    for server_id in ("tar_" + "A" * 22, "tac_nope"):
        r = client.open(f"{SERVERS}/{server_id}{suffix}", method=method, json={}, headers=ADMIN)
        assert_problem(r, 404)


def test_tenant_admin_keys_get_403_everywhere(client: FlaskClient) -> None:
    """Resource servers are global: a tenant admin, even of every listed tenant, gets 403 on
    each route, the same body whether the server exists or not."""
    made = make_server(client, ["acme"])
    key = key_headers(make_key(client, "acme"))
    one, ghost = f"{SERVERS}/{made['id']}", f"{SERVERS}/tar_{'A' * 22}"
    calls = [
        ("POST", SERVERS, {"name": "x", "tenants": ["acme"]}),
        ("GET", SERVERS, None),
        ("GET", one, None),
        ("PATCH", one, {"name": "x"}),
        ("DELETE", one, None),
        ("POST", f"{one}/rotate-secret", None),
    ]
    for method, url, body in calls:
        assert_problem(client.open(url, method=method, json=body, headers=key), 403)
    bodies = [
        without_volatile(assert_problem(client.get(url, headers=key), 403)) for url in (one, ghost)
    ]
    assert bodies[0] == bodies[1]
    assert assert_json(client.get(one, headers=ADMIN), 200)["name"] == "Orders API"


def test_changes_are_audited(client: FlaskClient) -> None:
    """Create, update, rotate, delete and a refusal are audit entries naming the server."""
    made = make_server(client, ["acme"])
    url = f"{SERVERS}/{made['id']}"
    client.patch(url, json={"name": "B"}, headers=ADMIN)
    client.post(f"{url}/rotate-secret", headers=ADMIN)
    client.delete(url, headers=ADMIN)
    client.delete(url, headers=ADMIN)  # 404
    entries = [
        (e["action"], e["target"], e["outcome"], e["actor"], e["tenant_id"])
        for e in reversed(audit_items(client))
        if e["action"].startswith("resource_server.")
    ]
    sid = made["id"]
    assert entries == [
        ("resource_server.create", sid, "success", "bootstrap", None),
        ("resource_server.update", sid, "success", "bootstrap", None),
        ("resource_server.rotate_secret", sid, "success", "bootstrap", None),
        ("resource_server.delete", sid, "success", "bootstrap", None),
        ("resource_server.delete", sid, "404", "bootstrap", None),
    ]


# --------------------------------------------------------------------------- introspection


def test_server_introspects_tokens_of_every_allowed_tenant(client: FlaskClient) -> None:
    """One credential introspects acme's and globex's tokens, at each tenant's endpoint and
    at the tenant-less one, with Basic or client_secret_post."""
    made = make_server(client, ["acme", "globex"])
    post_auth = {"client_id": made["id"], "client_secret": made["secret"]}
    for tenant_id in ("acme", "globex"):
        token = issue(client, tenant_id)
        for url in (introspect_url(tenant_id), ANY_TENANT):
            body = active(introspect(client, url, token, as_server(made)))
            assert (body["active"], body["tid"]) == (True, tenant_id)
            body = active(client.post(url, data={"token": token, **post_auth}))
            assert body["active"] is True


def test_other_tenants_get_the_answer_of_a_bad_secret(client: FlaskClient) -> None:
    """At the endpoint of a tenant it is not allowed for, a server gets exactly the 401 of a
    wrong secret; at the tenant-less endpoint that tenant's tokens are inactive."""
    made = make_server(client, ["acme"])
    theirs, url = issue(client, "initech"), introspect_url("initech")
    refused = invalid_client(introspect(client, url, theirs, as_server(made)))
    wrong = invalid_client(introspect(client, url, theirs, as_server(made, "tars_wrong")))
    assert without_volatile(refused) == without_volatile(wrong)
    assert active(introspect(client, ANY_TENANT, theirs, as_server(made))) == {"active": False}


def test_server_can_never_obtain_or_revoke_tokens(client: FlaskClient) -> None:
    """The token and revocation endpoints refuse a server's credentials as invalid_client,
    for every grant and every tenant it is allowed for."""
    made = make_server(client, ["acme"])
    for grant in ("client_credentials", "password", "refresh_token"):
        form = {"grant_type": grant, "username": "u", "password": "p", "refresh_token": "r"}
        invalid_client(client.post("/v1/tenants/acme/token", data=form, headers=as_server(made)))
    token = issue(client, "acme")
    invalid_client(
        client.post("/v1/tenants/acme/revoke", data={"token": token}, headers=as_server(made))
    )
    assert client.get("/v1/verify", headers=bearer(token)).status_code == 200


def test_clients_cannot_use_the_tenant_less_endpoint(
    client: FlaskClient, services: Services
) -> None:
    """The tenant-less endpoint is for resource servers only; clients keep their tenant's."""
    add_client(services, "acme")
    token = issue(client, "acme")
    invalid_client(introspect(client, ANY_TENANT, token, basic(CLIENT_ID, CLIENT_SECRET)))
    body = active(
        introspect(client, introspect_url("acme"), token, basic(CLIENT_ID, CLIENT_SECRET))
    )
    assert body["active"] is True


def test_introspection_claims_agree_with_verify(client: FlaskClient) -> None:
    """For the same token, introspection returns every claim /v1/verify returns (custom
    claims and kv included), plus active and token_type — for clients and servers alike."""
    client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)  # kv = 2
    token = issue(client, "acme", scope="read", claims={"plan": "pro", "org": {"id": 7}})
    verified = client.get("/v1/verify", headers=bearer(token)).get_json()["claims"]
    assert (verified["kv"], verified["plan"]) == (2, "pro")
    made = make_server(client, ["acme"])
    for url in (introspect_url("acme"), ANY_TENANT):
        body = active(introspect(client, url, token, as_server(made)))
        assert body == {**verified, "active": True, "token_type": "Bearer"}


def test_expected_audience(client: FlaskClient) -> None:
    """A server's audience and the request's audience parameter must both be in aud."""
    plain, scoped = make_server(client, ["acme"]), make_server(client, ["acme"], audience="orders")
    orders = issue(client, "acme", aud=["orders", "billing"])
    billing = issue(client, "acme", aud="billing")
    url = introspect_url("acme")
    assert active(introspect(client, url, orders, as_server(scoped)))["active"] is True
    assert active(introspect(client, url, billing, as_server(scoped))) == {"active": False}
    assert active(introspect(client, url, billing, as_server(plain)))["active"] is True
    for made, token, audience, expected in [
        (plain, billing, "billing", True),
        (plain, billing, "orders", False),
        (scoped, orders, "billing", True),
        (scoped, orders, "shipping", False),
    ]:
        body = active(introspect(client, url, token, as_server(made), audience=audience))
        assert body["active"] is expected, (audience, body)


def test_rotating_the_secret_kills_the_old_one(client: FlaskClient) -> None:
    """After rotate-secret the old secret is invalid_client and the new one works."""
    made = make_server(client, ["acme"])
    r = client.post(f"{SERVERS}/{made['id']}/rotate-secret", headers=ADMIN)
    rotated = assert_json(r, 200)
    assert r.headers["Cache-Control"] == "no-store"
    assert rotated["secret"] != made["secret"]
    token = issue(client, "acme")
    invalid_client(introspect(client, ANY_TENANT, token, as_server(made)))
    assert active(introspect(client, ANY_TENANT, token, as_server(rotated)))["active"] is True


def test_deleted_server_and_removed_tenant_are_refused(client: FlaskClient) -> None:
    """A tenant taken off the list is refused from the next request; a deleted server too."""
    made = make_server(client, ["acme", "globex"])
    url = f"{SERVERS}/{made['id']}"
    acme_token = issue(client, "acme")
    assert_json(client.patch(url, json={"tenants": ["globex"]}, headers=ADMIN), 200)
    invalid_client(introspect(client, introspect_url("acme"), acme_token, as_server(made)))
    assert active(introspect(client, ANY_TENANT, acme_token, as_server(made))) == {"active": False}
    assert client.delete(url, headers=ADMIN).status_code == 204
    invalid_client(introspect(client, ANY_TENANT, issue(client, "globex"), as_server(made)))


def test_deleting_a_tenant_takes_it_off_the_server(client: FlaskClient) -> None:
    """A deleted and re-created tenant is not on the server's list any more."""
    made = make_server(client, ["acme", "globex"])
    assert client.delete(f"{TENANTS}/globex", headers=ADMIN).status_code == 204
    create_tenant(client, "globex")
    shown = assert_json(client.get(f"{SERVERS}/{made['id']}", headers=ADMIN), 200)
    assert shown["tenants"] == ["acme"]
    invalid_client(
        introspect(client, introspect_url("globex"), issue(client, "globex"), as_server(made))
    )


def test_guessing_a_secret_is_locked_out_across_tenants(client: FlaskClient) -> None:
    """Five wrong secrets for one server, spread over endpoints, lock it: 429 with
    Retry-After, even for the right secret."""
    made = make_server(client, ["acme", "globex"])
    token = issue(client, "acme")
    for url in (introspect_url("acme"), introspect_url("globex"), ANY_TENANT) * 2:
        r = introspect(client, url, token, as_server(made, "tars_wrong"))
        if r.status_code == 429:
            break
        invalid_client(r)
    r = introspect(client, ANY_TENANT, token, as_server(made))
    assert r.status_code == 429, r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) >= 1


def test_missing_token_and_bad_audience_are_invalid_request(client: FlaskClient) -> None:
    """After authentication, a missing token or an empty or over-long audience is a 400."""
    made = make_server(client, ["acme"])
    for form in ({}, {"token": "x", "audience": ""}, {"token": "x", "audience": "a" * 256}):
        r = client.post(ANY_TENANT, data=form, headers=as_server(made))
        assert r.status_code == 400, r.get_data(as_text=True)
        assert r.get_json()["error"] == "invalid_request"
