"""Tenant use cases and issue_token over SQLite + fakeredis, with a fixed clock."""

from __future__ import annotations

from dataclasses import replace as swap
from typing import Any

import jwt as pyjwt
import pytest

from tenantauth.crypto.envelope import MasterKeyring, master_key_id
from tenantauth.crypto.jwt import MAX_TOKEN_LENGTH
from tenantauth.domain.models import Tenant, TenantStatus
from tenantauth.domain.paging import MAX_PAGE_SIZE
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import (
    TenantChanges,
    create_tenant,
    delete_tenant,
    get_tenant,
    list_tenants,
    rewrap_tenant,
    rotate_tenant,
    update_tenant,
)
from tenantauth.domain.tokens import (
    MAX_CUSTOM_CLAIMS_BYTES,
    RESERVED_CLAIMS,
    TokenRequest,
    TokenVerifier,
    issue_token,
)
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.errors import (
    CacheUnavailableError,
    ConflictError,
    InvalidRequestError,
    InvalidTokenError,
    NotFoundError,
    UnconfirmedChangeError,
)
from tests.support import NOW, FixedClock
from tests.unit.helpers import (
    ACME_SECRET,
    MASTER_KEY,
    MAX_LIFETIME,
    OTHER_SECRET,
    b64url,
    claims,
    forge,
    secret_text,
)


def issue(svc: Services, tenant_id: str = "acme", **kwargs: Any) -> str:
    """Issue a token for ``tenant_id`` and return it."""
    request = TokenRequest(tenant_id, kwargs.pop("subject", "user-1"), **kwargs)
    return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token


def rejects(svc: Services, token: str) -> None:
    """Assert the verifier rejects ``token``."""
    with pytest.raises(InvalidTokenError):
        svc.verifier.verify(token)


# --- create -------------------------------------------------------------------------------


def test_create_returns_active_tenant(svc: Services, clock: FixedClock) -> None:
    """A new tenant is active, at key version 1, with a positive generation and default TTLs."""
    tenant = create_tenant(svc, "acme", "Acme Inc.")
    assert (tenant.id, tenant.name, tenant.status) == ("acme", "Acme Inc.", TenantStatus.ACTIVE)
    assert tenant.key_version == 1
    assert tenant.generation >= 1
    assert (tenant.access_token_ttl, tenant.max_token_ttl) == (900, MAX_LIFETIME)
    assert tenant.created_at.timestamp() == clock.now()
    assert get_tenant(svc, "acme") == tenant


def test_create_generates_distinct_secrets(svc: Services) -> None:
    """Two tenants created without a secret get different random 32-byte secrets."""
    a, b = create_tenant(svc, "aa", "A"), create_tenant(svc, "bb", "B")
    assert a.sealed_secret is not None
    assert b.sealed_secret is not None
    secret_a = svc.keyring.open(a.key_binding, a.sealed_secret)
    secret_b = svc.keyring.open(b.key_binding, b.sealed_secret)
    assert len(secret_a) == len(secret_b) == 32
    assert secret_a != secret_b


def test_create_duplicate_conflicts(svc: Services, acme: Tenant) -> None:
    """Creating an id that exists raises ConflictError and leaves the tenant unchanged."""
    with pytest.raises(ConflictError):
        create_tenant(svc, "acme", "Impostor", secret=secret_text(OTHER_SECRET))
    assert get_tenant(svc, "acme") == acme


def test_create_duplicate_of_suspended_conflicts(svc: Services, acme: Tenant) -> None:
    """A suspended tenant's id is still taken."""
    update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    with pytest.raises(ConflictError):
        create_tenant(svc, "acme", "Again")


def test_imported_secret_signs_pyjwt_tokens(svc: Services, acme: Tenant) -> None:
    """A token PyJWT signs with the imported secret and our claims verifies."""
    token = pyjwt.encode(claims(), ACME_SECRET, algorithm="HS256", headers={"kid": "acme"})
    verdict = svc.verifier.verify(token)
    assert (verdict.tenant_id, verdict.subject) == ("acme", "user-1")


@pytest.mark.parametrize(
    "secret",
    [b64url(b"k" * 31), "+/" * 22, "", b64url(b"k" * 513)],
    ids=["short", "std-alphabet", "empty", "long"],
)
def test_create_with_bad_secret_rejected(svc: Services, secret: str) -> None:
    """A bad imported secret is an InvalidRequestError and creates nothing."""
    with pytest.raises(InvalidRequestError):
        create_tenant(svc, "acme", "Acme", secret=secret)
    with pytest.raises(NotFoundError):
        get_tenant(svc, "acme")


@pytest.mark.parametrize("name", ["", "   ", "n" * 201], ids=["empty", "blank", "too-long"])
def test_create_with_bad_name_rejected(svc: Services, name: str) -> None:
    """Names must be 1 to 200 characters and not blank."""
    with pytest.raises(InvalidRequestError):
        create_tenant(svc, "acme", name)


@pytest.mark.parametrize(
    ("access", "maximum"),
    [(1000, 900), (None, MAX_LIFETIME + 1), (-1, None), (None, -1), (MAX_LIFETIME + 1, None)],
    ids=["access-over-max", "max-over-cap", "access-negative", "max-negative", "access-over-cap"],
)
def test_create_with_bad_ttls_rejected(svc: Services, access: Any, maximum: Any) -> None:
    """TTLs must satisfy 1 <= access_token_ttl <= max_token_ttl <= policy maximum."""
    with pytest.raises(InvalidRequestError):
        create_tenant(svc, "acme", "Acme", access_token_ttl=access, max_token_ttl=maximum)


def test_create_with_small_max_ttl_lowers_default(svc: Services) -> None:
    """A max_token_ttl below the default lifetime caps the default access_token_ttl."""
    tenant = create_tenant(svc, "acme", "Acme", max_token_ttl=60)
    assert (tenant.access_token_ttl, tenant.max_token_ttl) == (60, 60)


# --- list ---------------------------------------------------------------------------------


def _ids(svc: Services, limit: int) -> list[list[str]]:
    """Follow cursors from the start and return the ids of every page."""
    pages, cursor = [], None
    while True:
        page = list_tenants(svc, cursor, limit)
        pages.append([t.id for t in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_list_paginates_in_id_order(svc: Services) -> None:
    """Cursors walk every live tenant once, in id order, in pages of ``limit``."""
    for tenant_id in ["t05", "t01", "t04", "t02", "t03"]:
        create_tenant(svc, tenant_id, tenant_id)
    assert _ids(svc, 2) == [["t01", "t02"], ["t03", "t04"], ["t05"]]
    assert _ids(svc, 1) == [["t01"], ["t02"], ["t03"], ["t04"], ["t05"]]
    assert _ids(svc, 5) == [["t01", "t02", "t03", "t04", "t05"]]
    assert _ids(svc, MAX_PAGE_SIZE) == [["t01", "t02", "t03", "t04", "t05"]]


def test_list_empty(svc: Services) -> None:
    """With no tenants the listing is one empty page without a cursor."""
    page = list_tenants(svc)
    assert (page.items, page.next_cursor) == ([], None)


def test_list_hides_deleted(svc: Services) -> None:
    """Deleted tenants do not appear in listings; suspended ones do."""
    for tenant_id in ["t1", "t2", "t3"]:
        create_tenant(svc, tenant_id, tenant_id)
    delete_tenant(svc, "t2")
    update_tenant(svc, "t3", TenantChanges(status=TenantStatus.SUSPENDED))
    assert _ids(svc, 1) == [["t1"], ["t3"]]


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_list_limit_out_of_range_rejected(svc: Services, limit: int) -> None:
    """limit must be between 1 and 500."""
    with pytest.raises(InvalidRequestError):
        list_tenants(svc, None, limit)


@pytest.mark.parametrize(
    "cursor",
    ["a", "_w", "!!!!", "dDE=", "é", "dD E"],
    ids=["impossible-length", "not-utf8", "not-base64", "padded", "non-ascii", "space"],
)
def test_list_bad_cursor_rejected(svc: Services, cursor: str) -> None:
    """A cursor that next_cursor could not have produced is an InvalidRequestError."""
    create_tenant(svc, "t1", "t1")
    with pytest.raises(InvalidRequestError):
        list_tenants(svc, cursor, 10)


# --- update -------------------------------------------------------------------------------


def test_suspend_rejects_and_resume_restores_tokens(svc: Services, acme: Tenant) -> None:
    """Suspension rejects a tenant's tokens at once; resuming makes the same token valid again."""
    token = issue(svc)
    svc.verifier.verify(token)
    suspended = update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    assert suspended.status is TenantStatus.SUSPENDED
    rejects(svc, token)
    resumed = update_tenant(svc, "acme", TenantChanges(status=TenantStatus.ACTIVE))
    assert resumed.status is TenantStatus.ACTIVE
    assert resumed.generation > suspended.generation > acme.generation
    assert svc.verifier.verify(token).tenant_id == "acme"


def test_update_changes_name_and_ttls(svc: Services, acme: Tenant, clock: FixedClock) -> None:
    """A PATCH changes only the given fields and keeps the secret."""
    clock.advance(60)
    updated = update_tenant(
        svc, "acme", TenantChanges(name="Acme 2", access_token_ttl=120, max_token_ttl=600)
    )
    assert (updated.name, updated.access_token_ttl, updated.max_token_ttl) == (
        "Acme 2",
        120,
        600,
    )
    assert updated.key_version == acme.key_version
    assert updated.updated_at.timestamp() == NOW + 60
    assert updated.rotated_at == acme.rotated_at
    assert get_tenant(svc, "acme") == updated


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(TenantChanges(access_token_ttl=MAX_LIFETIME + 1), id="access-over-max"),
        pytest.param(TenantChanges(max_token_ttl=MAX_LIFETIME + 1), id="max-over-cap"),
        pytest.param(TenantChanges(max_token_ttl=60), id="max-below-current-access"),
        pytest.param(TenantChanges(access_token_ttl=-5), id="access-negative"),
        pytest.param(TenantChanges(name=""), id="empty-name"),
        pytest.param(TenantChanges(status=TenantStatus.DELETED), id="status-deleted"),
        pytest.param(TenantChanges(status=TenantStatus.ABSENT), id="status-absent"),
    ],
)
def test_update_validation(svc: Services, acme: Tenant, changes: TenantChanges) -> None:
    """Invalid TTLs, names or statuses are InvalidRequestError and change nothing."""
    with pytest.raises(InvalidRequestError):
        update_tenant(svc, "acme", changes)
    assert get_tenant(svc, "acme") == acme


def test_update_unknown_tenant_not_found(svc: Services) -> None:
    """Updating a tenant that does not exist raises NotFoundError."""
    with pytest.raises(NotFoundError):
        update_tenant(svc, "nobody", TenantChanges(name="x"))


# --- rotate -------------------------------------------------------------------------------


def test_rotate_bumps_version_and_generation(svc: Services, acme: Tenant) -> None:
    """Each rotation increments key_version and strictly increases generation."""
    first = rotate_tenant(svc, "acme")
    second = rotate_tenant(svc, "acme")
    assert (first.key_version, second.key_version) == (2, 3)
    assert acme.generation < first.generation < second.generation
    assert first.sealed_secret != acme.sealed_secret


def test_rotate_revokes_old_tokens(svc: Services, acme: Tenant) -> None:
    """After rotation, tokens issued before are rejected and new ones accepted."""
    old = issue(svc)
    rotate_tenant(svc, "acme")
    rejects(svc, old)
    assert svc.verifier.verify(issue(svc)).tenant_id == "acme"


def test_rotate_to_current_secret_conflicts(svc: Services, acme: Tenant) -> None:
    """Importing the current secret would revoke nothing: ConflictError, nothing changes."""
    with pytest.raises(ConflictError):
        rotate_tenant(svc, "acme", secret_text(ACME_SECRET))
    assert get_tenant(svc, "acme") == acme


def test_rotate_to_imported_secret(svc: Services, acme: Tenant) -> None:
    """Rotating to an imported secret makes tokens signed with it verify."""
    rotate_tenant(svc, "acme", secret_text(OTHER_SECRET))
    token = pyjwt.encode(claims(kv=2), OTHER_SECRET, algorithm="HS256", headers={"kid": "acme"})
    assert svc.verifier.verify(token).tenant_id == "acme"


@pytest.mark.parametrize("prepare", ["unknown", "deleted"])
def test_rotate_missing_tenant_not_found(svc: Services, acme: Tenant, prepare: str) -> None:
    """Rotating an unknown or deleted tenant raises NotFoundError."""
    tenant_id = "nobody" if prepare == "unknown" else "acme"
    if prepare == "deleted":
        delete_tenant(svc, "acme")
    with pytest.raises(NotFoundError):
        rotate_tenant(svc, tenant_id)


def test_rotate_bad_secret_rejected(svc: Services, acme: Tenant) -> None:
    """Rotating to a too-short secret is an InvalidRequestError and changes nothing."""
    with pytest.raises(InvalidRequestError):
        rotate_tenant(svc, "acme", b64url(b"k" * 31))
    assert get_tenant(svc, "acme") == acme


# --- delete -------------------------------------------------------------------------------


def test_delete_then_get_not_found(svc: Services, acme: Tenant) -> None:
    """A deleted tenant is not found, and deleting it again is NotFoundError."""
    delete_tenant(svc, "acme")
    with pytest.raises(NotFoundError):
        get_tenant(svc, "acme")
    with pytest.raises(NotFoundError):
        delete_tenant(svc, "acme")


def test_delete_unknown_not_found(svc: Services) -> None:
    """Deleting a tenant that never existed raises NotFoundError."""
    with pytest.raises(NotFoundError):
        delete_tenant(svc, "nobody")


def test_recreate_after_delete(svc: Services, acme: Tenant) -> None:
    """A deleted id can be created again: new secret, key_version continued, higher
    generation."""
    old = issue(svc)
    delete_tenant(svc, "acme")
    again = create_tenant(svc, "acme", "Acme again")
    assert again.key_version == acme.key_version + 1
    assert again.status is TenantStatus.ACTIVE
    assert again.generation > acme.generation + 1  # delete and re-create each fence
    assert get_tenant(svc, "acme") == again
    rejects(svc, old)
    assert svc.verifier.verify(issue(svc)).tenant_id == "acme"


# --- issue_token --------------------------------------------------------------------------


def test_issue_unknown_tenant_not_found(svc: Services) -> None:
    """Issuing for a tenant that never existed raises NotFoundError."""
    with pytest.raises(NotFoundError):
        issue(svc, "nobody")


def test_issue_deleted_tenant_not_found(svc: Services, acme: Tenant) -> None:
    """Issuing for a deleted tenant raises NotFoundError."""
    delete_tenant(svc, "acme")
    with pytest.raises(NotFoundError):
        issue(svc)


def test_issue_suspended_tenant_conflicts(svc: Services, acme: Tenant) -> None:
    """Issuing for a suspended tenant raises ConflictError."""
    update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    with pytest.raises(ConflictError):
        issue(svc)


def test_issue_ttl_bounds(svc: Services) -> None:
    """ttl may go up to the tenant's max_token_ttl and not beyond (nor below 1)."""
    create_tenant(svc, "acme", "Acme", access_token_ttl=60, max_token_ttl=600)
    assert svc.verifier.verify(issue(svc, ttl=600)).claims["exp"] == int(NOW) + 600
    assert svc.verifier.verify(issue(svc)).claims["exp"] == int(NOW) + 60
    for ttl in (601, MAX_LIFETIME + 1, -1):
        with pytest.raises(InvalidRequestError):
            issue(svc, ttl=ttl)


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_issue_reserved_claim_rejected(name: str) -> None:
    """Custom claims may not set any reserved claim."""
    with pytest.raises(InvalidRequestError):
        TokenRequest("acme", "user-1", claims={name: "x"})


def test_issue_custom_claims_size_limit(svc: Services, acme: Tenant) -> None:
    """Custom claims up to 2048 bytes are issued; one byte more is rejected."""
    overhead = len('{"k":""}')
    fits = {"k": "x" * (MAX_CUSTOM_CLAIMS_BYTES - overhead)}
    assert svc.verifier.verify(issue(svc, claims=fits)).claims["k"] == fits["k"]
    with pytest.raises(InvalidRequestError):
        TokenRequest("acme", "user-1", claims={"k": "x" * (MAX_CUSTOM_CLAIMS_BYTES - overhead + 1)})


def test_issue_token_over_length_cap_rejected(svc: Services, acme: Tenant) -> None:
    """A request whose token would exceed MAX_TOKEN_LENGTH is refused rather than minted."""
    big = {"k": "x" * 2000}
    with pytest.raises(InvalidRequestError):
        issue(svc, claims=big, scope="s" * 1024, audience=["a" * 255] * 4)
    assert len(issue(svc, claims=big)) <= MAX_TOKEN_LENGTH


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"subject": ""}, id="empty-subject"),
        pytest.param({"subject": "s" * 256}, id="long-subject"),
        pytest.param({"scope": "s" * 1025}, id="long-scope"),
        pytest.param({"audience": []}, id="no-audiences"),
        pytest.param({"audience": ["a"] * 11}, id="too-many-audiences"),
        pytest.param({"audience": ""}, id="empty-audience"),
        pytest.param({"audience": ["a", ""]}, id="empty-audience-member"),
        pytest.param({"audience": "a" * 256}, id="long-audience"),
    ],
)
def test_issue_request_bounds(kwargs: dict[str, Any]) -> None:
    """TokenRequest refuses out-of-bounds subject, scope and audiences."""
    subject = kwargs.pop("subject", "user-1")
    with pytest.raises(InvalidRequestError):
        TokenRequest("acme", subject, **kwargs)


@pytest.mark.parametrize("field", ["access_token_ttl", "max_token_ttl"])
def test_zero_ttl_is_refused_not_defaulted(svc: Services, field: str) -> None:
    """A TTL of 0 is an error, never a silent "use the default"."""
    with pytest.raises(InvalidRequestError):
        create_tenant(svc, "zero-ttl", "Zero", **{field: 0})


def test_zero_token_ttl_is_refused(svc: Services, acme: Tenant) -> None:
    """Issuing with ttl=0 is an error, never the tenant's default lifetime."""
    request = TokenRequest(acme.id, "user-1", ttl=0)
    with pytest.raises(InvalidRequestError):
        issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request)


# --- rewrap (master-key rotation) ------------------------------------------------------------


def test_rewrap_moves_the_secret_to_the_current_master_key_without_revoking(
    svc: Services, acme: Tenant
) -> None:
    """Re-sealing under a new master key keeps the secret (old tokens verify), drops cached
    blobs (fence protocol), and is a no-op the second time; the old key is then unneeded."""
    token = issue(svc)
    svc.verifier.verify(token)  # warm: the cache now holds the blob sealed by the old key
    new_key = bytes(32 - i for i in range(32))
    both = MasterKeyring(new_key, {master_key_id(MASTER_KEY): MASTER_KEY})
    rotated = swap(svc, keyring=both)
    assert rewrap_tenant(rotated, "acme") is True
    assert get_tenant(svc, "acme").sealed_secret.key_id == master_key_id(new_key)  # type: ignore[union-attr]
    assert rewrap_tenant(rotated, "acme") is False  # already current
    assert rewrap_tenant(rotated, "ghost") is False  # unknown
    # A verifier that knows only the new key still accepts the token issued before.
    only_new = KeyResolver(svc.storage, svc.cache, MasterKeyring(new_key), svc.caching)
    assert TokenVerifier(only_new, svc.tokens, svc.clock).verify(token).tenant_id == "acme"


def test_rotating_back_to_an_earlier_secret_revives_no_token(svc: Services, acme: Tenant) -> None:
    """A -> B -> A: tokens minted under the first A stay dead (claim kv), new ones verify."""
    first = issue(svc)
    rotate_tenant(svc, "acme")
    rotate_tenant(svc, "acme", secret=secret_text(ACME_SECRET))
    rejects(svc, first)
    assert svc.verifier.verify(issue(svc)).tenant_id == "acme"


def test_recreating_with_the_same_imported_secret_revives_no_token(
    svc: Services, acme: Tenant
) -> None:
    """Delete, then create again importing the very same secret: old tokens stay dead."""
    old = issue(svc)
    delete_tenant(svc, "acme")
    again = create_tenant(svc, "acme", "Acme", secret=secret_text(ACME_SECRET))
    assert again.key_version == acme.key_version + 1
    rejects(svc, old)
    assert svc.verifier.verify(issue(svc)).tenant_id == "acme"


def test_key_version_claim_must_match_exactly(svc: Services, acme: Tenant) -> None:
    """kv is a JSON integer equal to the tenant's key version; anything else is refused."""
    rotate_tenant(svc, "acme", secret=secret_text(OTHER_SECRET))  # key version 2
    svc.verifier.verify(forge(payload=claims(kv=2), key=OTHER_SECRET))
    for bad in (1, 3, "2", 2.0, True, None, -2):
        rejects(svc, forge(payload=claims(kv=bad), key=OTHER_SECRET))
    rejects(svc, forge(payload=claims(), key=OTHER_SECRET))  # absent = 1


class FlakySeal:
    """The svc cache, but ``seal`` fails its first ``failures`` calls (a dropped connection)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def seal(self, tenant_id: str, generation: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise CacheUnavailableError("connection dropped")
        self.inner.seal(tenant_id, generation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_seal_that_fails_once_is_retried(svc: Services, acme: Tenant) -> None:
    """One dropped connection after the commit costs a retry, not an error."""
    flaky = swap(svc, cache=FlakySeal(svc.cache, failures=1))
    assert rotate_tenant(flaky, "acme").key_version == acme.key_version + 1


def test_an_unconfirmed_rotation_is_committed_and_says_so(svc: Services, acme: Tenant) -> None:
    """The seal cannot reach the cache: 503 change_unconfirmed, yet the rotation committed
    (old tokens are dead in storage), and repeating the call confirms with a new rotation."""
    old = issue(svc)
    broken = swap(svc, cache=FlakySeal(svc.cache, failures=2))
    with pytest.raises(UnconfirmedChangeError):
        rotate_tenant(broken, "acme")
    assert get_tenant(svc, "acme").key_version == acme.key_version + 1
    rejects(svc, old)
    assert rotate_tenant(svc, "acme").key_version == acme.key_version + 2
