"""The lean token path (api/lean_token.py) answers the common client_credentials request byte
for byte as the Flask view does, whatever the grant's outcome, records the same metrics and log
line, counts a failed attempt once, and hands every other request to Flask (issue 14)."""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tenantauth.api import lean_token, oauth
from tenantauth.api.lean_token import LeanToken
from tenantauth.app import create_app
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import MAX_SCOPE_LENGTH
from tenantauth.observability import logs
from tests.integration.helpers import ADMIN, TENANTS, create_tenant
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, add_client
from tests.support import Backend, FixedClock, make_settings

Answer = tuple[str, list[tuple[str, str]], bytes]
FORM = "application/x-www-form-urlencoded"
RID = {"X-Request-Id": "lean-token-1"}
TOKEN = "/v1/tenants/acme/token"
CC = b"grant_type=client_credentials"
#: Allowed only the password grant; no secret needed beyond the usual one.
PASSWORD_ONLY = "tac_pw"


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    """An HTTP Basic header (id and secret need no form-encoding here)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _lean(app: Flask) -> LeanToken:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, LeanToken):  # under LeanVerify (and ProxyFix when set)
        wsgi = getattr(wsgi, "_app", None) or wsgi.app  # type: ignore[attr-defined]
    return wsgi


def _environ(
    path: str, headers: dict[str, str], body: bytes, method: str, content_type: str | None
) -> dict[str, Any]:
    path, _, query = path.partition("?")
    builder = EnvironBuilder(
        path=path,
        method=method,
        headers={**RID, **headers},
        data=body,
        content_type=content_type,
        query_string=query or None,
    )
    return builder.get_environ()


def _call(
    wsgi: Callable[..., Any],
    path: str = TOKEN,
    headers: dict[str, str] | None = None,
    body: bytes = CC,
    *,
    method: str = "POST",
    content_type: str | None = FORM,
) -> Answer:
    environ = _environ(
        path, headers if headers is not None else basic(), body, method, content_type
    )
    body_iter, status, response_headers = run_wsgi_app(wsgi, environ)
    return status, list(response_headers.items()), b"".join(body_iter)


def _not_flask(*_: object) -> Any:
    raise AssertionError("the lean path handed this request to Flask")


def _alone(app: Flask, flask_app: Callable[..., Any] = _not_flask) -> LeanToken:
    """A LeanToken like the app's, in front of ``flask_app`` instead of the Flask app."""
    lean = _lean(app)
    return LeanToken(
        flask_app,
        services=lean._services,
        issuer=lean._issuer,
        dumps=lean._dumps,
        record=None,
        max_header_fields=lean._max_fields * 2,
        max_header_field_bytes=lean._max_bytes * 2,
    )


def _same_token_answer(lean: Answer, flask: Answer) -> None:
    """Two 200s are the same but for their token's random ``jti`` (of the same length)."""
    assert lean[:2] == flask[:2]
    assert lean[0] == "200 OK"
    tokens = [json.loads(answer[2])["access_token"] for answer in (lean, flask)]
    claims = [pyjwt.decode(t, options={"verify_signature": False}) for t in tokens]
    jtis = [c.pop("jti") for c in claims]
    assert claims[0] == claims[1]
    assert jtis[0] != jtis[1]
    assert [pyjwt.get_unverified_header(t) for t in tokens] == [
        pyjwt.get_unverified_header(tokens[1])
    ] * 2
    assert lean[2].replace(tokens[0].encode(), b"T") == flask[2].replace(tokens[1].encode(), b"T")


@pytest.fixture
def accounts(client: FlaskClient, services: Services) -> None:
    """Tenant acme with client tac_app (read write, every grant) and tac_pw (password only);
    tenants held (suspended) and gone (deleted), each with the same client."""
    for tenant in ("acme", "held", "gone"):
        create_tenant(client, tenant)
        add_client(services, tenant)
    add_client(services, "acme", PASSWORD_ONLY, CLIENT_SECRET, grant_types=["password"])
    held = client.patch(f"{TENANTS}/held", json={"status": "suspended"}, headers=ADMIN)
    assert held.status_code == 200, held.get_data(as_text=True)
    assert client.delete(f"{TENANTS}/gone", headers=ADMIN).status_code == 204


SUCCESS = [
    b"grant_type=client_credentials",
    b"grant_type=client_credentials&scope=read",
    b"scope=write+read&grant_type=client_credentials",
    b"grant_type=client_credentials&scope=r%65ad",
    b"grant_type=client_credentials&scope=",
]


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize("body", SUCCESS)
def test_tokens_are_issued_with_the_same_bytes_without_flask(app: Flask, body: bytes) -> None:
    """A successful issuance answers the Flask view's status line, headers (in order) and
    body, but for the token's random jti; and the lean path answers it without Flask."""
    lean = _lean(app)
    _same_token_answer(_call(lean, body=body), _call(lean._app, body=body))
    _same_token_answer(_call(_alone(app), body=body), _call(lean._app, body=body))


FAILURES = [
    ("bad secret", TOKEN, basic(secret="wrong"), CC, "401 UNAUTHORIZED"),
    ("unknown client", TOKEN, basic(client_id="tac_nobody"), CC, "401 UNAUTHORIZED"),
    ("unknown tenant", "/v1/tenants/nowhere/token", basic(), CC, "401 UNAUTHORIZED"),
    ("suspended tenant", "/v1/tenants/held/token", basic(), CC, "401 UNAUTHORIZED"),
    ("deleted tenant", "/v1/tenants/gone/token", basic(), CC, "401 UNAUTHORIZED"),
    ("grant not allowed", TOKEN, basic(client_id=PASSWORD_ONLY), CC, "400 BAD REQUEST"),
    ("scope not allowed", TOKEN, basic(), CC + b"&scope=admin", "400 BAD REQUEST"),
    ("scope malformed", TOKEN, basic(), CC + b"&scope=a%22b", "400 BAD REQUEST"),
    (
        "scope too long",
        TOKEN,
        basic(),
        CC + b"&scope=" + b"a" * (MAX_SCOPE_LENGTH + 1),
        "400 BAD REQUEST",
    ),
]


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(
    ("path", "headers", "body", "status"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_failures_are_the_same_bytes_without_flask(
    app: Flask, path: str, headers: dict[str, str], body: bytes, status: str
) -> None:
    """Every refusal of the grant answers the Flask view's bytes, without Flask."""
    lean, flask = (
        _call(_lean(app), path, headers, body),
        _call(_lean(app)._app, path, headers, body),
    )
    assert lean == flask
    assert lean[0] == status
    assert _call(_alone(app), path, headers, body) == flask


@pytest.mark.usefixtures("accounts")
def test_rate_limited_is_the_same_429(app: Flask) -> None:
    """Once the client id is locked, the lean path answers Flask's 429 with Retry-After."""
    for _ in range(5):
        assert _call(_lean(app)._app, headers=basic(secret="wrong"))[0] == "401 UNAUTHORIZED"
    lean, flask = _call(_lean(app)), _call(_lean(app)._app)
    assert lean == flask == _call(_alone(app))
    assert lean[0] == "429 TOO MANY REQUESTS"
    assert "Retry-After" in dict(lean[1])


@pytest.mark.usefixtures("accounts")
def test_a_failed_attempt_is_counted_once(app: Flask) -> None:
    """Failures answered by the lean path (never by Flask here) are counted exactly once
    each: five wrong secrets (the limit) are all 401 — counted twice, the third would lock
    the client — and then the right secret is refused with 429 — never counted, it would be
    issued."""
    alone = _alone(app)
    for _ in range(5):
        assert _call(alone, headers=basic(secret="wrong"))[0] == "401 UNAUTHORIZED"
    assert _call(alone)[0] == "429 TOO MANY REQUESTS"


@pytest.mark.usefixtures("accounts")
def test_a_bug_is_the_same_500(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception in the grant is Flask's generic 500, byte for byte."""

    def broken(*_: object) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(lean_token, "grant_token", broken)
    monkeypatch.setattr(oauth, "grant_token", broken)
    lean, flask = _call(_lean(app)), _call(_lean(app)._app)
    assert lean == flask == _call(_alone(app))
    assert lean[0] == "500 INTERNAL SERVER ERROR"


@pytest.mark.postgres
@pytest.mark.redis
def test_a_storage_outage_is_the_same_503(tmp_path: Path, redis_url: str) -> None:
    """With PostgreSQL unreachable (Redis up, so the limiter answers), the lean path answers
    the Flask path's 503 (temporarily_unavailable), byte for byte."""
    down = Backend("postgres", "postgresql://tenantauth@127.0.0.1:1/none", redis_url)
    app = create_app(make_settings(down, tmp_path, auto_migrate=False, db_timeout=0.5))
    try:
        lean, flask = _call(_lean(app)), _call(_lean(app)._app)
        assert _call(_alone(app)) == flask
    finally:
        app.extensions["tenantauth"]["services"].close()
    assert lean[0] == "503 SERVICE UNAVAILABLE"
    assert json.loads(lean[2])["error"] == "temporarily_unavailable"
    assert lean == flask


def _pad(count: int) -> dict[str, str]:
    return {**basic(), **{f"X-Pad-{n}": "p" for n in range(count)}}


ODD = "application/x-www-form-urlencoded; charset=utf-8"
HANDED_ON: list[tuple[str, str, dict[str, str], bytes, str, str | None]] = [
    ("malformed basic", TOKEN, {"Authorization": "Basic !!!"}, CC, "POST", FORM),
    ("basic without colon", TOKEN, {"Authorization": "Basic bm9jb2xvbg=="}, CC, "POST", FORM),
    ("bearer", TOKEN, {"Authorization": "Bearer a.b.c"}, CC, "POST", FORM),
    ("two credentials", TOKEN, {"Authorization": "Basic YTpi, Basic YTpi"}, CC, "POST", FORM),
    ("client_secret_post", TOKEN, {}, CC + b"&client_id=tac_app&client_secret=x", "POST", FORM),
    ("client_id in form", TOKEN, basic(), CC + b"&client_id=tac_app", "POST", FORM),
    ("password grant", TOKEN, basic(), b"grant_type=password&username=a&password=b", "POST", FORM),
    ("no grant_type", TOKEN, basic(), b"scope=read", "POST", FORM),
    ("unknown parameter", TOKEN, basic(), CC + b"&foo=1", "POST", FORM),
    ("repeated parameter", TOKEN, basic(), CC + b"&scope=a&scope=b", "POST", FORM),
    ("non-ASCII body", TOKEN, basic(), CC + "&scope=café".encode(), "POST", FORM),
    ("long body", TOKEN, basic(), CC + b"&scope=" + b"a" * 5000, "POST", FORM),
    ("empty body", TOKEN, basic(), b"", "POST", FORM),
    ("charset parameter", TOKEN, basic(), CC, "POST", ODD),
    (
        "JSON body",
        TOKEN,
        basic(),
        b'{"grant_type": "client_credentials"}',
        "POST",
        "application/json",
    ),
    ("query", TOKEN + "?scope=read", basic(), CC, "POST", FORM),
    ("impossible tenant id", "/v1/tenants/ACME!/token", basic(), CC, "POST", FORM),
    ("trailing slash", TOKEN + "/", basic(), CC, "POST", FORM),
    ("GET", TOKEN, basic(), b"", "GET", None),
    ("many headers", TOKEN, _pad(40), CC, "POST", FORM),
    ("long header", TOKEN, {**basic(), "X-Pad": "p" * 5000}, CC, "POST", FORM),
]


Case = tuple[str, dict[str, str], bytes, str, str | None]


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize("case", [h[1:] for h in HANDED_ON], ids=[h[0] for h in HANDED_ON])
def test_other_requests_are_answered_by_flask(app: Flask, case: Case) -> None:
    """Anything but the common shape goes to the Flask app with its body intact, and the
    Flask app's answer passes through unchanged."""
    path, headers, body, method, content_type = case
    lean = _lean(app)
    kw: dict[str, Any] = {"method": method, "content_type": content_type}
    answers = _call(lean, path, headers, body, **kw), _call(lean._app, path, headers, body, **kw)
    if answers[0][0] == "200 OK":  # issued by Flask both times: the same but for the jti
        _same_token_answer(*answers)
    else:
        assert answers[0] == answers[1]
    received: list[bytes] = []

    def flask_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        received.append(environ["wsgi.input"].read())
        start_response("204 NO CONTENT", [])
        return [b""]

    _call(_alone(app, flask_app), path, headers, body, **kw)
    assert received == [body]


@pytest.mark.postgres
@pytest.mark.redis
def test_metrics_and_log_line_match_the_flask_path(
    postgres_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An issuance and a refusal answered by the lean path count under the same labels and
    write the same log fields as the same requests answered by Flask."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)  # in the test: pytest swaps stdout per phase
    settings = make_settings(postgres_backend, tmp_path, log_level="INFO", log_format="json")
    app = create_app(settings, clock=FixedClock())
    services = app.extensions["tenantauth"]["services"]
    try:
        create_tenant(app.test_client(), "acme")
        add_client(services, "acme")
        lean = _lean(app)
        for headers in (basic(), basic(secret="wrong")):
            _call(lean, headers=headers)
            _call(lean._app, headers=headers)
        logs.flush()
        registry = services.telemetry.registry
        for status in ("200", "401"):
            labels = {"route": lean_token.ROUTE, "method": "POST", "status": status}
            assert registry.get_sample_value("tenantauth_http_requests_total", labels) == 2
    finally:
        services.close()
        logs.configure("WARNING", "json", stream=io.StringIO())
    lines = [json.loads(x) for x in out.getvalue().splitlines() if "/token" in x]
    assert len(lines) == 4
    assert [line["status"] for line in lines] == [200, 200, 401, 401]
    for lean_line, flask_line in (lines[0:2], lines[2:4]):
        for field in ("timestamp", "duration_ms"):
            lean_line.pop(field), flask_line.pop(field)
        assert lean_line == flask_line
