"""A number with a zero fraction is an integer, as in the document's dialect (both backends)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.integration.helpers import ADMIN, TENANTS, assert_json, assert_problem


def test_integral_numbers_are_integers(client: FlaskClient) -> None:
    """60.0 and 6e1 are the integer 60 (JSON Schema 2020-12 §6.1.1); 60.5 and true are not."""
    made = client.post(
        TENANTS, json={"id": "acme", "name": "A", "access_token_ttl": 60.0}, headers=ADMIN
    )
    assert assert_json(made, 201)["access_token_ttl"] == 60
    raw = b'{"access_token_ttl": 6e1}'
    patched = client.patch(
        f"{TENANTS}/acme", data=raw, content_type="application/json", headers=ADMIN
    )
    assert assert_json(patched, 200)["access_token_ttl"] == 60
    for bad in (60.5, True):
        r = client.patch(f"{TENANTS}/acme", json={"access_token_ttl": bad}, headers=ADMIN)
        assert_problem(r, 422, "invalid_request")
