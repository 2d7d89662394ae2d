"""``TenantAuthClient.verify`` against a real production-mode tenantauth: typed claims, the
uniform ``InvalidToken``, and revocations seen from the very next call (no cache)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tenantauth_client import (
    BadRequest,
    Claims,
    InvalidToken,
    ServiceUnavailable,
    TenantAuthClient,
    TenantAuthClientError,
)
from tests.client.conftest import Tenant, base_url
from tests.client.forge import forge
from tests.e2e.harness import Server, free_port
from tests.support import ADMIN_TOKEN

pytestmark = pytest.mark.e2e


def test_verify_returns_typed_claims(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """A token tenantauth issued verifies into frozen, typed Claims with every claim in raw."""
    token = admin.issue_token(
        tenant.id, "alice", scope="read write", aud="billing", ttl=300, claims={"plan": "pro"}
    )
    claims = verifier.verify(token)
    assert isinstance(claims, Claims)
    assert (claims.tenant_id, claims.subject, claims.scope) == (tenant.id, "alice", "read write")
    assert claims.scopes == frozenset({"read", "write"})
    assert claims.audience == ("billing",)
    assert claims.expires_at.tzinfo is UTC
    assert 295 <= (claims.expires_at - claims.issued_at).total_seconds() <= 300
    assert claims.issued_at <= datetime.now(UTC)
    assert claims.jti == claims.raw["jti"]
    assert claims.raw["plan"] == "pro"
    with pytest.raises(TypeError):
        claims.raw["plan"] = "free"  # type: ignore[index]
    assert claims.has_scopes({"read"}) and not claims.has_scopes({"admin"})


def test_garbage_and_forged_tokens_are_invalid(verifier: TenantAuthClient, tenant: Tenant) -> None:
    """Garbage, a token signed with another secret, and empty or huge strings raise InvalidToken
    (the server's uniform 401; the last two without a request)."""
    for token in ("not-a-jwt", "a.b.c", forge(tenant.id, b"x" * 32), "", "x" * 20_000):
        with pytest.raises(InvalidToken) as caught:
            verifier.verify(token)
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    with pytest.raises(InvalidToken) as caught:
        verifier.verify("a.b.c")
    assert caught.value.request_id  # from the server's problem body, to quote to its operator


def test_expired_token_is_invalid(verifier: TenantAuthClient, tenant: Tenant) -> None:
    """A token whose exp passed (beyond the server's 30 s leeway) raises InvalidToken, while
    the same token with a future exp verifies (so only exp differs)."""
    assert verifier.verify(forge(tenant.id, tenant.secret)).tenant_id == tenant.id
    with pytest.raises(InvalidToken):
        verifier.verify(forge(tenant.id, tenant.secret, expires_in=-120))


def test_audience_is_checked(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """verify(audience=...) accepts a token for that audience and rejects one for another."""
    token = admin.issue_token(tenant.id, "alice", aud="billing")
    assert verifier.verify(token, audience="billing").audience == ("billing",)
    with pytest.raises(InvalidToken):
        verifier.verify(token, audience="reports")
    with pytest.raises(BadRequest) as caught:  # an operator mistake, not a bad token
        verifier.verify(token, audience="")
    assert caught.value.status == 422


def test_rotation_rejects_on_the_very_next_verify(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """Rotate the tenant, then the very next verify through the client raises InvalidToken;
    a token issued after the rotation verifies."""
    for _ in range(3):
        token = admin.issue_token(tenant.id, "alice")
        assert verifier.verify(token).subject == "alice"
        rotated = admin.rotate_tenant(tenant.id)
        with pytest.raises(InvalidToken):
            verifier.verify(token)
        assert (
            verifier.verify(admin.issue_token(tenant.id, "alice")).raw.get("kv")
            == rotated["key_version"]
        )


def test_suspend_resume_delete_apply_at_once(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """Suspending rejects the tenant's tokens from the next verify, resuming accepts them
    again, deleting rejects them for good."""
    token = admin.issue_token(tenant.id, "alice")
    assert admin.suspend_tenant(tenant.id)["status"] == "suspended"
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    assert admin.resume_tenant(tenant.id)["status"] == "active"
    assert verifier.verify(token).subject == "alice"
    admin.delete_tenant(tenant.id)
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_user_and_token_revocation_apply_at_once(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """revoke_user rejects that subject's tokens (not another's) and revoke_token one token,
    each from the very next verify."""
    alice, bob = admin.issue_token(tenant.id, "alice"), admin.issue_token(tenant.id, "bob")
    done = admin.revoke_user(tenant.id, "alice")
    assert (done["subject"], done["version"]) == ("alice", 1)
    with pytest.raises(InvalidToken):
        verifier.verify(alice)
    assert verifier.verify(bob).subject == "bob"
    assert admin.revoke_token(tenant.id, bob) is True
    with pytest.raises(InvalidToken):
        verifier.verify(bob)
    assert admin.revoke_token(tenant.id, bob) is False  # no longer a valid token (RFC 7009)


def test_no_credential_leaks_into_errors_reprs_or_logs(
    live: Server, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens, the admin token and client secrets appear in no exception, repr or log record
    (urllib3's debug logging included)."""
    caplog.set_level(logging.DEBUG)
    token = forge(tenant.id, b"y" * 32)  # a well-formed token the server rejects
    wrong_admin = "ta_admin_wrong-" + "z" * 30
    seen: list[object] = []
    with TenantAuthClient(base_url(live), ADMIN_TOKEN) as admin:
        good = admin.issue_token(tenant.id, "alice")
        credentials = admin.create_client(tenant.id, "svc", ["read"], ["client_credentials"])
        seen += [admin, credentials, admin.verify(good)]
        for call in (lambda: admin.verify(token), lambda: admin.verify(good, audience="")):
            seen.append(_raised(call))
    with TenantAuthClient(base_url(live), wrong_admin) as intruder:
        seen += [intruder, _raised(lambda: intruder.rotate_tenant(tenant.id))]
    text = " ".join([caplog.text, *(repr(x) for x in seen), *(str(x) for x in seen)])
    text += " ".join(repr(vars(x)) for x in seen if isinstance(x, Exception))
    for secret in (token, good, ADMIN_TOKEN, wrong_admin, credentials.client_secret):
        assert secret not in text
        assert secret[-20:] not in text  # not even a recognisable tail
    assert "urllib3" in caplog.text  # the debug records were captured, so the check can fail


def test_unreachable_server_is_service_unavailable() -> None:
    """A base URL where nothing listens raises ServiceUnavailable (status None), never
    InvalidToken or a raw urllib3 error."""
    client = TenantAuthClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=1)
    with client, pytest.raises(ServiceUnavailable) as caught:
        client.verify("a.b.c")
    assert (caught.value.status, caught.value.code) == (None, "unreachable")
    assert isinstance(caught.value, TenantAuthClientError)


def _raised(call: object) -> Exception:
    try:
        call()  # type: ignore[operator]
    except TenantAuthClientError as exc:
        return exc
    raise AssertionError("expected an error")
