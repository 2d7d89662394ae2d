"""Behind trusted proxies, login limits count the real client address, not the proxy's."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tenantauth.app import create_app
from tests.integration.helpers import create_tenant
from tests.oauth_accounts import CLIENT_ID, add_client
from tests.support import Backend, FixedClock, make_settings

WRONG = "Basic " + base64.b64encode(f"{CLIENT_ID}:not-the-secret".encode()).decode()


def app_with(backend: Backend, tmp_path: Path, clock: FixedClock, hops: int) -> Flask:
    """An app that trusts ``hops`` proxies, locks an address after 2 failures (users: 50)."""
    settings = make_settings(
        backend, tmp_path, proxy_hops=hops, login_ip_max_failures=2, login_max_failures=50
    )
    return create_app(settings, clock=clock)


@pytest.fixture(params=[0, 1], ids=["no-proxy", "one-proxy"])
def app_and_hops(
    request: pytest.FixtureRequest, backend: Backend, tmp_path: Path, clock: FixedClock
) -> Iterator[tuple[Flask, int]]:
    """The app with 0 or 1 trusted proxies, tenant acme and one client."""
    application = app_with(backend, tmp_path, clock, request.param)
    create_tenant(application.test_client(), "acme")
    add_client(application.extensions["tenantauth"]["services"], "acme")
    yield application, request.param
    application.extensions["tenantauth"]["services"].close()


def fail_from(app: Flask, forwarded_for: str) -> int:
    """One failed client authentication sent through a proxy; return the status."""
    r = app.test_client().post(
        "/v1/tenants/acme/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": WRONG, "X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},  # the proxy
    )
    return r.status_code


def test_addresses_are_told_apart_only_behind_trusted_proxies(
    app_and_hops: tuple[Flask, int],
) -> None:
    """With one trusted hop, two failures lock 198.51.100.7 but not 203.0.113.9; with none,
    everyone shares the proxy's address and is locked together."""
    app, hops = app_and_hops
    assert [fail_from(app, "198.51.100.7") for _ in range(2)] == [401, 401]
    assert fail_from(app, "198.51.100.7") == 429
    assert fail_from(app, "203.0.113.9") == (401 if hops else 429)
