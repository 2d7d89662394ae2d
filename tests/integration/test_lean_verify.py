"""The lean gateway path (api/lean_verify.py) answers byte for byte as the Flask view does,
records the same metrics and log line, and hands every other request to Flask (issue 14)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tenantauth.api.lean_verify import LeanVerify
from tenantauth.app import create_app
from tenantauth.observability import logs
from tests.integration.helpers import ADMIN, TENANTS, assert_json
from tests.support import Backend, make_settings

Answer = tuple[str, list[tuple[str, str]], bytes]
RID = {"X-Request-Id": "lean-diff-1"}


def _lean(app: Flask) -> LeanVerify:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, LeanVerify):  # under ProxyFix when proxy_hops is set
        wsgi = wsgi.app  # type: ignore[attr-defined]
    return wsgi


def _call(
    wsgi: Callable[..., Any], path: str, headers: dict[str, str], method: str = "GET"
) -> Answer:
    builder = EnvironBuilder(path=path, method=method, headers={**RID, **headers})
    body_iter, status, response_headers = run_wsgi_app(wsgi, builder.get_environ())
    return status, list(response_headers.items()), b"".join(body_iter)


def _both(
    app: Flask, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[Answer, Answer]:
    lean = _lean(app)
    return _call(lean, path, headers, method), _call(lean._app, path, headers, method)


def _not_flask(*_: object) -> Any:
    raise AssertionError("the lean path handed this request to Flask")


@pytest.fixture
def tokens(client: Any, app: Flask) -> dict[str, str]:
    """Tokens of every kind the gateway meets, on a tenant ``acme`` (and ``gone``, deleted)."""
    assert_json(client.post(TENANTS, json={"id": "acme", "name": "A"}, headers=ADMIN), 201)
    assert_json(client.post(TENANTS, json={"id": "gone", "name": "G"}, headers=ADMIN), 201)

    def issue(tenant: str, **body: Any) -> str:
        made = client.post(f"{TENANTS}/{tenant}/tokens", json=body, headers=ADMIN)
        return str(assert_json(made, 201)["access_token"])

    made = {
        "plain": issue("acme", sub="alice"),
        "scoped": issue("acme", sub="bob", scope="read write"),
        "unicode": issue("acme", sub="zoë%\u00e9"),
        "audience": issue("acme", sub="carol", aud="orders"),
        "revoked": issue("acme", sub="dave"),
        "gone": issue("gone", sub="erin"),
    }
    assert client.post(f"{TENANTS}/acme/users/dave/revoke", json={}, headers=ADMIN).status_code in (
        200,
        201,
    )
    assert client.delete(f"{TENANTS}/gone", headers=ADMIN).status_code == 204
    plain = made["plain"]
    made["forged"] = plain[:-4] + ("AAAA" if not plain.endswith("AAAA") else "BBBB")
    made["garbage"] = "x.y.z"
    made["unknown"] = plain.replace(plain.split(".")[0], plain.split(".")[0][:-2] + "xx", 1)
    return made


FAST = [
    ("plain", ""),
    ("scoped", ""),
    ("unicode", ""),
    ("audience", "?audience=orders"),
    ("audience", "?audience=billing"),
    ("plain", "?audience="),
    ("plain", "?audience=%ff"),
    ("audience", "?audience=ord%65rs"),
    ("revoked", ""),
    ("gone", ""),
    ("forged", ""),
    ("garbage", ""),
    ("unknown", ""),
]


@pytest.mark.parametrize(("kind", "query"), FAST)
def test_common_requests_get_the_same_bytes_without_flask(
    app: Flask, tokens: dict[str, str], kind: str, query: str
) -> None:
    """For each common gateway request the lean path answers by itself (Flask is never
    called) with the status line, headers (in order) and body the Flask view gives."""
    headers = {"Authorization": f"Bearer {tokens[kind]}"}
    lean, flask = _both(app, "/v1/verify" + query, headers)
    assert lean == flask
    alone = LeanVerify(_not_flask, **_lean_options(app))
    assert _call(alone, "/v1/verify" + query, headers) == flask


def test_no_credentials_is_the_same_uniform_401(app: Flask) -> None:
    """No Authorization header: the same 401 with the bare challenge, without Flask."""
    lean, flask = _both(app, "/v1/verify", {})
    assert lean == flask
    assert lean[0] == "401 UNAUTHORIZED"
    assert ("WWW-Authenticate", 'Bearer realm="tenantauth"') in lean[1]


HANDED_ON = [
    ("GET", "/v1/verify?access_token=abc", {}),
    ("GET", "/v1/verify?foo=1", {}),
    ("GET", "/v1/verify?audience=a&audience=b", {}),
    ("GET", "/v1/verify?audience=caf\u00e9", {}),
    ("HEAD", "/v1/verify", {}),
    ("GET", "/v1/verify", {"Authorization": "Basic YTpi"}),
    ("GET", "/v1/verify", {"Authorization": "Bearer a.b.c, Bearer d.e.f"}),
    ("GET", "/v1/verify", {"Authorization": "Bearer"}),
    ("GET", "/v1/verify/", {}),
    ("GET", "/v1/verify/some/path", {}),
    ("GET", "/v1/verify", {f"X-Pad-{n}": "p" for n in range(40)}),
    ("GET", "/v1/verify", {"X-Pad": "p" * 5000}),
    ("POST", "/v1/verify", {}),
    ("GET", "/v1/verify?audience=" + "a" * 5000, {}),
    ("GET", "/v1/verify?audience=" + "a" * 9000, {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), HANDED_ON)
def test_other_requests_are_answered_by_flask(
    app: Flask, tokens: dict[str, str], method: str, path: str, headers: dict[str, str]
) -> None:
    """Anything but the common shapes goes to the Flask app, whose answer passes through
    unchanged (the lean path never reproduces a rare answer)."""
    lean, flask = _both(app, path, headers, method)
    assert lean == flask
    called: list[str] = []

    def flask_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        called.append(environ["PATH_INFO"])
        start_response("204 NO CONTENT", [])
        return [b""]

    _call(LeanVerify(flask_app, **_lean_options(app)), path, headers, method)
    assert called == [path.split("?", maxsplit=1)[0]]


def _lean_options(app: Flask) -> dict[str, Any]:
    lean = _lean(app)
    return {
        "verifier": lean._verifier,
        "issuer": lean._issuer,
        "dumps": lean._dumps,
        "record": None,
        "max_header_fields": lean._max_fields * 2,
        "max_header_field_bytes": lean._max_bytes * 2,
        "max_request_line": lean._max_query * 2,
    }


def test_an_outage_is_the_same_503(tmp_path: Path) -> None:
    """With PostgreSQL and Redis both unreachable, the lean path answers the Flask path's
    503 problem, byte for byte."""
    down = Backend("postgres", "postgresql://tenantauth@127.0.0.1:1/none", "redis://127.0.0.1:1/0")
    settings = make_settings(down, tmp_path, auto_migrate=False, db_timeout=0.5, redis_timeout=0.1)
    app = create_app(settings)
    try:
        claims = {"sub": "alice", "jti": "j1", "tid": "acme"}
        token = pyjwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": "acme"})
        lean, flask = _both(app, "/v1/verify", {"Authorization": f"Bearer {token}"})
    finally:
        app.extensions["tenantauth"]["services"].close()
    assert lean[0] == "503 SERVICE UNAVAILABLE"
    assert lean == flask


@pytest.mark.postgres
@pytest.mark.redis
def test_metrics_and_log_line_match_the_flask_path(
    postgres_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request answered by the lean path counts under the same labels and writes the same
    log fields as the same request answered by Flask."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    app = create_app(make_settings(postgres_backend, tmp_path, log_level="INFO", log_format="json"))
    try:
        client = app.test_client()
        assert_json(client.post(TENANTS, json={"id": "acme", "name": "A"}, headers=ADMIN), 201)
        made = client.post(f"{TENANTS}/acme/tokens", json={"sub": "alice"}, headers=ADMIN)
        token = assert_json(made, 201)["access_token"]
        for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": "Bearer x.y.z"}):
            _both(app, "/v1/verify", headers)
        logs.flush()
        registry = app.extensions["tenantauth"]["services"].telemetry.registry
        labels = {"endpoint": "verify", "outcome": "accepted", "reason": "none"}
        assert registry.get_sample_value("tenantauth_verify_total", labels) == 2
        rejected = {**labels, "outcome": "rejected", "reason": "malformed"}
        assert registry.get_sample_value("tenantauth_verify_total", rejected) == 2
    finally:
        app.extensions["tenantauth"]["services"].close()
        logs.configure("WARNING", "json", stream=io.StringIO())
    lines = [json.loads(x) for x in out.getvalue().splitlines() if '"route": "/v1/verify"' in x]
    assert len(lines) == 4
    for lean, flask in (lines[0:2], lines[2:4]):
        for field in ("timestamp", "duration_ms"):
            lean.pop(field), flask.pop(field)
        assert lean == flask


def test_a_token_seen_before_is_verified_again(
    app: Flask, client: Any, tokens: dict[str, str]
) -> None:
    """The second answer for a token (its body memoised) is still Flask's, and once the
    token is revoked the lean path answers Flask's 401, not the memoised 200."""
    headers = {"Authorization": f"Bearer {tokens['plain']}"}
    lean = _lean(app)
    first = _call(lean, "/v1/verify", headers)
    again, flask = _both(app, "/v1/verify", headers)
    assert first == again == flask
    assert first[0].startswith("200")
    revoked = client.post(f"{TENANTS}/acme/users/alice/revoke", json={}, headers=ADMIN)
    assert revoked.status_code in (200, 201)
    after, flask_after = _both(app, "/v1/verify", headers)
    assert after == flask_after
    assert after[0].startswith("401")
