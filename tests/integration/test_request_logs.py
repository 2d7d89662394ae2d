"""The request log line and the request metrics, through the real app on PostgreSQL + Redis
(issue 13: one JSON line per request, request ids, reasons, sampling, no secrets)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import generate_latest

from tenantauth.app import create_app
from tenantauth.observability import logs
from tests.integration.helpers import ADMIN, TENANTS, assert_json, bearer
from tests.integration.test_log_hygiene import _forms, _run_the_api
from tests.support import Backend, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class Logged:
    """An app whose log stream is captured: ``lines()`` returns what it wrote so far."""

    def __init__(self, app: Flask, out: io.StringIO) -> None:
        self.app, self.out = app, out
        self.client: FlaskClient = app.test_client()

    def lines(self) -> list[dict[str, Any]]:
        logs.flush()
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == "request"]

    def metric(self, name: str, **labels: str) -> float:
        registry = self.app.extensions["tenantauth"]["services"].telemetry.registry
        return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def logged(
    postgres_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Logged]]:
    """Build apps that log at INFO as JSON into a buffer (``overrides`` change settings)."""
    made: list[Flask] = []

    def build(**overrides: Any) -> Logged:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        settings = make_settings(
            postgres_backend, tmp_path, **{"log_level": "INFO", "log_format": "json", **overrides}
        )
        app = create_app(settings)
        made.append(app)
        return Logged(app, out)

    yield build
    for app in made:
        app.extensions["tenantauth"]["services"].close()
    logs.configure("WARNING", "json", stream=io.StringIO())


def _tenant_and_token(client: FlaskClient) -> str:
    assert_json(client.post(TENANTS, json={"id": "acme", "name": "A"}, headers=ADMIN), 201)
    issued = client.post(f"{TENANTS}/acme/tokens", json={"sub": "alice"}, headers=ADMIN)
    return str(assert_json(issued, 201)["access_token"])


def test_one_line_per_request_with_its_id_route_status_and_tenant(
    logged: Callable[..., Logged],
) -> None:
    """Each request writes one line naming its request id (the one returned in
    X-Request-Id), method, route template, status, duration and tenant."""
    run = logged()
    token = _tenant_and_token(run.client)
    response = run.client.get("/v1/verify", headers=bearer(token))
    assert response.status_code == 200
    lines = run.requests()
    assert [line["route"] for line in lines] == [
        "/v1/admin/tenants",
        "/v1/admin/tenants/<tenant_id>/tokens",
        "/v1/verify",
    ]
    verify = lines[-1]
    assert verify["request_id"] == response.headers["X-Request-Id"]
    assert verify | {"method": "GET", "status": 200, "tenant_id": "acme"} == verify
    assert verify["level"] == "info" and 0 < verify["duration_ms"] < 10_000
    assert "reason" not in verify


def test_incoming_request_id_is_kept_when_well_formed(logged: Callable[..., Logged]) -> None:
    """A sane X-Request-Id is returned and logged as is; a malformed one is replaced."""
    run = logged()
    kept = run.client.get("/healthz", headers={"X-Request-Id": "edge-42.a_b"})
    replaced = run.client.get("/healthz", headers={"X-Request-Id": "bad id {}"})
    assert kept.headers["X-Request-Id"] == "edge-42.a_b"
    assert replaced.headers["X-Request-Id"] != "bad id {}"
    assert [line["request_id"] for line in run.requests()] == [
        "edge-42.a_b",
        replaced.headers["X-Request-Id"],
    ]


def test_rejections_log_their_reason_never_the_token(logged: Callable[..., Logged]) -> None:
    """A rejected token's line carries its reason category and text, and the metrics count
    it under that reason; the token itself appears nowhere."""
    run = logged()
    token = _tenant_and_token(run.client)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert run.client.get("/v1/verify", headers=bearer(forged)).status_code == 401
    assert run.client.get("/v1/verify").status_code == 401
    bad, missing = run.requests()[-2:]
    assert (bad["reason"], bad["detail"], bad["code"]) == (
        "signature",
        "bad signature",
        "invalid_token",
    )
    assert missing["reason"] == "missing"
    assert forged not in run.out.getvalue() and token not in run.out.getvalue()
    labels = {"endpoint": "verify", "outcome": "rejected"}
    assert run.metric("tenantauth_verify_total", **labels, reason="signature") == 1
    assert run.metric("tenantauth_verify_total", **labels, reason="missing") == 1


def test_sampling_leaves_out_accepted_verifies_only(logged: Callable[..., Logged]) -> None:
    """With TENANTAUTH_LOG_SAMPLE_ACCEPTED=0 no accepted verification is logged, but every
    rejection and admin request is, and metrics still count every verification."""
    run = logged(log_sample_accepted=0.0)
    token = _tenant_and_token(run.client)
    for _ in range(5):
        assert run.client.get("/v1/verify", headers=bearer(token)).status_code == 200
    assert run.client.get("/v1/verify", headers=bearer("x.y.z")).status_code == 401
    routes = [(line["route"], line["status"]) for line in run.requests()]
    assert routes == [
        ("/v1/admin/tenants", 201),
        ("/v1/admin/tenants/<tenant_id>/tokens", 201),
        ("/v1/verify", 401),
    ]
    accepted = {"endpoint": "verify", "outcome": "accepted", "reason": "none"}
    assert run.metric("tenantauth_verify_total", **accepted) == 5


def test_nothing_is_formatted_below_the_log_level(logged: Callable[..., Logged]) -> None:
    """At WARNING, successful and rejected requests write no line at all."""
    run = logged(log_level="WARNING")
    token = _tenant_and_token(run.client)
    run.client.get("/v1/verify", headers=bearer(token))
    run.client.get("/v1/verify", headers=bearer("x.y.z"))
    assert run.requests() == []
    assert (
        run.metric("tenantauth_http_requests_total", route="/v1/verify", method="GET", status="401")
        == 1
    )


def test_metric_labels_never_name_a_tenant_or_subject(logged: Callable[..., Logged]) -> None:
    """After a representative run, no label value in /metrics is a tenant id, a subject, a
    client id or a path with ids filled in (only route templates)."""
    run = logged()
    _run_the_api(run.client)
    registry = run.app.extensions["tenantauth"]["services"].telemetry.registry
    text = generate_latest(registry).decode()
    assert 'route="/v1/admin/tenants/<tenant_id>/rotate"' in text
    for value in ('"acme"', '"alice"', "/acme/", 'tenant_id="'):
        assert value not in text, value


def test_no_secret_reaches_the_json_request_log(logged: Callable[..., Logged]) -> None:
    """The log-hygiene run, at DEBUG, rendered as the JSON stream production writes: no
    password, secret or token in any form, and no Authorization header or Basic/Bearer value."""
    run = logged(log_level="DEBUG")
    secrets = _run_the_api(run.client)
    text = run.out.getvalue()
    assert '"event": "request"' in text, "nothing was logged: the capture is not working"
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, f"a secret ({secret[:6]}...) reached the logs"
    for header in ("Authorization", "Bearer ", "Basic "):
        assert header not in text
