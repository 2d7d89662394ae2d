"""The verifier's parsed-token memo (issue 14): it skips parsing a token seen before, never a
check. Each test fails if the memo kept a verdict, a forged token, or the caller's changes."""

from __future__ import annotations

import pytest

from tenantauth.domain import tokens
from tenantauth.domain.models import Tenant, TenantStatus
from tenantauth.domain.revocations import revoke_subject, revoke_token
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import TenantChanges, rotate_tenant, update_tenant
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError
from tests.support import FixedClock


def issue(svc: Services, subject: str = "user-1", **kwargs: object) -> str:
    """A token of tenant acme for ``subject``."""
    request = TokenRequest("acme", subject, **kwargs)  # type: ignore[arg-type]
    return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token


def memo_size(svc: Services) -> int:
    """How many tokens the verifier has memoised."""
    return len(svc.verifier._parsed)


@pytest.mark.parametrize("change", ["expire", "rotate", "suspend", "revoke-jti", "revoke-sub"])
def test_a_memoised_token_is_still_checked(
    svc: Services, acme: Tenant, clock: FixedClock, change: str
) -> None:
    """A token verified (so memoised) is rejected after any change that revokes it."""
    token = issue(svc)
    svc.verifier.verify(token)
    assert memo_size(svc) == 1
    if change == "expire":
        clock.advance(10 * 86_400)
    elif change == "rotate":
        rotate_tenant(svc, "acme")
    elif change == "suspend":
        update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    elif change == "revoke-jti":
        revoke_token(svc, token)
    else:
        revoke_subject(svc, "acme", "user-1")
    with pytest.raises(InvalidTokenError):
        svc.verifier.verify(token)


def test_an_audience_is_checked_on_a_memoised_token(svc: Services, acme: Tenant) -> None:
    """The audience asked for is a per-call check, not part of the memo."""
    token = issue(svc, audience="orders")
    svc.verifier.verify(token, "orders")
    with pytest.raises(InvalidTokenError):
        svc.verifier.verify(token, "billing")


def test_a_forged_token_is_not_memoised(svc: Services, acme: Tenant) -> None:
    """Only tokens that passed every check enter the memo, so forgeries cannot churn it."""
    token = issue(svc)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBA")
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            svc.verifier.verify(forged)
    assert memo_size(svc) == 0


def test_callers_get_claims_of_their_own(svc: Services, acme: Tenant) -> None:
    """Changing a verdict's claims does not change the next verdict of the same token."""
    token = issue(svc)
    first = svc.verifier.verify(token)
    first.claims["sub"] = "mallory"
    first.claims["tid"] = "other"
    again = svc.verifier.verify(token)
    assert (again.claims["sub"], again.claims["tid"]) == ("user-1", "acme")


def test_the_memo_is_bounded(svc: Services, acme: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PARSED_MEMO_MAX tokens the memo starts again; over-long tokens are not kept."""
    monkeypatch.setattr(tokens, "PARSED_MEMO_MAX", 3)
    for n in range(7):
        svc.verifier.verify(issue(svc, subject=f"user-{n}"))
        assert 1 <= memo_size(svc) <= 3
    long_token = issue(svc, claims={"pad": "x" * tokens.PARSED_MEMO_TOKEN_MAX})
    before = memo_size(svc)
    svc.verifier.verify(long_token)
    assert memo_size(svc) == before
