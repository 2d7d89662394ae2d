"""Pieces of tenantauth-client that need no server: the status-to-error table, the reading
of verify answers, the bearer header parsing, and import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from urllib3 import HTTPHeaderDict

from tenantauth_client import (
    BadRequest,
    Claims,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from tenantauth_client._bearer import bearer_credential, denial, required_scopes
from tenantauth_client._http import _answer, retry_policies
from tenantauth_client.client import _claims_of

PROBLEM = HTTPHeaderDict({"Content-Type": "application/problem+json"})


def problem_body(status: int, code: str = "some_code") -> bytes:
    """Return a tenantauth-style problem body."""
    body = {"status": status, "code": code, "title": "T", "detail": "D", "request_id": "rid"}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (413, BadRequest),
        (415, BadRequest),
        (422, BadRequest),
        (429, RateLimited),
        (500, ServiceUnavailable),
        (502, ServiceUnavailable),
        (503, ServiceUnavailable),
    ],
)
def test_each_error_status_maps_to_one_class(status: int, error: type[Exception]) -> None:
    """Every 4xx/5xx becomes the documented class, carrying the problem's members."""
    with pytest.raises(error) as caught:
        _answer(status, PROBLEM, problem_body(status))
    exc = caught.value
    assert (exc.status, exc.code, exc.title, exc.detail, exc.request_id) == (  # type: ignore[attr-defined]
        status,
        "some_code",
        "T",
        "D",
        "rid",
    )


def test_odd_answers() -> None:
    """A 429 keeps Retry-After; an error without a JSON body still maps by status; a
    redirect or a non-JSON 200 is ServiceUnavailable (never taken as success)."""
    headers = HTTPHeaderDict({"Content-Type": "application/problem+json", "Retry-After": "7"})
    with pytest.raises(RateLimited) as limited:
        _answer(429, headers, problem_body(429))
    assert limited.value.retry_after == 7
    with pytest.raises(NotFound) as html:
        _answer(404, HTTPHeaderDict({"Content-Type": "text/html"}), b"<html>")
    assert (html.value.code, html.value.request_id) == ("error", None)
    with pytest.raises(ServiceUnavailable, match="redirect"):
        _answer(302, HTTPHeaderDict({"Location": "http://elsewhere/"}), b"")
    with pytest.raises(ServiceUnavailable, match="not JSON"):
        _answer(200, HTTPHeaderDict(), b"<html>")
    assert _answer(204, HTTPHeaderDict(), b"") is None


@pytest.mark.parametrize(
    "answer",
    [
        {"active": False, "claims": {}},
        {"active": "true", "claims": {"tid": "a", "sub": "b", "exp": 1, "iat": 1}},
        {"active": True},
        {"active": True, "claims": {"tid": "a", "sub": "b", "exp": "1", "iat": 1}},
        {"active": True, "claims": {"tid": "a", "sub": 5, "exp": 1, "iat": 1}},
        {"active": True, "claims": {"tid": "a", "sub": "b", "exp": 1, "iat": 1, "aud": [1]}},
        {"active": True, "claims": {"tid": "a", "sub": "b", "exp": 10**30, "iat": 1}},
        [],
    ],
)
def test_a_200_that_is_not_a_verification_fails_closed(answer: object) -> None:
    """A 200 whose body is not an active verification with well-typed claims raises
    ServiceUnavailable: it is never read as an accepted token."""
    with pytest.raises(ServiceUnavailable):
        _claims_of(answer)


def test_claims_accept_both_audience_forms() -> None:
    """aud may be a string or an array (RFC 7519 §4.1.3); scope absent means no scopes."""
    base = {"tid": "a", "sub": "b", "exp": 2, "iat": 1}
    assert Claims.from_json({**base, "aud": "x"}).audience == ("x",)
    assert Claims.from_json({**base, "aud": ["x", "y"]}).audience == ("x", "y")
    assert Claims.from_json(base).scopes == frozenset()


def test_bearer_header_parsing() -> None:
    """The Bearer scheme is case-insensitive; other schemes and no header are 'no
    credentials' (None); a Bearer header without a credential is an empty one."""
    assert bearer_credential("Bearer abc") == "abc"
    assert bearer_credential("bEaReR  abc ") == "abc"
    assert bearer_credential("Bearer") == ""
    assert bearer_credential("Basic abc") is None
    assert bearer_credential("") is None and bearer_credential(None) is None


def test_scopes_and_challenges() -> None:
    """Scopes come as a string or an iterable, must be RFC 6749 §3.3 tokens, and appear
    sorted in the 403 challenge; a 503 carries no challenge."""
    assert required_scopes("b a") == required_scopes(["a", "b"]) == frozenset({"a", "b"})
    for bad in ('a"b', "a\\b", ["a b"], [""]):
        with pytest.raises(ValueError, match="scope"):
            required_scopes(bad)
    refusal = denial(403, "api", "insufficient_scope", "x", frozenset({"b", "a"}))
    headers = dict(refusal.headers)
    assert (
        headers["WWW-Authenticate"] == 'Bearer realm="api", error="insufficient_scope", scope="a b"'
    )
    assert "WWW-Authenticate" not in dict(denial(503, "api", "unavailable", "x").headers)


def test_unsent_policy_retries_no_status_and_no_read_error() -> None:
    """The policy of calls that must not repeat retries no status (503 included) and
    re-raises read errors; the safe one retries 503 only, for every method we send."""
    safe, unsent = retry_policies(2, 0.1, 2.0)
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert safe.is_retry(method, 503) and not safe.is_retry(method, 502)
        assert not safe.is_retry(method, 429, has_retry_after=True)
        assert not unsent.is_retry(method, 503, has_retry_after=True)
    assert unsent.read is False


def test_importing_the_client_never_imports_flask() -> None:
    """The base package and the WSGI middleware import neither flask nor werkzeug nor the
    server (checked in a fresh interpreter of the dev venv, where all are installed)."""
    code = (
        "import sys, tenantauth_client, tenantauth_client.wsgi, tenantauth_client.cache;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'werkzeug', 'tenantauth', 'psycopg', 'redis', 'argon2', 'jwt')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
