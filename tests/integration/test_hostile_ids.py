"""Ids and names that cannot exist are answered as such: 404 or 422, never 5xx."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import ADMIN, TENANTS, assert_problem

IMPOSSIBLE_IDS = ["%00", "a%00b", "x" * 5000, "%C3%BC", "ACME", "-acme", "a%0Ab"]
ROUTES = [
    ("get", ""),
    ("patch", ""),
    ("delete", ""),
    ("post", "/rotate"),
    ("post", "/tokens"),
]


@pytest.mark.parametrize("tenant_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize(("method", "suffix"), ROUTES, ids=[f"{m} {s}" for m, s in ROUTES])
def test_impossible_tenant_ids_are_not_found(
    client: FlaskClient, tenant_id: str, method: str, suffix: str
) -> None:
    """A path id that cannot be a tenant id is a 404 problem before any storage lookup."""
    body = {"sub": "u1"} if suffix == "/tokens" else {}
    r = getattr(client, method)(f"{TENANTS}/{tenant_id}{suffix}", json=body, headers=ADMIN)
    assert_problem(r, 404, "not_found")


@pytest.mark.parametrize("name", ["A\x00B", "line\nbreak", "\x7f"], ids=repr)
def test_control_characters_in_names_are_refused(client: FlaskClient, name: str) -> None:
    """A tenant name with control characters is a 422 saying why (never a storage error)."""
    r = client.post(TENANTS, json={"id": "acme", "name": name}, headers=ADMIN)
    assert "control characters" in assert_problem(r, 422)["detail"]
