"""``TENANTAUTH_ROLE``: a public server and an admin server over one database (and Redis).

The public role answers what verifying services and OAuth clients call, the admin role
``/v1/admin/*``; each answers 404 (a problem, like any unknown path) to the other's paths and
documents only its own. A change made through the admin server reaches the public one: both
verify on the exact path here (tests/support.py), and the memory path across servers is
tests/e2e/test_rotation_race.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tenantauth.app import create_app, served_blueprints
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
    issue,
    verify_status,
)
from tests.support import Backend, FixedClock, make_settings

ROLES = ("all", "public", "admin")


@pytest.fixture
def apps(backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[dict[str, Flask]]:
    """One app of each role on ``backend``'s one database and Redis DB."""
    built = {
        role: create_app(make_settings(backend, tmp_path, role=role), clock=clock) for role in ROLES
    }
    yield built
    for app in built.values():
        app.extensions["tenantauth"]["services"].close()


def test_the_public_role_refuses_the_admin_api(apps: dict[str, Flask]) -> None:
    """Every admin path is a 404 problem on a public server, the admin token or not; the
    tenant list is not disclosed."""
    public, every = apps["public"].test_client(), apps["all"].test_client()
    create_tenant(apps["admin"].test_client(), "acme")
    assert_json(every.get(f"{TENANTS}/acme", headers=ADMIN), 200)
    for method, path in (("get", TENANTS), ("post", TENANTS), ("get", f"{TENANTS}/acme")):
        r = getattr(public, method)(path, headers=ADMIN, json={"id": "x", "name": "x"})
        assert_problem(r, 404, "not_found")
    assert_problem(public.get("/v1/admin/audit", headers=ADMIN), 404, "not_found")


def test_the_admin_role_refuses_the_public_api(apps: dict[str, Flask]) -> None:
    """Verification (both lean paths), the token, revocation and introspection endpoints and
    the JWKS are 404 problems on an admin server; a server of role ``all`` answers each."""
    admin = apps["admin"].test_client()
    create_tenant(admin, "acme")
    token = issue(admin, "acme")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("get", "/v1/verify", {"headers": bearer(token)}),
        ("post", "/v1/verify", {"json": {"token": token}}),
        ("post", "/v1/tenants/acme/token", {"data": {"grant_type": "client_credentials"}}),
        ("post", "/v1/tenants/acme/revoke", {"data": {"token": token}}),
        ("post", "/v1/introspect", {"data": {"token": token}}),
        ("get", "/v1/tenants/acme/.well-known/jwks.json", {}),
    ]
    every = apps["all"].test_client()
    for method, path, kwargs in requests:
        assert getattr(every, method)(path, **kwargs).status_code != 404, path
        assert_problem(getattr(admin, method)(path, **kwargs), 404, "not_found")


def test_a_change_through_the_admin_server_reaches_the_public_one(
    apps: dict[str, Flask],
) -> None:
    """Tokens issued through the admin server verify on the public one; once a rotation
    through the admin server has returned, the public server refuses them."""
    admin, public = apps["admin"].test_client(), apps["public"].test_client()
    create_tenant(admin, "acme")
    token = issue(admin, "acme")
    assert verify_status(public, token) == 200
    assert_json(admin.post(f"{TENANTS}/acme/rotate", json={}, headers=ADMIN), 200)
    assert verify_status(public, token) == 401
    assert verify_status(public, issue(admin, "acme")) == 200


def _paths(app: Flask) -> set[str]:
    spec: dict[str, Any] = assert_json(app.test_client().get("/openapi.json"), 200)
    return set(spec["paths"])


def test_each_role_documents_only_what_it_serves(apps: dict[str, Flask]) -> None:
    """The public and admin documents split the whole one: the probes in both, every other
    path in exactly one, and no admin path in the public document."""
    every, public, admin = (_paths(apps[role]) for role in ROLES)
    probes = {"/healthz", "/readyz"}
    assert public | admin == every
    assert public & admin == probes
    assert not any(p.startswith("/v1/admin/") for p in public)
    assert {"/v1/verify", "/v1/tenants/{tenant_id}/token", "/v1/introspect"} <= public


def test_served_blueprints_split_the_api() -> None:
    """``served_blueprints``: the two roles partition every blueprint but the probes', which
    both serve; ``all`` keeps the document's order."""
    every = served_blueprints("all")
    public, admin = set(served_blueprints("public")), set(served_blueprints("admin"))
    assert public | admin == set(every)
    assert [bp.name for bp in public & admin] == ["health"]
    assert len(every) == len(set(every))
