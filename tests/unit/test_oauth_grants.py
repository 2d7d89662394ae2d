"""The token endpoint's grants on SQLite + fakeredis with a fixed clock (RFC 6749, RFC 9700)."""

from __future__ import annotations

import pytest

from tenantauth.crypto.passwords import PasswordHasher
from tenantauth.domain.models import Tenant, TenantStatus, UserStatus
from tenantauth.domain.oauth.clients import delete_client, rotate_client_secret
from tenantauth.domain.oauth.grants import GrantRequest, TokenResponse, grant_token
from tenantauth.domain.oauth.oauth import ClientCredentials
from tenantauth.domain.revocations import revoke_subject
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import TenantChanges, update_tenant
from tenantauth.errors import (
    ConflictError,
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    InvalidTokenError,
    OAuthError,
    RateLimitedError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from tests.oauth_accounts import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USERNAME,
    add_client,
    add_user,
    set_user_status,
)

IP = "192.0.2.7"
CREDS = ClientCredentials(CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
GRACE = 10  # AuthPolicy().refresh_reuse_grace


@pytest.fixture
def app_client(svc: Services, acme: Tenant) -> None:
    """Client tac_app of acme (scopes read write, every grant) and user alice."""
    add_client(svc, "acme")
    add_user(svc, "acme", claims={"role": "admin"})


def token(svc: Services, creds: ClientCredentials = CREDS, **params: str) -> TokenResponse:
    """Call the token endpoint's domain function for acme."""
    return grant_token(svc, "acme", creds, GrantRequest(**params), IP)  # type: ignore[arg-type]


def login(svc: Services, **params: str) -> TokenResponse:
    """Password grant for alice."""
    return token(svc, grant_type="password", username=USERNAME, password=PASSWORD, **params)


def refresh(svc: Services, value: str | None, **params: str) -> TokenResponse:
    """Refresh grant."""
    assert value is not None
    return token(svc, grant_type="refresh_token", refresh_token=value, **params)


@pytest.mark.usefixtures("app_client")
class TestClientCredentials:
    def test_issues_a_verifiable_token_for_the_client(self, svc: Services) -> None:
        """§4.4: sub is the client id, scope defaults to the client's, no refresh token."""
        response = token(svc, grant_type="client_credentials")
        verdict = svc.verifier.verify(response.access_token)
        assert (verdict.tenant_id, verdict.subject) == ("acme", CLIENT_ID)
        assert verdict.claims["client_id"] == CLIENT_ID
        assert response.scope == verdict.scope == "read write"
        assert response.refresh_token is None
        assert response.expires_in == 900

    def test_narrower_scope_is_granted(self, svc: Services) -> None:
        """§3.3: a requested subset of the client's scopes is granted as requested."""
        response = token(svc, grant_type="client_credentials", scope="write write")
        assert response.scope == "write"
        assert svc.verifier.verify(response.access_token).scope == "write"

    @pytest.mark.parametrize("scope", ["read admin", 'bad"quote', "a  b"])
    def test_wider_or_malformed_scope_is_invalid_scope(self, svc: Services, scope: str) -> None:
        """§3.3: scopes outside the client's, or not NQCHAR tokens, are invalid_scope."""
        with pytest.raises(InvalidScopeError):
            token(svc, grant_type="client_credentials", scope=scope)

    @pytest.mark.parametrize(
        "creds",
        [
            ClientCredentials(CLIENT_ID, "wrong", "client_secret_post"),
            ClientCredentials("tac_nobody", CLIENT_SECRET, "client_secret_post"),
            ClientCredentials("a\x00b", CLIENT_SECRET, "client_secret_post"),
        ],
    )
    def test_bad_client_credentials_are_invalid_client(
        self, svc: Services, creds: ClientCredentials
    ) -> None:
        """A wrong secret, an unknown or impossible client id: invalid_client."""
        with pytest.raises(InvalidClientError):
            token(svc, creds, grant_type="client_credentials")

    def test_suspended_tenant_has_no_clients(self, svc: Services) -> None:
        """Clients of a suspended tenant cannot authenticate."""
        update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
        with pytest.raises(InvalidClientError):
            token(svc, grant_type="client_credentials")

    def test_deleted_client_and_old_secret_are_refused_at_once(self, svc: Services) -> None:
        """No cache of clients: after a rotation the old secret fails, after a deletion the
        client does, on the very next request."""
        token(svc, grant_type="client_credentials")
        _, new_secret = rotate_client_secret(svc, "acme", CLIENT_ID)
        with pytest.raises(InvalidClientError):
            token(svc, grant_type="client_credentials")
        fresh = ClientCredentials(CLIENT_ID, new_secret, "client_secret_basic")
        token(svc, fresh, grant_type="client_credentials")
        delete_client(svc, "acme", CLIENT_ID)
        with pytest.raises(InvalidClientError):
            token(svc, fresh, grant_type="client_credentials")

    def test_revoked_client_subject_gets_the_new_version(self, svc: Services) -> None:
        """Tokens minted after the client id was revoked as a subject carry ``uv`` and verify;
        those minted before do not."""
        before = token(svc, grant_type="client_credentials").access_token
        revocation = revoke_subject(svc, "acme", CLIENT_ID)
        after = token(svc, grant_type="client_credentials").access_token
        assert svc.verifier.verify(after).claims["uv"] == revocation.version
        with pytest.raises(InvalidTokenError):
            svc.verifier.verify(before)

    def test_disabled_user_named_like_the_client_is_refused(self, svc: Services) -> None:
        """As at the admin token endpoint, no token is minted for the subject of a disabled
        user, even when a client id names it."""
        add_user(svc, "acme", CLIENT_ID, status=UserStatus.DISABLED)
        with pytest.raises(ConflictError):
            token(svc, grant_type="client_credentials")

    def test_missing_grant_type_is_invalid_request(self, svc: Services) -> None:
        """§5.2: a missing required parameter is invalid_request."""
        with pytest.raises(OAuthError) as info:
            token(svc, grant_type=None)  # type: ignore[arg-type]
        assert info.value.code == "invalid_request"

    def test_unknown_grant_type_is_unsupported(self, svc: Services) -> None:
        """§5.2: an unknown grant type is unsupported_grant_type."""
        with pytest.raises(UnsupportedGrantTypeError):
            token(svc, grant_type="authorization_code")

    def test_grant_not_allowed_for_client_is_unauthorized_client(self, svc: Services) -> None:
        """§4.3: only clients allowed the password grant may use it."""
        add_client(svc, "acme", "tac_m2m", "tas_m2m", grant_types=["client_credentials"])
        creds = ClientCredentials("tac_m2m", "tas_m2m", "client_secret_post")
        with pytest.raises(UnauthorizedClientError):
            token(svc, creds, grant_type="password", username=USERNAME, password=PASSWORD)


@pytest.mark.usefixtures("app_client")
class TestPassword:
    def test_login_issues_access_and_refresh_tokens(self, svc: Services) -> None:
        """§4.3: sub is the username, the user's claims and client_id are in the token."""
        response = login(svc, scope="read")
        verdict = svc.verifier.verify(response.access_token)
        assert verdict.subject == USERNAME
        assert verdict.claims["role"] == "admin"
        assert verdict.claims["client_id"] == CLIENT_ID
        assert response.scope == "read"
        assert response.refresh_token is not None
        assert response.refresh_token.startswith("tart_")

    def test_no_refresh_token_without_the_refresh_grant(self, svc: Services) -> None:
        """A client not allowed the refresh_token grant gets no refresh token (§4.3.3)."""
        add_client(svc, "acme", "tac_pw", "tas_pw", grant_types=["password"])
        creds = ClientCredentials("tac_pw", "tas_pw", "client_secret_post")
        response = token(svc, creds, grant_type="password", username=USERNAME, password=PASSWORD)
        assert response.refresh_token is None

    @pytest.mark.parametrize(("username", "password"), [(USERNAME, "nope"), ("bob", PASSWORD)])
    def test_wrong_password_or_unknown_user_is_invalid_grant(
        self, svc: Services, username: str, password: str
    ) -> None:
        """§5.2: bad resource owner credentials are invalid_grant, known user or not."""
        with pytest.raises(InvalidGrantError):
            token(svc, grant_type="password", username=username, password=password)

    def test_disabled_user_is_invalid_grant(self, svc: Services) -> None:
        """A disabled user cannot sign in even with the right password."""
        set_user_status(svc, "acme", USERNAME, UserStatus.DISABLED)
        with pytest.raises(InvalidGrantError):
            login(svc)

    def test_missing_password_is_invalid_request(self, svc: Services) -> None:
        """§4.3.2: username and password are required."""
        with pytest.raises(OAuthError) as info:
            token(svc, grant_type="password", username=USERNAME)
        assert type(info.value) is OAuthError

    def test_outdated_hash_is_upgraded_on_login(self, svc: Services) -> None:
        """A hash made with other argon2 parameters is replaced after a successful login."""
        old = PasswordHasher(time_cost=2, memory_cost=8192).hash(PASSWORD)
        add_user(svc, "acme", "carol", password_hash=old)
        token(svc, grant_type="password", username="carol", password=PASSWORD)
        with svc.storage.transaction() as tx:
            stored = tx.users.get("acme", "carol")
        assert stored is not None
        assert stored.password_hash != old
        assert not svc.passwords.needs_rehash(stored.password_hash)
        assert svc.passwords.verify(stored.password_hash, PASSWORD)


@pytest.mark.usefixtures("app_client")
class TestLimiter:
    def test_failed_passwords_lock_the_username(self, svc: Services) -> None:
        """After LimitPolicy.max_failures wrong passwords even the right one gets 429."""
        for _ in range(5):
            with pytest.raises(InvalidGrantError):
                token(svc, grant_type="password", username=USERNAME, password="nope")
        with pytest.raises(RateLimitedError) as info:
            login(svc)
        assert info.value.retry_after > 0

    def test_unknown_username_locks_the_same_way(self, svc: Services) -> None:
        """An unknown username is locked after as many failures, with the same error text."""
        errors = []
        for name in (USERNAME, "nobody"):
            for _ in range(5):
                with pytest.raises(InvalidGrantError):
                    token(svc, grant_type="password", username=name, password="nope")
            with pytest.raises(RateLimitedError) as info:
                token(svc, grant_type="password", username=name, password="nope")
            errors.append(str(info.value))
            svc.limiter.reset([f"ip:{IP}"])  # the shared address key locks too
        assert errors[0] == errors[1]

    def test_failed_client_secrets_lock_the_client(self, svc: Services) -> None:
        """Wrong client secrets count per client id; then the right secret gets 429."""
        bad = ClientCredentials(CLIENT_ID, "wrong", "client_secret_post")
        for _ in range(5):
            with pytest.raises(InvalidClientError):
                token(svc, bad, grant_type="client_credentials")
        with pytest.raises(RateLimitedError):
            token(svc, grant_type="client_credentials")

    def test_client_success_resets_the_client_counter(self, svc: Services) -> None:
        """A client that authenticates forgets its earlier failures (four more then pass)."""
        bad = ClientCredentials(CLIENT_ID, "wrong", "client_secret_post")
        for _ in range(2):
            for _ in range(4):
                with pytest.raises(InvalidClientError):
                    token(svc, bad, grant_type="client_credentials")
            token(svc, grant_type="client_credentials")
            svc.limiter.reset([f"ip:{IP}"])  # success keeps the address's count

    def test_success_resets_the_user_counter(self, svc: Services) -> None:
        """A successful login forgets the user's earlier failures."""
        for _ in range(4):
            with pytest.raises(InvalidGrantError):
                token(svc, grant_type="password", username=USERNAME, password="nope")
        login(svc)
        svc.limiter.reset([f"ip:{IP}"])  # success keeps the address's count; isolate the user's
        with pytest.raises(InvalidGrantError):  # a 5th failure in a row would lock
            token(svc, grant_type="password", username=USERNAME, password="nope")
        login(svc)
