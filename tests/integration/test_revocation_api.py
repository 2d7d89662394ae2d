"""Revoking one user's tokens ("log out everywhere") or one token (by jti) over HTTP, on SQLite
and on PostgreSQL + Redis: what the endpoints answer, and that every verifier path (warm Redis
entry, cache miss, database only) honours the revocation as soon as the call returned."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.app import create_app
from tenantauth.cache import cache_key
from tenantauth.domain.services import Services
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    claims_for,
    create_tenant,
    issue,
    new_secret,
    sign,
)
from tests.support import Backend, FixedClock, make_settings

ACME = f"{TENANTS}/acme"
VERIFY = "/v1/verify"
SUBJECT_REVOCATION_MEMBERS = {"tenant_id", "subject", "version", "revoked_at"}


@pytest.fixture
def acme(client: FlaskClient) -> dict[str, Any]:
    """The tenant 'acme', created through the API."""
    return create_tenant(client, "acme")


@pytest.fixture
def pg_app(postgres_backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app on PostgreSQL + Redis only (for what depends on the shared cache)."""
    application = create_app(make_settings(postgres_backend, tmp_path), clock=clock)
    yield application
    application.extensions["tenantauth"]["services"].close()


@pytest.fixture
def pg_client(pg_app: Flask) -> FlaskClient:
    """The test client of ``pg_app``, with tenant 'acme' created."""
    client = pg_app.test_client()
    create_tenant(client, "acme")
    return client


@pytest.fixture
def cache_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the Redis DB the PostgreSQL app caches in."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


# --------------------------------------------------------------------------- helpers


def revoke_user(client: FlaskClient, username: str, tenant: str = "acme") -> TestResponse:
    """POST .../users/{username}/revoke with the admin token (username used as given)."""
    return client.post(f"{TENANTS}/{tenant}/users/{username}/revoke", headers=ADMIN)


def revoke_subject(client: FlaskClient, subject: str, tenant: str = "acme") -> TestResponse:
    """POST .../subjects/revoke {"sub": subject} with the admin token."""
    return client.post(f"{TENANTS}/{tenant}/subjects/revoke", json={"sub": subject}, headers=ADMIN)


def claims_for_new_token(client: FlaskClient, subject: str) -> dict[str, Any]:
    """Return the claims of a token issued to ``subject`` now."""
    return claims_of(issue(client, "acme", sub=subject))


def revoke_token(client: FlaskClient, token: str, tenant: str = "acme") -> TestResponse:
    """POST .../tokens/revoke {"token": token} with the admin token."""
    return client.post(f"{TENANTS}/{tenant}/tokens/revoke", json={"token": token}, headers=ADMIN)


def revoked(client: FlaskClient, token: str, tenant: str = "acme") -> bool:
    """Revoke ``token`` and return the ``revoked`` member of the 200 answer."""
    body = assert_json(revoke_token(client, token, tenant), 200)
    assert body.keys() == {"revoked"}
    assert isinstance(body["revoked"], bool)
    return body["revoked"]  # type: ignore[no-any-return]


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token, unverified (to read what was issued)."""
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def assert_accepted(client: FlaskClient, token: str) -> None:
    """GET and POST /v1/verify both accept ``token``."""
    got = assert_json(client.get(VERIFY, headers=bearer(token)), 200)
    posted = assert_json(client.post(VERIFY, json={"token": token}), 200)
    assert got == posted == {"active": True, "claims": claims_of(token)}


def assert_rejected(client: FlaskClient, token: str) -> None:
    """GET and POST /v1/verify both reject ``token`` with the uniform invalid_token problem."""
    assert_problem(client.get(VERIFY, headers=bearer(token)), 401, "invalid_token")
    assert_problem(client.post(VERIFY, json={"token": token}), 401, "invalid_token")


def tenant_keys(cache: redis.Redis, tenant: str = "acme") -> set[str]:
    """The names of every Redis key of ``tenant`` (entry, fence, revocation marks)."""
    pattern = cache_key(tenant, "*")
    return {k.decode() for k in cache.scan_iter(match=pattern, count=1000)}


def forget_cached_state(cache: redis.Redis, tenant: str = "acme") -> None:
    """Delete the tenant's entry and every revocation mark (as a Redis restart would), keeping
    the fence: the next verification must ask PostgreSQL and refill from it."""
    doomed = tenant_keys(cache, tenant) - {cache_key(tenant, "fence")}
    assert cache_key(tenant, "entry") in doomed, "the entry was not cached: nothing to forget"
    assert len(doomed) > 1, "no revocation mark was cached: nothing to forget"
    cache.delete(*doomed)


def unsigned(payload: dict[str, Any] | str, kid: str = "acme") -> str:
    """A well-formed token for ``kid`` with ``payload`` (a dict, or raw JSON text) and a
    made-up signature."""
    text = payload if isinstance(payload, str) else json.dumps(payload)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(b'{"alg":"HS256","kid":"' + kid.encode() + b'","typ":"JWT"}')
    return f"{header}.{b64(text.encode())}." + "A" * 43


# --------------------------------------------------------------------------- user revoke


def test_user_revoke_answers_the_revocation_and_counts_up(
    client: FlaskClient, acme: dict[str, Any], clock: FixedClock
) -> None:
    """200 {tenant_id, subject, version, revoked_at}; each revoke is one version higher."""
    for version in (1, 2, 3):
        body = assert_json(revoke_user(client, "alice"), 200)
        assert body.keys() == SUBJECT_REVOCATION_MEMBERS
        assert (body["tenant_id"], body["subject"], body["version"]) == ("acme", "alice", version)
        at = datetime.fromisoformat(body["revoked_at"])
        assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert at.timestamp() == int(clock.now())
        clock.advance(7)
    assert assert_json(revoke_user(client, "bob"), 200)["version"] == 1  # per subject


def test_user_revoke_rejects_that_users_tokens_only(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """The user's earlier tokens are 401; bob's and alice's later tokens (uv = version) are 200."""
    first, second = issue(client, "acme", sub="alice"), issue(client, "acme", sub="alice")
    bob = issue(client, "acme", sub="bob")
    assert "uv" not in claims_of(first)
    for token in (first, second, bob):
        assert_accepted(client, token)
    version = assert_json(revoke_user(client, "alice"), 200)["version"]
    assert_rejected(client, first)
    assert_rejected(client, second)
    assert_accepted(client, bob)
    fresh = issue(client, "acme", sub="alice")
    assert claims_of(fresh)["uv"] == version == 1
    assert_accepted(client, fresh)
    assert assert_json(revoke_user(client, "alice"), 200)["version"] == 2
    assert_rejected(client, fresh)
    newest = issue(client, "acme", sub="alice")
    assert claims_of(newest)["uv"] == 2
    assert_accepted(client, newest)
    assert_accepted(client, bob)


def test_user_revoke_is_per_tenant(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Revoking alice of acme leaves alice of another tenant alone."""
    create_tenant(client, "globex")
    theirs = issue(client, "globex", sub="alice")
    mine = issue(client, "acme", sub="alice")
    assert_json(revoke_user(client, "alice"), 200)
    assert_rejected(client, mine)
    assert_accepted(client, theirs)
    assert "uv" not in claims_of(issue(client, "globex", sub="alice"))


def test_user_revoke_of_a_subject_that_never_had_tokens(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """A subject without tokens can be revoked; its first token then carries uv 1 and verifies."""
    body = assert_json(revoke_user(client, "nobody-yet"), 200)
    assert (body["subject"], body["version"]) == ("nobody-yet", 1)
    token = issue(client, "acme", sub="nobody-yet")
    assert claims_of(token)["uv"] == 1
    assert_accepted(client, token)


def test_user_revoke_takes_a_percent_encoded_username(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """A non-ASCII username with a space, percent-encoded in the path, names that subject."""
    token = issue(client, "acme", sub="José Ñ")
    body = assert_json(revoke_user(client, "Jos%C3%A9%20%C3%91"), 200)
    assert body["subject"] == "José Ñ"
    assert_rejected(client, token)


def test_user_revoke_of_a_subject_with_a_slash(client: FlaskClient, acme: dict[str, Any]) -> None:
    """A subject holding '/', which tokens may be issued to, is revoked by naming it in the
    body of POST …/subjects/revoke (a path segment cannot carry it: %2F is decoded first)."""
    token = issue(client, "acme", sub="team/alice")
    assert_problem(revoke_user(client, "team%2Falice"), 404, "not_found")
    body = assert_json(revoke_subject(client, "team/alice"), 200)
    assert body.keys() == SUBJECT_REVOCATION_MEMBERS
    assert (body["tenant_id"], body["subject"], body["version"]) == ("acme", "team/alice", 1)
    assert_rejected(client, token)
    assert claims_for_new_token(client, "team/alice")["uv"] == 1


@pytest.mark.parametrize(
    "subject",
    ["team/alice", "/lead", "trail/", "a//b", ".", "..", "a?b#c", "50%", " spaced ", "José/Ñ"],
)
def test_subject_revoke_takes_every_subject_a_token_can_have(
    client: FlaskClient, acme: dict[str, Any], subject: str
) -> None:
    """Every subject tokens are issued to, those a URL path would mangle (slashes, dot
    segments, '?', '#', '%') included, is revoked exactly: its token is rejected, another
    subject's is not."""
    token, bystander = issue(client, "acme", sub=subject), issue(client, "acme", sub="bystander")
    assert assert_json(revoke_subject(client, subject), 200)["subject"] == subject
    assert_rejected(client, token)
    assert_accepted(client, bystander)


@pytest.mark.parametrize(
    "body",
    [{}, {"sub": ""}, {"sub": "a\nb"}, {"sub": "x" * 256}, {"sub": 5}, {"sub": "a", "x": 1}],
    ids=["missing", "empty", "LF", "256-chars", "number", "unknown-field"],
)
def test_subject_revoke_refuses_what_no_token_can_carry(
    client: FlaskClient, acme: dict[str, Any], body: dict[str, Any]
) -> None:
    """A missing, empty, over-long or control-character subject, or an unknown field, is a
    422 problem and revokes nothing."""
    token = issue(client, "acme", sub="alice")
    r = client.post(f"{ACME}/subjects/revoke", json=body, headers=ADMIN)
    assert_problem(r, 422, "invalid_request")
    assert_accepted(client, token)


def test_user_revoke_on_a_suspended_tenant_holds_after_resume(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """A suspended tenant's user can be revoked; resuming does not bring the token back."""
    token = issue(client, "acme", sub="alice")
    assert_json(client.patch(ACME, json={"status": "suspended"}, headers=ADMIN), 200)
    assert_json(revoke_user(client, "alice"), 200)
    assert_json(client.patch(ACME, json={"status": "active"}, headers=ADMIN), 200)
    assert_rejected(client, token)
    assert_accepted(client, issue(client, "acme", sub="alice"))


def test_user_revoke_unknown_or_deleted_tenant_is_404(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """Unknown, malformed and deleted tenant ids are 404 problems."""
    for tenant in ("ghost", "Bad!", "x" * 200):
        assert_problem(revoke_user(client, "alice", tenant), 404, "not_found")
    create_tenant(client, "gone")
    assert client.delete(f"{TENANTS}/gone", headers=ADMIN).status_code == 204
    assert_problem(revoke_user(client, "alice", "gone"), 404, "not_found")


@pytest.mark.parametrize(
    "username",
    ["a%0Ab", "a%00b", "%0D%0A", "tab%09", "del%7F", "nel%C2%85", "x" * 256],
    ids=["LF", "NUL", "CRLF", "TAB", "DEL", "C1-NEL", "256-chars"],
)
def test_user_revoke_malformed_username_is_422(
    client: FlaskClient, acme: dict[str, Any], username: str
) -> None:
    """Control characters or an over-long name are a 422 problem, and revoke nothing."""
    token = issue(client, "acme", sub="alice")
    assert_problem(revoke_user(client, username), 422, "invalid_request")
    assert_accepted(client, token)
    assert "uv" not in claims_of(issue(client, "acme", sub="alice"))


def test_user_revoke_longest_username_is_fine(client: FlaskClient, acme: dict[str, Any]) -> None:
    """A 255-character username (the longest `sub`) is accepted."""
    assert assert_json(revoke_user(client, "x" * 255), 200)["subject"] == "x" * 255


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-admin-token-0123456789abcdef"}],
    ids=["missing", "wrong"],
)
def test_revoke_endpoints_need_the_admin_token(
    client: FlaskClient, acme: dict[str, Any], headers: dict[str, str]
) -> None:
    """Without the admin token both endpoints are 401 problems and nothing is revoked."""
    token = issue(client, "acme", sub="alice")
    r = client.post(f"{ACME}/users/alice/revoke", headers=headers)
    assert_problem(r, 401)
    r = client.post(f"{ACME}/tokens/revoke", json={"token": token}, headers=headers)
    assert_problem(r, 401)
    assert_accepted(client, token)
    assert "uv" not in claims_of(issue(client, "acme", sub="alice"))


def test_reserved_claim_uv_cannot_be_set_at_issue(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """`claims: {"uv": 5}` is a 422 naming uv: a token must not outlive future revocations."""
    r = client.post(f"{ACME}/tokens", json={"sub": "alice", "claims": {"uv": 5}}, headers=ADMIN)
    assert "uv" in assert_problem(r, 422, "invalid_request")["detail"]


# --------------------------------------------------------------------------- token revoke


def test_token_revoke_rejects_that_token_only(client: FlaskClient, acme: dict[str, Any]) -> None:
    """{"revoked": true}; then that token is 401 while the same user's other token is 200."""
    token, sibling = issue(client, "acme", sub="alice"), issue(client, "acme", sub="alice")
    assert_accepted(client, token)
    assert revoked(client, token) is True
    assert_rejected(client, token)
    assert_accepted(client, sibling)
    assert_accepted(client, issue(client, "acme", sub="alice"))


def test_token_revoke_again_or_garbage_is_false(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Revoking a revoked, garbage, forged or user-revoked token is 200 {"revoked": false}."""
    token = issue(client, "acme", sub="alice")
    assert revoked(client, token) is True
    assert revoked(client, token) is False
    assert revoked(client, "garbage") is False
    assert revoked(client, "a.b.c") is False
    assert revoked(client, unsigned({"sub": "alice", "jti": "j1"})) is False
    other = issue(client, "acme", sub="bob")
    assert_json(revoke_user(client, "bob"), 200)
    assert revoked(client, other) is False


def test_token_revoke_of_another_tenants_token_is_false(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """Another tenant's token sent to this tenant's endpoint is not revoked, and still verifies."""
    create_tenant(client, "globex")
    theirs = issue(client, "globex", sub="alice")
    assert revoked(client, theirs, tenant="acme") is False
    assert_accepted(client, theirs)
    assert revoked(client, theirs, tenant="globex") is True
    assert_rejected(client, theirs)


@pytest.mark.parametrize(
    "body",
    [{"token": "x", "extra": 1}, {}, {"token": ""}, {"token": 5}, ["x"]],
    ids=["unknown-field", "missing", "empty", "number", "array"],
)
def test_token_revoke_invalid_body_is_422(
    client: FlaskClient, acme: dict[str, Any], body: Any
) -> None:
    """A body that does not match {"token": "<non-empty string>"} is a 422 problem."""
    r = client.post(f"{ACME}/tokens/revoke", json=body, headers=ADMIN)
    assert_problem(r, 422, "invalid_request")


def test_token_revoke_unknown_field_revokes_nothing(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """A valid token beside an unknown field is refused as a whole: the token stays valid."""
    token = issue(client, "acme", sub="alice")
    r = client.post(f"{ACME}/tokens/revoke", json={"token": token, "why": "x"}, headers=ADMIN)
    assert "why" in assert_problem(r, 422, "invalid_request")["errors"]["json"]
    assert_accepted(client, token)


def test_token_revoke_malformed_json_is_400(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Unparseable JSON is a 400 problem."""
    r = client.post(
        f"{ACME}/tokens/revoke",
        data="{",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_problem(r, 400)


# --------------------------------------------------------------------------- verifier input


@pytest.mark.parametrize(
    "payload",
    [
        '{"sub":"a\\u0000b","jti":"j1"}',
        '{"sub":"u1","jti":"j\\u0000"}',
        '{"sub":"\\ud800","jti":"j1"}',
        '{"sub":"u1","jti":"\\udfff"}',
    ],
    ids=["NUL-sub", "NUL-jti", "surrogate-sub", "surrogate-jti"],
)
@pytest.mark.parametrize("kid", ["acme", "ghost"])
def test_unsigned_token_naming_unstorable_sub_or_jti_is_the_uniform_401(
    client: FlaskClient, acme: dict[str, Any], services: Services, payload: str, kid: str
) -> None:
    """Unsigned sub/jti with NUL or a lone surrogate get the uniform 401, never a 422 or 500."""
    # The revocation lookup keys come from the payload before its signature is checked, so
    # they reach the database on a cold cache.
    services.cache.fence(kid, 10**6)  # no cached entry: the database is asked
    assert_rejected(client, unsigned(payload, kid))


def test_signed_token_with_nul_in_sub_verifies_from_the_database_too(
    client: FlaskClient, services: Services, clock: FixedClock
) -> None:
    """A foreign token whose sub holds NUL verifies cached or not, and its jti can be revoked."""
    key, text = new_secret()
    create_tenant(client, "legacy", secret=text)
    token = sign(key, claims_for("legacy", clock.now(), sub="a\x00b"), "legacy")
    assert_accepted(client, token)  # warm (on PostgreSQL + Redis)
    services.cache.fence("legacy", 10**6)  # cold from here on: the database answers
    assert_accepted(client, token)
    assert revoked(client, token, tenant="legacy") is True
    assert_rejected(client, token)


# --------------------------------------------------------------------------- cache paths


def test_user_revoke_rejects_from_a_warm_cache(
    pg_client: FlaskClient, cache_redis: redis.Redis
) -> None:
    """With acme's Redis entry warm, revoke answers from Redis at once (the entry stays)."""
    token = issue(pg_client, "acme", sub="alice")
    bob = issue(pg_client, "acme", sub="bob")
    assert_accepted(pg_client, token)
    entry = cache_key("acme", "entry")
    warm = cache_redis.get(entry)
    assert warm is not None
    assert_json(revoke_user(pg_client, "alice"), 200)
    assert cache_redis.get(entry) == warm  # the verdict below comes from the warm entry
    assert_rejected(pg_client, token)
    assert_accepted(pg_client, bob)
    assert_accepted(pg_client, issue(pg_client, "acme", sub="alice"))
    assert cache_redis.get(entry) == warm


def test_token_revoke_rejects_from_a_warm_cache(
    pg_client: FlaskClient, cache_redis: redis.Redis
) -> None:
    """With acme's Redis entry warm, the revoked jti is refused from Redis at once."""
    token, sibling = issue(pg_client, "acme", sub="alice"), issue(pg_client, "acme", sub="alice")
    assert_accepted(pg_client, token)
    entry = cache_key("acme", "entry")
    warm = cache_redis.get(entry)
    assert warm is not None
    assert revoked(pg_client, token) is True
    assert cache_redis.get(entry) == warm
    assert_rejected(pg_client, token)
    assert_accepted(pg_client, sibling)


def test_revocations_survive_losing_the_cached_state(
    pg_client: FlaskClient, cache_redis: redis.Redis
) -> None:
    """With entry and marks gone from Redis, PostgreSQL rejects, and the refill restores marks."""
    by_user, by_jti = issue(pg_client, "acme", sub="alice"), issue(pg_client, "acme", sub="bob")
    other = issue(pg_client, "acme", sub="bob")
    assert_accepted(pg_client, by_jti)  # warm
    assert_json(revoke_user(pg_client, "alice"), 200)
    assert revoked(pg_client, by_jti) is True
    forget_cached_state(cache_redis)
    assert tenant_keys(cache_redis) == {cache_key("acme", "fence")}
    assert_rejected(pg_client, by_user)  # a miss: PostgreSQL answers, then refills
    entry = cache_key("acme", "entry")
    assert cache_redis.get(entry) is not None
    assert len(tenant_keys(cache_redis)) == 5  # entry, fence, inc, alice's version, bob's jti
    refilled = cache_redis.get(entry)
    assert_rejected(pg_client, by_user)
    assert_rejected(pg_client, by_jti)
    assert_accepted(pg_client, other)
    assert_accepted(pg_client, issue(pg_client, "acme", sub="alice"))
    assert cache_redis.get(entry) == refilled  # those answers came from the refilled entry


def test_revocations_hold_while_fills_are_fenced_off(
    client: FlaskClient, acme: dict[str, Any], services: Services
) -> None:
    """With the entry evicted and fills fenced off, the database rejects both revocations."""
    by_user, by_jti = issue(client, "acme", sub="alice"), issue(client, "acme", sub="bob")
    other = issue(client, "acme", sub="bob")
    assert_accepted(client, by_jti)
    assert_json(revoke_user(client, "alice"), 200)
    assert revoked(client, by_jti) is True
    services.cache.fence("acme", 10**6)  # evict; no fill succeeds from now on
    for _ in range(2):
        assert_rejected(client, by_user)
        assert_rejected(client, by_jti)
        assert_accepted(client, other)
    assert services.cache.get("acme") is None
