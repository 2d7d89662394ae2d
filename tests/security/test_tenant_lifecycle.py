"""Tokens of tenants that changed: suspended, deleted, re-created, unknown, another tenant's.

Sources: VERIFIER-CHECKLIST #6 (an unknown tenant fails exactly like a bad signature), #11
and #14 (no decision from state older than the last change), RFC 7662 §2.2 (introspection
answers only ``{"active": false}`` for a token not valid *here*), RFC 8725 §2.7 (substitution
across tenants). These tests change state, so they use the function-scoped ``client``.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tenantauth.domain.services import Services
from tests.integration.helpers import ADMIN, TENANTS, create_tenant, issue
from tests.oauth_accounts import add_client
from tests.security.forge import claims, forge, header
from tests.security.probe import World, assert_accepted, assert_rejected, reference_failures
from tests.support import FixedClock


@pytest.fixture
def lifecycle(app: Flask, client: FlaskClient, services: Services, clock: FixedClock) -> World:
    """Tenants acme (with an OAuth client) and other on this test's own app."""
    create_tenant(client, "acme")
    create_tenant(client, "other")
    add_client(services, "acme")
    world = World("function", app, client, services, clock)
    world.refs = reference_failures(world, forge(key=b"\x02" * 32))
    return world


def test_suspended_tenant_token_fails_uniformly_until_resumed(lifecycle: World) -> None:
    """Suspension stops a tenant's tokens at once (uniform 401); resuming restores them."""
    token = issue(lifecycle.client, "acme")
    assert_accepted(lifecycle, token)
    _patch(lifecycle.client, "acme", "suspended")
    assert lifecycle.get(f"Bearer {token}").get_data() == lifecycle.refs["invalid"].get_data()
    assert lifecycle.post({"token": token}).status_code == 401
    _patch(lifecycle.client, "acme", "active")
    assert_accepted(lifecycle, token)


def test_deleted_tenant_token_fails_uniformly(lifecycle: World) -> None:
    """After DELETE the tenant's tokens get the uniform 401, on GET and POST."""
    token = issue(lifecycle.client, "other")
    assert lifecycle.post({"token": token}).status_code == 200
    assert lifecycle.client.delete(f"{TENANTS}/other", headers=ADMIN).status_code == 204
    for response in (lifecycle.get(f"Bearer {token}"), lifecycle.post({"token": token})):
        assert response.status_code == 401
        assert response.get_data() == lifecycle.refs["invalid"].get_data()


def test_recreated_tenant_rejects_tokens_of_its_previous_life(lifecycle: World) -> None:
    """Deleted and created again (fresh secret): old tokens fail uniformly, new ones verify."""
    old = issue(lifecycle.client, "other")
    assert lifecycle.client.delete(f"{TENANTS}/other", headers=ADMIN).status_code == 204
    create_tenant(lifecycle.client, "other")
    assert lifecycle.post({"token": old}).get_data() == lifecycle.refs["invalid"].get_data()
    assert lifecycle.post({"token": issue(lifecycle.client, "other")}).status_code == 200


def test_unknown_tenant_fails_exactly_like_a_bad_signature(lifecycle: World) -> None:
    """A token for a tenant that never existed gets the body of a bad-signature token."""
    ghost = forge(header(kid="ghost"), claims(tid="ghost"), key=b"\x03" * 32)
    for _ in range(2):  # the second request is answered from the negative cache, if any
        assert_rejected(lifecycle, ghost)


def test_introspection_of_another_tenants_valid_token_is_inactive(lifecycle: World) -> None:
    """RFC 7662 §2.2: acme's client learns nothing about other's token: {"active": false}."""
    token = issue(lifecycle.client, "other")
    assert lifecycle.post({"token": token}).status_code == 200  # valid, just not acme's
    response = lifecycle.introspect(token)
    assert response.status_code == 200
    assert response.get_data() == lifecycle.refs["inactive"].get_data()


def test_rotation_fails_old_tokens_uniformly(lifecycle: World) -> None:
    """After rotate the old secret's tokens get the uniform answer everywhere."""
    token = issue(lifecycle.client, "acme")
    assert lifecycle.client.post(f"{TENANTS}/acme/rotate", headers=ADMIN).status_code == 200
    assert_rejected(lifecycle, token)


def _patch(client: FlaskClient, tenant_id: str, status: str) -> None:
    r = client.patch(f"{TENANTS}/{tenant_id}", json={"status": status}, headers=ADMIN)
    assert r.status_code == 200, r.get_data(as_text=True)
