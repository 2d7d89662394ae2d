"""No secret, token or password ever reaches the logs (issue 5, "Limits and hygiene").

Drives a representative run of the API with every logger at DEBUG, then searches the
captured records for each secret value used, raw and in its base64/base64url forms.
"""

from __future__ import annotations

import base64
import logging

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import ADMIN, TENANTS, assert_json, bearer, new_secret

PASSWORD = "correct horse battery staple"


def _forms(secret: str) -> set[str]:
    """Return ``secret`` and its base64 and base64url encodings (padded and not)."""
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {secret} | encoded | {e.rstrip("=") for e in encoded}


def _run_the_api(client: FlaskClient) -> list[str]:
    """Create, issue, log in, refresh, introspect (as a client and a resource server), revoke,
    rotate, verify; return secrets."""
    _, imported = new_secret()
    assert_json(
        client.post(TENANTS, json={"id": "acme", "name": "A", "secret": imported}, headers=ADMIN),
        201,
    )
    issued = assert_json(
        client.post(f"{TENANTS}/acme/tokens", json={"sub": "u"}, headers=ADMIN), 201
    )["access_token"]
    assert_json(
        client.post(
            f"{TENANTS}/acme/users", json={"username": "alice", "password": PASSWORD}, headers=ADMIN
        ),
        201,
    )
    made = assert_json(
        client.post(
            f"{TENANTS}/acme/clients",
            json={"name": "C", "scopes": ["read"], "grant_types": ["password", "refresh_token"]},
            headers=ADMIN,
        ),
        201,
    )
    basic = base64.b64encode(f"{made['client_id']}:{made['client_secret']}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    grant = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    login = assert_json(client.post("/v1/tenants/acme/token", data=grant, headers=auth), 200)
    refresh = {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}
    again = assert_json(client.post("/v1/tenants/acme/token", data=refresh, headers=auth), 200)
    client.post("/v1/tenants/acme/token", data=refresh, headers=auth)  # reuse: logged event
    client.post("/v1/tenants/acme/introspect", data={"token": again["access_token"]}, headers=auth)
    client.post("/v1/tenants/acme/revoke", data={"token": again["refresh_token"]}, headers=auth)
    client.post(
        "/v1/tenants/acme/token", data={**grant, "password": "wrong " + PASSWORD}, headers=auth
    )
    server = assert_json(
        client.post(
            "/v1/admin/resource-servers", json={"name": "R", "tenants": ["acme"]}, headers=ADMIN
        ),
        201,
    )
    rs_basic = base64.b64encode(f"{server['id']}:{server['secret']}".encode()).decode()
    rs_auth = {"Authorization": f"Basic {rs_basic}"}
    client.post("/v1/introspect", data={"token": again["access_token"]}, headers=rs_auth)
    wrong_rs = base64.b64encode(f"{server['id']}:{server['secret']}x".encode()).decode()
    client.post(
        "/v1/introspect", data={"token": issued}, headers={"Authorization": f"Basic {wrong_rs}"}
    )
    rotated = assert_json(client.post(f"{TENANTS}/acme/rotate", json={}, headers=ADMIN), 200)
    client.get("/v1/verify", headers=bearer(issued))  # now revoked: logs its reason
    client.post("/v1/verify", json={"token": login["access_token"]})
    secrets = [
        imported,
        issued,
        PASSWORD,
        made["client_secret"],
        basic,
        login["access_token"],
        login["refresh_token"],
        again["access_token"],
        again["refresh_token"],
        server["secret"],
        rs_basic,
    ]
    secrets += [v for k, v in rotated.items() if "secret" in k and isinstance(v, str)]
    return secrets


def test_no_secret_reaches_the_logs(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG, no password, client secret, tenant secret, access or
    refresh token (raw, base64 or base64url) appears in any log record."""
    # The app sets the tenantauth logger's own level: lower it too, not only the root's.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="tenantauth"):
        secrets = _run_the_api(client)
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert caplog.records, "nothing was logged: the capture is not working"
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, f"a secret ({secret[:6]}...) reached the logs"
