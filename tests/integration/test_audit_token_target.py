"""The API's ``token.revoke`` audit entry names the revoked token's jti (both backends)."""

from __future__ import annotations

import jwt
from flask.testing import FlaskClient

from tests.integration.admin_support import audit_items
from tests.integration.helpers import ADMIN, TENANTS, assert_json, create_tenant, issue


def test_token_revoke_entry_targets_the_jti(client: FlaskClient) -> None:
    """A revoked token's entry has its jti as the target; a string that is not a valid token
    of the tenant (nothing revoked) leaves an entry without a target."""
    create_tenant(client, "acme")
    token = issue(client, "acme")
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    revoke = f"{TENANTS}/acme/tokens/revoke"
    assert assert_json(client.post(revoke, json={"token": token}, headers=ADMIN), 200) == {
        "revoked": True
    }
    forged = jwt.encode({"jti": "forged"}, "k" * 32, headers={"kid": "acme"})
    assert_json(client.post(revoke, json={"token": forged}, headers=ADMIN), 200)
    revocations = audit_items(client, action="token.revoke")
    assert [(e["tenant_id"], e["target"], e["outcome"]) for e in revocations] == [
        ("acme", None, "success"),
        ("acme", jti, "success"),
    ]
