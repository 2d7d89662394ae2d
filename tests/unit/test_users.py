"""User use cases over SQLite + fakeredis with a fixed clock (cheap argon2 parameters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tenantauth.domain.models import RefreshToken, Tenant, UserStatus
from tenantauth.domain.paging import MAX_PAGE_SIZE
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import delete_tenant
from tenantauth.domain.tokens import MAX_CUSTOM_CLAIMS_BYTES, TokenRequest, issue_token
from tenantauth.domain.users import (
    create_user,
    delete_user,
    get_user,
    list_users,
    update_user,
)
from tenantauth.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTokenError,
    NotFoundError,
)
from tests.support import NOW, FixedClock

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase!"


def issue(svc: Services, subject: str, tenant_id: str = "acme") -> str:
    """Issue an access token for ``subject`` and return it."""
    request = TokenRequest(tenant_id, subject)
    return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token


def verifies(svc: Services, token: str) -> bool:
    """Return whether the verifier accepts ``token``."""
    try:
        svc.verifier.verify(token)
    except InvalidTokenError:
        return False
    return True


def store_refresh_token(svc: Services, username: str, marker: bytes) -> None:
    """Store a live refresh token of ``username`` in tenant acme."""
    token = RefreshToken(
        "acme", marker * 32, "family-1", "tac_x", username, "", 1, 0, int(NOW), int(NOW) + 60
    )
    with svc.storage.transaction() as tx:
        tx.refresh_tokens.insert(token)


def refresh_revoked(svc: Services, marker: bytes) -> bool:
    """Return whether the refresh token stored with ``marker`` is revoked."""
    with svc.storage.transaction() as tx:
        token = tx.refresh_tokens.get("acme", marker * 32)
    assert token is not None
    return token.revoked_at is not None


# --- create -------------------------------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_create_stores_an_argon2id_hash(svc: Services, clock: FixedClock) -> None:
    """A new user is active, its password is stored as an argon2id hash, never in clear."""
    user = create_user(svc, "acme", "alice", PASSWORD, {"plan": "pro"})
    assert (user.tenant_id, user.username, user.status) == ("acme", "alice", UserStatus.ACTIVE)
    assert user.claims == {"plan": "pro"}
    assert user.created_at.timestamp() == clock.now()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert svc.passwords.verify(user.password_hash, PASSWORD)
    assert "argon2" not in repr(user)
    assert get_user(svc, "acme", "alice") == user


@pytest.mark.usefixtures("acme")
def test_create_duplicate_conflicts(svc: Services) -> None:
    """A taken username is a ConflictError; the first user is unchanged."""
    first = create_user(svc, "acme", "alice", PASSWORD)
    with pytest.raises(ConflictError):
        create_user(svc, "acme", "alice", NEW_PASSWORD)
    assert get_user(svc, "acme", "alice") == first


@pytest.mark.usefixtures("acme")
def test_usernames_are_case_sensitive(svc: Services) -> None:
    """Usernames are compared exactly: 'Alice' and 'alice' are two users."""
    create_user(svc, "acme", "alice", PASSWORD)
    create_user(svc, "acme", "Alice", PASSWORD)
    assert [u.username for u in list_users(svc, "acme").items] == ["Alice", "alice"]


@pytest.mark.usefixtures("acme")
def test_same_username_in_two_tenants(svc: Services, other: Tenant) -> None:
    """Usernames are per tenant: both tenants may have 'alice', and each sees only its own."""
    a = create_user(svc, "acme", "alice", PASSWORD, {"t": "a"})
    b = create_user(svc, other.id, "alice", PASSWORD, {"t": "b"})
    create_user(svc, "acme", "bob", PASSWORD)
    assert get_user(svc, "acme", "alice") == a
    assert get_user(svc, "other", "alice") == b
    assert [u.username for u in list_users(svc, "other").items] == ["alice"]
    with pytest.raises(NotFoundError):
        get_user(svc, "other", "bob")


@pytest.mark.parametrize(
    ("username", "fragment"),
    [
        ("", "1 to 255"),
        ("u" * 256, "1 to 255"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x85b", "control"),
        ("a/b", "'/'"),
        (" alice", "whitespace"),
        ("alice ", "whitespace"),
        ("e\u0301", "NFC"),
    ],
    ids=["empty", "too-long", "nul", "newline", "c1", "slash", "leading", "trailing", "nfd"],
)
@pytest.mark.usefixtures("acme")
def test_bad_username_rejected(svc: Services, username: str, fragment: str) -> None:
    """Usernames follow the subject rules and name what is wrong; nothing is created."""
    with pytest.raises(InvalidRequestError) as caught:
        create_user(svc, "acme", username, PASSWORD)
    assert fragment in caught.value.detail
    assert list_users(svc, "acme").items == []


@pytest.mark.usefixtures("acme")
def test_long_unicode_username_accepted(svc: Services) -> None:
    """255 characters of NFC text with spaces inside (and accents) is a valid username."""
    name = "é a" * 85
    assert create_user(svc, "acme", name, PASSWORD).username == name


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12 characters long (got 5)"),
        ("p" * 257, "at most 256 characters long (got 257)"),
        (" " * 20, "only of whitespace"),
        ("Alice-Wonder", "same as the username"),
    ],
    ids=["short", "long", "blank", "username"],
)
@pytest.mark.usefixtures("acme")
def test_password_policy_says_what_is_wrong(svc: Services, password: str, fragment: str) -> None:
    """A weak password is refused with a message naming the rule, never echoing it."""
    with pytest.raises(InvalidRequestError) as caught:
        create_user(svc, "acme", "alice-wonder", password)
    assert fragment in caught.value.detail
    assert password not in caught.value.detail
    assert any(fragment in message for message in caught.value.errors["password"])


@pytest.mark.parametrize(
    ("claims", "fragment"),
    [
        ({"sub": "x"}, "reserved claims: sub"),
        ({"uv": 1, "exp": 2}, "reserved claims: exp, uv"),
        ({"big": "x" * MAX_CUSTOM_CLAIMS_BYTES}, f"at most {MAX_CUSTOM_CLAIMS_BYTES} bytes"),
        ({"n": float("nan")}, "JSON values"),
        ({"o": object()}, "JSON values"),
        (["not", "an", "object"], "JSON object"),
    ],
    ids=["reserved", "reserved-two", "too-big", "nan", "not-json", "not-object"],
)
@pytest.mark.usefixtures("acme")
def test_bad_claims_rejected(svc: Services, claims: Any, fragment: str) -> None:
    """Claims are a JSON object of at most 2 KiB that overrides no reserved claim."""
    with pytest.raises(InvalidRequestError) as caught:
        create_user(svc, "acme", "alice", PASSWORD, claims)
    assert fragment in caught.value.detail


def test_create_in_unknown_or_deleted_tenant_is_not_found(svc: Services, acme: Tenant) -> None:
    """Users can only be created in live tenants."""
    with pytest.raises(NotFoundError):
        create_user(svc, "nobody", "alice", PASSWORD)
    with pytest.raises(NotFoundError):
        create_user(svc, "NOT AN ID", "alice", PASSWORD)
    delete_tenant(svc, acme.id)
    with pytest.raises(NotFoundError):
        create_user(svc, "acme", "alice", PASSWORD)


# --- show / list --------------------------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_get_unknown_user_is_not_found(svc: Services) -> None:
    """Unknown users, and names no user can have, are NotFoundError."""
    for name in ("ghost", "a\x00b", ""):
        with pytest.raises(NotFoundError):
            get_user(svc, "acme", name)


@pytest.mark.usefixtures("acme")
def test_list_pages_with_a_cursor(svc: Services) -> None:
    """Listing follows next_cursor page by page and ends with None."""
    for name in ("carol", "alice", "bob"):
        create_user(svc, "acme", name, PASSWORD)
    first = list_users(svc, "acme", limit=2)
    assert [u.username for u in first.items] == ["alice", "bob"]
    assert first.next_cursor is not None
    rest = list_users(svc, "acme", first.next_cursor, limit=2)
    assert [u.username for u in rest.items] == ["carol"]
    assert rest.next_cursor is None


@pytest.mark.parametrize(("cursor", "limit"), [("!!!", 10), (None, 0), (None, MAX_PAGE_SIZE + 1)])
@pytest.mark.usefixtures("acme")
def test_list_rejects_bad_cursor_or_limit(svc: Services, cursor: str | None, limit: int) -> None:
    """A malformed cursor or a limit outside 1..500 is an InvalidRequestError."""
    with pytest.raises(InvalidRequestError):
        list_users(svc, "acme", cursor, limit)


def test_list_of_unknown_tenant_is_not_found(svc: Services) -> None:
    """Listing the users of a tenant that does not exist is NotFoundError."""
    with pytest.raises(NotFoundError):
        list_users(svc, "nobody")


# --- update -------------------------------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_disable_revokes_access_and_refresh_tokens_at_once(svc: Services) -> None:
    """Disabling a user rejects its access tokens and revokes its refresh tokens at once."""
    create_user(svc, "acme", "alice", PASSWORD)
    create_user(svc, "acme", "bob", PASSWORD)
    alice, bob = issue(svc, "alice"), issue(svc, "bob")
    store_refresh_token(svc, "alice", b"a")
    store_refresh_token(svc, "bob", b"b")
    user = update_user(svc, "acme", "alice", status=UserStatus.DISABLED)
    assert user.status is UserStatus.DISABLED
    assert get_user(svc, "acme", "alice").status is UserStatus.DISABLED
    assert not verifies(svc, alice)
    assert refresh_revoked(svc, b"a")
    assert verifies(svc, bob)
    assert not refresh_revoked(svc, b"b")


@pytest.mark.usefixtures("acme")
def test_enable_lets_new_tokens_verify_but_not_old_ones(svc: Services) -> None:
    """Re-enabling only sets the status: tokens revoked by the disable stay revoked."""
    create_user(svc, "acme", "alice", PASSWORD)
    old = issue(svc, "alice")
    update_user(svc, "acme", "alice", status=UserStatus.DISABLED)
    assert update_user(svc, "acme", "alice", status=UserStatus.ACTIVE).status is UserStatus.ACTIVE
    assert not verifies(svc, old)
    assert verifies(svc, issue(svc, "alice"))


@pytest.mark.usefixtures("acme")
def test_disabling_again_revokes_again(svc: Services) -> None:
    """Disabling a disabled user revokes once more, so retrying a disable whose revocation
    step failed (status committed, tokens not yet revoked) completes the job."""
    create_user(svc, "acme", "alice", PASSWORD)
    token = issue(svc, "alice")
    with svc.storage.transaction() as tx:  # the half-done disable: status only
        user = tx.users.get("acme", "alice")
        assert user is not None
        tx.users.update(replace(user, status=UserStatus.DISABLED))
    assert verifies(svc, token)
    update_user(svc, "acme", "alice", status=UserStatus.DISABLED)
    assert not verifies(svc, token)


@pytest.mark.usefixtures("acme")
def test_password_reset_rehashes_and_revokes(svc: Services) -> None:
    """A new password replaces the hash (old password fails) and revokes existing tokens."""
    before = create_user(svc, "acme", "alice", PASSWORD)
    token = issue(svc, "alice")
    after = update_user(svc, "acme", "alice", password=NEW_PASSWORD)
    assert after.password_hash != before.password_hash
    assert svc.passwords.verify(after.password_hash, NEW_PASSWORD)
    assert not svc.passwords.verify(after.password_hash, PASSWORD)
    assert after.status is UserStatus.ACTIVE
    assert not verifies(svc, token)


@pytest.mark.usefixtures("acme")
def test_weak_new_password_changes_nothing(svc: Services) -> None:
    """A reset to a password that breaks the policy is refused; the old hash and tokens stay."""
    before = create_user(svc, "acme", "alice", PASSWORD)
    token = issue(svc, "alice")
    with pytest.raises(InvalidRequestError, match="at least 12"):
        update_user(svc, "acme", "alice", password="short", status=UserStatus.DISABLED)
    assert get_user(svc, "acme", "alice") == before
    assert verifies(svc, token)


@pytest.mark.usefixtures("acme")
def test_claims_update_keeps_tokens(svc: Services, clock: FixedClock) -> None:
    """Replacing claims changes only the claims (and updated_at); tokens stay valid."""
    create_user(svc, "acme", "alice", PASSWORD, {"plan": "free"})
    token = issue(svc, "alice")
    clock.advance(5)
    user = update_user(svc, "acme", "alice", claims={"plan": "pro"})
    assert user.claims == {"plan": "pro"}
    assert user.updated_at.timestamp() == NOW + 5
    assert user.created_at.timestamp() == NOW
    assert verifies(svc, token)
    assert update_user(svc, "acme", "alice", claims={}).claims == {}


@pytest.mark.usefixtures("acme")
def test_update_unknown_user_is_not_found(svc: Services) -> None:
    """Updating a user that does not exist is NotFoundError, and revokes nothing."""
    with pytest.raises(NotFoundError):
        update_user(svc, "acme", "ghost", status=UserStatus.DISABLED)
    with svc.storage.transaction() as tx:
        assert tx.revocations.subject_version("acme", "ghost") == 0


@pytest.mark.usefixtures("acme")
def test_update_rejects_unknown_status(svc: Services) -> None:
    """A status that is not a UserStatus is an InvalidRequestError."""
    create_user(svc, "acme", "alice", PASSWORD)
    with pytest.raises(InvalidRequestError, match="'active' or 'disabled'"):
        update_user(svc, "acme", "alice", status="deleted")  # type: ignore[arg-type]


# --- delete -------------------------------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_delete_revokes_then_removes(svc: Services) -> None:
    """Deleting a user revokes its tokens and removes it; a new user of that name starts
    with fresh tokens that verify."""
    create_user(svc, "acme", "alice", PASSWORD)
    token = issue(svc, "alice")
    store_refresh_token(svc, "alice", b"a")
    delete_user(svc, "acme", "alice")
    with pytest.raises(NotFoundError):
        get_user(svc, "acme", "alice")
    assert not verifies(svc, token)
    assert refresh_revoked(svc, b"a")
    create_user(svc, "acme", "alice", PASSWORD)
    assert verifies(svc, issue(svc, "alice"))


@pytest.mark.usefixtures("acme")
def test_delete_unknown_user_is_not_found(svc: Services) -> None:
    """Deleting a user that does not exist is NotFoundError."""
    with pytest.raises(NotFoundError):
        delete_user(svc, "acme", "ghost")


def test_delete_in_other_tenant_is_not_found(svc: Services, acme: Tenant, other: Tenant) -> None:
    """Tenant 'other' cannot delete acme's user, nor revoke its tokens."""
    create_user(svc, acme.id, "alice", PASSWORD)
    token = issue(svc, "alice")
    with pytest.raises(NotFoundError):
        delete_user(svc, other.id, "alice")
    with pytest.raises(NotFoundError):
        update_user(svc, other.id, "alice", status=UserStatus.DISABLED)
    assert get_user(svc, acme.id, "alice").status is UserStatus.ACTIVE
    assert verifies(svc, token)
