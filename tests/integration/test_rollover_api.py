"""Planned key changes over the admin API (issue 15), on both backends: rollover keeps the
previous key verifying for its grace (HS256 and key pairs), publish-next and the policy."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient

from tenantauth.app import create_app
from tenantauth.domain.key_rollover import list_keys
from tenantauth.domain.key_schedule import roll_due, set_policy
from tenantauth.domain.models import KeyPolicy
from tenantauth.domain.tenants import create_tenant
from tests.integration.helpers import ADMIN, TENANTS, assert_json, assert_problem
from tests.support import FixedClock, make_settings


def _create(client: FlaskClient, alg: str) -> None:
    body = {"id": "acme", "name": "Acme", "alg": alg}
    assert_json(client.post(TENANTS, json=body, headers=ADMIN), 201)


def _issue(client: FlaskClient) -> str:
    r = client.post(f"{TENANTS}/acme/tokens", json={"sub": "u1", "ttl": 3600}, headers=ADMIN)
    return str(assert_json(r, 201)["access_token"])


def _verify(client: FlaskClient, token: str) -> int:
    return client.get("/v1/verify", headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
def test_rollover_keeps_the_previous_key_for_its_grace(
    client: FlaskClient, clock: FixedClock, alg: str
) -> None:
    """The old token verifies through the grace, the new one at once; after it, only the new
    one; the answer lists the keys with the retiring one's end."""
    _create(client, alg)
    old = _issue(client)
    assert _verify(client, old) == 200
    r = client.post(f"{TENANTS}/acme/rollover", json={"grace": 600}, headers=ADMIN)
    body: dict[str, Any] = assert_json(r, 200)
    assert [k["state"] for k in body["keys"]] == ["current", "retiring"]
    new = _issue(client)
    assert (_verify(client, old), _verify(client, new)) == (200, 200)
    clock.advance(599)
    assert _verify(client, old) == 200
    clock.advance(1)
    assert (_verify(client, old), _verify(client, new)) == (401, 200)


def test_publish_next_then_policy(client: FlaskClient, clock: FixedClock) -> None:
    """keys/next publishes (201, in the JWKS); a second is a 409; the policy round-trips and
    a publish_ahead not under every is a 422."""
    _create(client, "ES256")
    r = client.post(f"{TENANTS}/acme/keys/next", json={"ahead": 300}, headers=ADMIN)
    assert [k["state"] for k in assert_json(r, 201)["keys"]] == ["current", "next"]
    jwks = client.get("/v1/tenants/acme/.well-known/jwks.json")
    assert len(jwks.get_json()["keys"]) == 2
    r = client.post(f"{TENANTS}/acme/keys/next", json={"ahead": 300}, headers=ADMIN)
    assert_problem(r, 409, "conflict")
    policy = {"every": 86_400, "publish_ahead": 3_600, "grace": None}
    r = client.put(f"{TENANTS}/acme/keys/policy", json=policy, headers=ADMIN)
    assert assert_json(r, 200) == policy
    assert assert_json(client.get(f"{TENANTS}/acme/keys/policy", headers=ADMIN), 200) == policy
    bad = {"every": 86_400, "publish_ahead": 86_400}
    assert_problem(
        client.put(f"{TENANTS}/acme/keys/policy", json=bad, headers=ADMIN), 422, "invalid_request"
    )
    assert client.delete(f"{TENANTS}/acme/keys/policy", headers=ADMIN).status_code == 204
    assert_problem(client.get(f"{TENANTS}/acme/keys/policy", headers=ADMIN), 404, "not_found")


@pytest.fixture
def memory_client(postgres_backend: Any, tmp_path: Any, clock: FixedClock) -> Any:
    """An app on PostgreSQL + Redis that verifies from memory (the production default)."""
    app = create_app(make_settings(postgres_backend, tmp_path, verify_memory=True), clock=clock)
    yield app.test_client()
    app.extensions["tenantauth"]["services"].close()


def test_rollover_from_memory(memory_client: FlaskClient, clock: FixedClock) -> None:
    """The same on a worker verifying from memory."""
    client = memory_client
    _create(client, "EdDSA")
    old = _issue(client)
    for _ in range(3):
        assert _verify(client, old) == 200
    client.post(f"{TENANTS}/acme/rollover", json={"grace": 600}, headers=ADMIN)
    new = _issue(client)
    for _ in range(3):
        assert (_verify(client, old), _verify(client, new)) == (200, 200)


def test_two_roll_due_runs_at_once_on_postgres(
    postgres_backend: Any, tmp_path: Any, clock: FixedClock
) -> None:
    """Two roll-due runs at once on PostgreSQL (two replicas' CronJobs): each due tenant is
    published once and rolled over once — the row lock, not luck, decides (each run uses
    its own services and so its own connection pool, as separate processes would)."""
    apps = [
        create_app(make_settings(postgres_backend, tmp_path / str(n)), clock=clock)
        for n in range(2)
    ]
    services = [app.extensions["tenantauth"]["services"] for app in apps]
    try:
        for n in range(8):
            create_tenant(services[0], f"t{n}", "T")
            set_policy(services[0], KeyPolicy(f"t{n}", 86_400, 3_600))
        clock.advance(86_400 - 3_600)
        for expected in ("published", "rolled"):
            found: list[tuple[str, str]] = []
            threads = [
                threading.Thread(
                    target=lambda svc=svc, into=found: into.extend(
                        (s.tenant_id, s.action) for s in roll_due(svc).steps
                    )
                )
                for svc in services
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            done = sorted(t for t, action in found if action == expected)
            assert done == [f"t{n}" for n in range(8)], found
            assert {a for _, a in found} <= {expected, "done-elsewhere"}
            clock.advance(3_600)
        for n in range(8):
            states = [v.state for v in list_keys(services[0], f"t{n}")[1]]
            assert states == ["current", "retiring"]  # exactly one rollover each
    finally:
        for svc in services:
            svc.close()
