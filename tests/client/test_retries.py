"""Retries, timeouts and connection reuse of ``TenantAuthClient`` against a real server.

Requests are counted on the real server's access log (each request carries an ``X-Probe``
label) or by a counting loopback proxy (tests/client/proxy.py) that can also answer 503 the
way tenantauth does when a dependency is down. No part of urllib3 is mocked.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantauth_client import (
    BadRequest,
    Conflict,
    InvalidToken,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TenantAuthClient,
    Unauthorized,
)
from tests.client.conftest import Tenant, base_url
from tests.client.proxy import FaultProxy
from tests.e2e.harness import HOST, Launch, Server, production_environ
from tests.support import ADMIN_TOKEN, redis_db_url

pytestmark = pytest.mark.e2e
VERIFY = ("POST", "/v1/verify")


@pytest.fixture
def proxy(live: Server) -> Iterator[FaultProxy]:
    """A counting, 503-injecting proxy in front of ``live``."""
    with FaultProxy(live.port) as running:
        yield running


def proxied(proxy: FaultProxy, **settings: float) -> TenantAuthClient:
    """A client (with the admin token) talking to tenantauth through ``proxy``."""
    options = {"retries": 2, "backoff_factor": 0.01, **settings}
    return TenantAuthClient(f"http://{HOST}:{proxy.port}", ADMIN_TOKEN, **options)  # type: ignore[arg-type]


def probe_count(srv: Server, probe: str, settle: float = 0.5) -> int:
    """Return how many requests labelled ``probe`` the server logged, once the log is quiet."""
    assert srv.access_log is not None
    deadline = time.monotonic() + 5
    count = -1
    while time.monotonic() < deadline:
        srv.access_log.poll()
        now = sum(n for (p, _, _), n in srv.access_log.lines.items() if p == probe)
        if now == count and now > 0:
            return now
        count = now
        time.sleep(settle)
    return count


def test_4xx_answers_are_never_retried(live: Server, tenant: Tenant) -> None:
    """A 401 (verify and admin), 404, 409 and 422 each reach the server exactly once, even
    with retries allowed."""
    cases = [
        (InvalidToken, ADMIN_TOKEN, lambda c: c.verify("a.b.c")),
        (Unauthorized, "wrong-admin-token-" + "x" * 20, lambda c: c.get_tenant(tenant.id)),
        (NotFound, ADMIN_TOKEN, lambda c: c.get_tenant("no-such-tenant")),
        (Conflict, ADMIN_TOKEN, lambda c: c.create_tenant(tenant.id, "again")),
        (BadRequest, ADMIN_TOKEN, lambda c: c.verify("a.b.c", audience="")),
    ]
    for i, (error, admin_token, call) in enumerate(cases):
        probe = f"no-retry-{i}-{secrets.token_hex(3)}"
        headers = {"X-Probe": probe}
        client = TenantAuthClient(base_url(live), admin_token, retries=3, headers=headers)
        with client, pytest.raises(error):
            call(client)
        assert probe_count(live, probe) == 1, error


def test_429_with_retry_after_is_not_retried(proxy: FaultProxy) -> None:
    """A 429 carrying Retry-After (as tenantauth's admin rate limit sends) is sent once and
    raised as RateLimited with its Retry-After: the caller decides when to come back."""
    with proxied(proxy) as client:
        proxy.fail_next(1, retry_after="1", status=429)
        with pytest.raises(RateLimited) as caught:
            client.get_tenant("acme")
    assert (caught.value.status, caught.value.retry_after) == (429, 1)
    assert proxy.total() == 1


def test_503_is_retried_with_backoff_then_succeeds(proxy: FaultProxy, tenant: Tenant) -> None:
    """Two 503s then a good answer: verify succeeds after exactly 3 requests."""
    with proxied(proxy) as client:
        token = client.issue_token(tenant.id, "alice")
        proxy.fail_next(2)
        assert client.verify(token).subject == "alice"
    assert proxy.total(*VERIFY) == 3


def test_503_retries_are_bounded(proxy: FaultProxy) -> None:
    """With retries=2, a tenantauth that keeps answering 503 is asked 3 times, then
    ServiceUnavailable carries the last problem's status and code."""
    with proxied(proxy) as client:
        proxy.fail_next(10)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            client.verify("a.b.c")
        elapsed = time.monotonic() - started
    assert proxy.total(*VERIFY) == 3
    assert (caught.value.status, caught.value.code) == (503, "storage_unavailable")
    assert elapsed < 2


def test_calls_that_must_not_repeat_are_not_retried_on_503(
    proxy: FaultProxy, tenant: Tenant
) -> None:
    """create_tenant, create_user and create_client are sent once despite a 503; rotate,
    a repeatable call, is retried and succeeds."""
    with proxied(proxy) as client:
        calls = [
            ("/v1/admin/tenants", lambda: client.create_tenant(f"t-{secrets.token_hex(4)}", "n")),
            (
                f"/v1/admin/tenants/{tenant.id}/users",
                lambda: client.create_user(tenant.id, "bob", "correct horse battery"),
            ),
            (
                f"/v1/admin/tenants/{tenant.id}/clients",
                lambda: client.create_client(tenant.id, "c", ["read"], ["client_credentials"]),
            ),
        ]
        for path, call in calls:
            proxy.fail_next(1)
            with pytest.raises(ServiceUnavailable):
                call()
            assert proxy.total("POST", path) == 1, path
        proxy.fail_next(1)
        assert client.rotate_tenant(tenant.id)["key_version"] == 2
    assert proxy.total("POST", f"/v1/admin/tenants/{tenant.id}/rotate") == 2


def test_lost_answers_of_repeatable_changes_are_confirmed_by_the_retry(
    proxy: FaultProxy, tenant: Tenant
) -> None:
    """When a rotate or delete was done but its answer was a 503 (change_unconfirmed), the
    retry repeats it: rotate rotates again, delete finds the tenant gone and succeeds."""
    with proxied(proxy) as client:
        token = client.issue_token(tenant.id, "alice")
        proxy.fail_next(1, forward=True)
        assert client.rotate_tenant(tenant.id)["key_version"] == 3  # done twice
        with pytest.raises(InvalidToken):
            client.verify(token)
        proxy.fail_next(1, forward=True)
        client.delete_tenant(tenant.id)  # first attempt deleted it; the retry's 404 is success
        assert proxy.total("DELETE", f"/v1/admin/tenants/{tenant.id}") == 2
        with pytest.raises(NotFound):  # a first answer of 404 is still an error
            client.delete_tenant(tenant.id)


def test_retry_after_is_respected_and_capped(proxy: FaultProxy, tenant: Tenant) -> None:
    """A 503 with Retry-After: 1 delays the retry by 1 s; Retry-After: 3600 is capped at
    backoff_max."""
    with proxied(proxy, backoff_max=0.3) as client:
        token = client.issue_token(tenant.id, "alice")
        proxy.fail_next(1, retry_after="3600")
        started = time.monotonic()
        assert client.verify(token).subject == "alice"
        assert time.monotonic() - started < 2
    with proxied(proxy, backoff_max=5) as client:
        proxy.fail_next(1, retry_after="1")
        started = time.monotonic()
        assert client.verify(token).subject == "alice"
        assert time.monotonic() - started >= 0.95


def test_connections_are_reused(proxy: FaultProxy, tenant: Tenant) -> None:
    """Twenty verifies and admin calls in a row travel over one pooled TCP connection."""
    with proxied(proxy) as client:
        token = client.issue_token(tenant.id, "alice")
        for _ in range(10):
            client.verify(token)
            client.get_tenant(tenant.id)
    assert proxy.total() == 21
    assert proxy.connections == 1


def test_stopped_server_is_service_unavailable_within_bounds(
    launch: Launch, tmp_path: Path, pg_database: str, redis_db: int
) -> None:
    """A client that verified against a server, after the server stops, raises
    ServiceUnavailable (no answer) after its bounded retries, quickly."""
    # A second server on the run's database and Redis DB, as a replica would be.
    env = production_environ(pg_database, redis_db_url(redis_db), tmp_path / "stopping.log")
    srv = launch("stopping", env, workers=1)
    tenant_id = f"t-{secrets.token_hex(5)}"
    with TenantAuthClient(base_url(srv), ADMIN_TOKEN, timeout=0.5, retries=2) as client:
        client.create_tenant(tenant_id, "Stopping")
        token = client.issue_token(tenant_id, "alice")
        assert client.verify(token).subject == "alice"
        srv.stop()
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            client.verify(token)
        elapsed = time.monotonic() - started
    assert (caught.value.status, caught.value.code) == (None, "unreachable")
    assert elapsed < 3  # (retries + 1) attempts, each refused at once, plus short backoffs
