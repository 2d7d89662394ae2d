"""/metrics under gunicorn (and granian): one port, the sum of every worker, totals that
survive a worker's death and live gauges that drop it, JSON request lines on stdout (issue 13)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantauth import __version__
from tests.e2e.harness import (
    HOST,
    Admin,
    Launch,
    Server,
    call,
    children_of,
    free_port,
    production_environ,
    served_by,
)
from tests.support import ADMIN_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
ACCEPTED = (
    "tenantauth_verify_total",
    (("endpoint", "verify"), ("outcome", "accepted"), ("reason", "none")),
)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of the server's /metrics, by (name, sorted labels)."""
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape_until(server: Server, expected: dict[Any, float], timeout: float = 5.0) -> Any:
    """Scrape until every sample of ``expected`` reads its value, and return that scrape:
    a worker adds its counts to /metrics every 0.1 s (observability/tally.py), so a scrape
    right after the requests may not show the last ones yet. Fails with the last values."""
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(server)
        if all(got.get(sample) == value for sample, value in expected.items()):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"expected {expected}, got {[got.get(s) for s in expected]}")
        time.sleep(0.05)


def _start(launch: Launch, tmp_path: Path, pg_url: str, redis_url: str) -> Server:
    env = production_environ(pg_url, redis_url, tmp_path / "m.access.log")
    env["TENANTAUTH_LOG_LEVEL"] = "INFO"  # request lines are INFO
    return launch("metrics", env, workers=2)


#: TENANTAUTH_DB_POOL_MAX_SIZE's default: what each worker adds to tenantauth_db_pool_max.
POOL_MAX = 10
POOL_MAX_SAMPLE = ("tenantauth_db_pool_max", ())


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_metrics_sum_every_worker_and_survive_a_worker_death(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """200 verifications on fresh connections (spread over both workers) count exactly 200
    (once folded: within 0.1 s); after a worker is SIGKILLed and replaced, the count does
    not go down, new requests add to it, and the dead worker's live gauges no longer count
    (the pool maximum is that of the two running workers)."""
    server = _start(launch, tmp_path, pg_url, redis_url)
    admin = Admin(server.port)
    admin.create_tenant("acme")
    token = admin.issue("acme")
    for _ in range(200):
        assert call(server.port, "GET", "/v1/verify", token=token).status == 200
    scrape_until(server, {ACCEPTED: 200})
    victim = min(children_of(server.proc.pid))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while len(children_of(server.proc.pid) - {victim}) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(10):
        assert call(server.port, "GET", "/v1/verify", token=token).status == 200
    requests = (
        "tenantauth_http_requests_total",
        (("method", "GET"), ("route", "/v1/verify"), ("status", "200")),
    )
    scrape_until(server, {ACCEPTED: 210, requests: 210})
    _every_worker_reads_the_database(server)
    assert scrape(server)[POOL_MAX_SAMPLE] == 2 * POOL_MAX


def _every_worker_reads_the_database(server: Server, timeout: float = 20.0) -> None:
    """Send admin reads (fresh connections, so any worker answers) until every running
    worker has answered one: each has then reported its pool to the live gauges."""
    assert server.access_log is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = call(server.port, "GET", "/v1/admin/tenants/acme", token=ADMIN_TOKEN, probe="pool")
        assert reply.status == 200, reply
        if children_of(server.proc.pid) <= served_by([server.access_log], "pool", 200):
            return
    pytest.fail(f"not every worker answered within {timeout} s")


def test_metrics_are_not_on_the_api_port_and_logs_are_json(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """The API port answers /metrics with a 404 problem (the ingress routes only there);
    every request line on stdout is one JSON object with its request id."""
    server = _start(launch, tmp_path, pg_url, redis_url)
    reply = call(server.port, "GET", "/metrics")
    assert reply.status == 404
    assert scrape(server)[("tenantauth_build_info", (("version", __version__),))] == 1
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in server.stdout.read_text().splitlines()
            if line.startswith("{")
        ]
        if any(line.get("route") == "<unmatched>" for line in lines):
            break
        time.sleep(0.05)
    unmatched = [line for line in lines if line.get("route") == "<unmatched>"]
    assert unmatched and unmatched[0]["status"] == 404
    assert unmatched[0]["request_id"] == reply.headers["X-Request-Id"]


def test_a_taken_metrics_port_stops_serve_with_a_clear_message(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """`tenantauth serve` refuses to start when its metrics port is taken, and says which
    setting to change."""
    first = _start(launch, tmp_path, pg_url, redis_url)
    env = production_environ(pg_url, redis_url, tmp_path / "second.access.log")
    env["TENANTAUTH_METRICS_PORT"] = str(first.metrics_port)
    second = launch("second", env, workers=1, port=free_port(), ready=False)
    assert second.proc.wait(30) == 1
    err = second.stderr.read_text()
    assert f"cannot serve metrics on 127.0.0.1:{first.metrics_port}" in err
    assert "TENANTAUTH_METRICS_PORT" in err
