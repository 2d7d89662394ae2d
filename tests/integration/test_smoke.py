"""Smoke: the app answers on both backends."""

from flask.testing import FlaskClient

from tests.support import admin_headers


def test_create_issue_verify_rotate(client: FlaskClient) -> None:
    """A token verifies until its tenant is rotated, then it is rejected."""
    r = client.post(
        "/v1/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin_headers()
    )
    assert r.status_code == 201, r.json
    r = client.post("/v1/admin/tenants/acme/tokens", json={"sub": "u1"}, headers=admin_headers())
    token = r.json["access_token"]
    assert client.get("/v1/verify", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/v1/admin/tenants/acme/rotate", headers=admin_headers()).status_code == 200
    assert client.get("/v1/verify", headers={"Authorization": f"Bearer {token}"}).status_code == 401
