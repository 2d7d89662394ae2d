"""Refresh token rotation, reuse detection and the grace window (RFC 6749 §6, RFC 9700 §4.14.2),
on SQLite + fakeredis with a fixed clock."""

from __future__ import annotations

import pytest

from tenantauth.domain.models import Client, Tenant, UserStatus
from tenantauth.domain.oauth.grants import GrantRequest, TokenResponse, grant_token
from tenantauth.domain.oauth.introspection import introspect_for_client
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.domain.revocations import revoke_subject
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import rotate_tenant
from tenantauth.errors import InvalidGrantError, InvalidScopeError
from tests.oauth_accounts import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USERNAME,
    add_client,
    add_user,
    set_user_status,
)
from tests.support import FixedClock

CREDS = ClientCredentials(CLIENT_ID, CLIENT_SECRET, "client_secret_post")
GRACE = 10  # AuthPolicy().refresh_reuse_grace
TTL = 2_592_000  # AuthPolicy().refresh_token_ttl


@pytest.fixture(autouse=True)
def _accounts(svc: Services, acme: Tenant) -> None:
    """Client tac_app of acme (read write, every grant) and user alice."""
    add_client(svc, "acme")
    add_user(svc, "acme")


def login(svc: Services) -> str:
    """Sign alice in; return the refresh token."""
    request = GrantRequest("password", username=USERNAME, password=PASSWORD)
    value = grant_token(svc, "acme", CREDS, request, None).refresh_token
    assert value is not None
    return value


def refresh(
    svc: Services, value: str, creds: ClientCredentials = CREDS, **kw: str
) -> TokenResponse:
    """Exchange ``value``."""
    request = GrantRequest("refresh_token", refresh_token=value, **kw)
    return grant_token(svc, "acme", creds, request, None)


def live(svc: Services, value: str) -> bool:
    """Whether the token is live and unused (introspection's view)."""
    return introspect_for_client(svc, "acme", _client(svc), value)["active"] is True


def _client(svc: Services) -> Client:
    with svc.storage.transaction() as tx:
        client = tx.clients.get("acme", CLIENT_ID)
    assert client is not None
    return client


def test_each_use_rotates(svc: Services) -> None:
    """A refresh returns a new refresh token; the old one is no longer live."""
    first = login(svc)
    response = refresh(svc, first)
    assert response.refresh_token not in (None, first)
    assert svc.verifier.verify(response.access_token).subject == USERNAME
    assert not live(svc, first)
    assert live(svc, response.refresh_token or "")


def test_reuse_after_grace_revokes_the_family(svc: Services, clock: FixedClock) -> None:
    """Presenting a rotated token after the grace window fails and kills its successor too."""
    first = login(svc)
    second = refresh(svc, first).refresh_token or ""
    clock.advance(GRACE + 1)
    with pytest.raises(InvalidGrantError):
        refresh(svc, first)
    with pytest.raises(InvalidGrantError):
        refresh(svc, second)


def test_retry_within_grace_issues_a_new_pair(svc: Services, clock: FixedClock) -> None:
    """Within the grace window a retry succeeds; the successor it replaces is revoked, so one
    token of the family stays live."""
    first = login(svc)
    lost = refresh(svc, first).refresh_token or ""
    clock.advance(GRACE)
    retried = refresh(svc, first).refresh_token or ""
    assert retried not in (first, lost)
    assert not live(svc, lost)
    assert live(svc, retried)
    with pytest.raises(InvalidGrantError):
        refresh(svc, lost)
    assert live(svc, retried)  # presenting a revoked (not used) token revokes nothing
    assert refresh(svc, retried).refresh_token


def test_second_retry_within_grace_also_succeeds(svc: Services, clock: FixedClock) -> None:
    """Two retries in the window each retire the previous unseen successor."""
    first = login(svc)
    lost = [refresh(svc, first).refresh_token or ""]
    clock.advance(3)
    lost.append(refresh(svc, first).refresh_token or "")
    clock.advance(3)
    final = refresh(svc, first).refresh_token or ""
    assert [live(svc, t) for t in [*lost, final]] == [False, False, True]


def test_retry_after_the_successor_was_used_is_reuse(svc: Services, clock: FixedClock) -> None:
    """If the successor was already used, presenting the original again (even within the
    window) is reuse: the family is revoked."""
    first = login(svc)
    second = refresh(svc, first).refresh_token or ""
    third = refresh(svc, second).refresh_token or ""
    clock.advance(1)
    with pytest.raises(InvalidGrantError):
        refresh(svc, first)
    assert not live(svc, third)


def test_expired_refresh_token_is_invalid_grant(svc: Services, clock: FixedClock) -> None:
    """A refresh token dies auth.refresh_token_ttl seconds after issue."""
    value = login(svc)
    clock.advance(TTL)
    with pytest.raises(InvalidGrantError):
        refresh(svc, value)


def test_tenant_rotation_kills_refresh_tokens(svc: Services) -> None:
    """Rotating the tenant's secret kills refresh tokens issued before."""
    value = login(svc)
    rotate_tenant(svc, "acme")
    with pytest.raises(InvalidGrantError):
        refresh(svc, value)


def test_log_out_everywhere_kills_refresh_tokens(svc: Services) -> None:
    """Revoking the user kills their refresh tokens; a new login works."""
    value = login(svc)
    revoke_subject(svc, "acme", USERNAME)
    with pytest.raises(InvalidGrantError):
        refresh(svc, value)
    assert refresh(svc, login(svc)).refresh_token


def test_subject_version_alone_kills_refresh_tokens(svc: Services) -> None:
    """A revocation version newer than the token's is enough (the row itself untouched)."""
    value = login(svc)
    with svc.storage.transaction() as tx:
        tx.revocations.bump_subject("acme", USERNAME, 0)
    with pytest.raises(InvalidGrantError):
        refresh(svc, value)


def test_disabled_user_cannot_refresh(svc: Services) -> None:
    """Disabling the user stops its refresh tokens."""
    value = login(svc)
    set_user_status(svc, "acme", USERNAME, UserStatus.DISABLED)
    with pytest.raises(InvalidGrantError):
        refresh(svc, value)


def test_another_clients_refresh_token_is_invalid_grant(svc: Services) -> None:
    """§6: a refresh token only works for the client it was issued to (and is not spent)."""
    value = login(svc)
    add_client(svc, "acme", "tac_other", "tas_other")
    with pytest.raises(InvalidGrantError):
        refresh(svc, value, ClientCredentials("tac_other", "tas_other", "client_secret_post"))
    assert live(svc, value)


def test_refresh_may_narrow_but_not_widen(svc: Services) -> None:
    """§6: a narrower scope is granted; the new refresh token keeps the original scope."""
    narrowed = refresh(svc, login(svc), scope="read")
    assert narrowed.scope == "read"
    again = refresh(svc, narrowed.refresh_token or "")
    assert again.scope == "read write"
    with pytest.raises(InvalidScopeError):
        refresh(svc, again.refresh_token or "", scope="read admin")
