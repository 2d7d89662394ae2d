"""``TenantAuthClient``: verify tokens with tenantauth, and its common admin tasks.

Retries (bounded, with backoff; ``_http.retry_policies``) follow a connection error, a read
error or a 503, and only for calls that may safely run twice. Every call is, but the
creations: ``create_tenant`` and ``create_user`` repeated would be a 409 hiding an unconfirmed
creation, ``create_client`` a second client whose secret no one has, so those retry only a
failure to connect (nothing was sent). Why each other call is safe to repeat — a repeated
rotate rotates again, a repeated delete finds the tenant gone — is in the README's table,
"Timeouts and retries".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from tenantauth_client._http import Transport, retry_policies, segment
from tenantauth_client.cache import VerifyCache
from tenantauth_client.claims import Claims
from tenantauth_client.errors import (
    ConfigurationError,
    InvalidToken,
    ServiceUnavailable,
    Unauthorized,
)

#: Longer strings are refused without a request: tenantauth rejects anything over 4,096
#: characters itself, and this keeps a huge "token" off the wire (and out of a 413).
MAX_TOKEN_CHARS = 16_384
TENANTS = "/v1/admin/tenants"


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth client's id and secret, as created (the secret is shown this once).

    Unpacks as a pair: ``client_id, client_secret = client.create_client(...)``. The secret
    is left out of ``repr``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    info: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[str]:
        """Yield ``client_id`` then ``client_secret``."""
        return iter((self.client_id, self.client_secret))


class TenantAuthClient:
    """A client of one tenantauth deployment; thread-safe, reusing pooled connections.

    ``timeout`` bounds connecting and each read, per attempt, in seconds; ``retries`` is the
    number of retries after the first attempt (so a call lasts at most about
    ``(retries + 1) * 2 * timeout`` plus backoff sleeps of ``backoff_factor * 2**(n-1)`` s,
    each capped at ``backoff_max``, as is any ``Retry-After`` the server sends).

    ``cache_ttl`` > 0 turns on a positive cache of ``verify`` results (``cache.VerifyCache``):
    **a revoked or rotated token may then keep being accepted by this client for up to
    ``cache_ttl`` seconds.** Off (0) by default, which keeps tenantauth's guarantee: a token
    is rejected from the first ``verify`` after the revoking call returned.

    ``headers`` are sent with every request (e.g. a ``User-Agent``). Tokens, the admin token
    and secrets never appear in ``repr``, exceptions or log messages of this client.
    """

    def __init__(
        self,
        base_url: str,
        admin_token: str | None = None,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff_factor: float = 0.1,
        backoff_max: float = 2.0,
        cache_ttl: float = 0,
        cache_size: int = 1024,
        headers: Mapping[str, str] | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        """Prepare a client of ``base_url`` (e.g. ``http://tenantauth:8000``); no I/O here.

        Raises ``ConfigurationError`` for a base URL that is not http(s) with a host, and
        ``ValueError`` for a negative ``retries``, ``timeout`` or ``cache_ttl``.
        """
        if retries < 0 or timeout <= 0 or cache_ttl < 0:
            raise ValueError("retries and cache_ttl must be >= 0, timeout > 0")
        policies = retry_policies(retries, backoff_factor, backoff_max)
        self._http = Transport(
            base_url, timeout=timeout, retries=policies, headers=headers, pool_maxsize=pool_maxsize
        )
        self._admin_token = admin_token
        self.timeout, self.retries = timeout, retries
        self.cache = VerifyCache(cache_ttl, cache_size) if cache_ttl > 0 else None

    @property
    def base_url(self) -> str:
        """The tenantauth base URL, without a trailing slash."""
        return self._http.base_url

    def __repr__(self) -> str:
        """Show the URL and settings, never a credential."""
        admin = "set" if self._admin_token else "none"
        ttl = self.cache.ttl if self.cache else 0
        return (
            f"TenantAuthClient({self.base_url!r}, admin_token=<{admin}>, "
            f"timeout={self.timeout}, retries={self.retries}, cache_ttl={ttl})"
        )

    # ------------------------------------------------------------------ verify

    def verify(self, token: str, audience: str | None = None) -> Claims:
        """Verify ``token`` with tenantauth (``POST /v1/verify``); return its ``Claims``.

        ``audience``, if given, must be one of the token's ``aud`` values. With the cache on,
        a token verified in the last ``cache_ttl`` seconds is accepted without a request.

        Raises ``InvalidToken`` (401: invalid, expired, revoked, wrong audience, empty or
        over ``MAX_TOKEN_CHARS``), ``ServiceUnavailable`` (503, another 5xx, an answer that is
        not a verification, or no answer after the retries: fail closed), ``BadRequest`` (a
        malformed ``audience``), ``TypeError`` if ``token`` is not a string.
        """
        if not isinstance(token, str):
            raise TypeError("token must be a str")
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(401, "invalid_token", "Invalid token", "empty or too long")
        if self.cache is not None and (hit := self.cache.get(token, audience)) is not None:
            return hit
        claims = self._verify(token, audience)
        if self.cache is not None:
            self.cache.put(token, audience, claims)
        return claims

    def _verify(self, token: str, audience: str | None) -> Claims:
        body = {"token": token} if audience is None else {"token": token, "audience": audience}
        try:
            answer = self._http.request("POST", "/v1/verify", body=body)
        except Unauthorized as exc:
            raise InvalidToken(
                exc.status, exc.code, exc.title, exc.detail, exc.request_id
            ) from None
        return _claims_of(answer)

    # ------------------------------------------------------------------ admin: tenants

    def get_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Return the tenant (``id``, ``name``, ``status``, ``key_version``, ...; never its
        secret). Raises ``NotFound``, ``Unauthorized``, ``PermissionDenied``,
        ``ServiceUnavailable`` (as every admin call may)."""
        return self._admin("GET", f"{TENANTS}/{segment(tenant_id)}")  # type: ignore[no-any-return]

    def create_tenant(
        self,
        tenant_id: str,
        name: str,
        secret: str | None = None,
        *,
        access_token_ttl: int | None = None,
        max_token_ttl: int | None = None,
    ) -> dict[str, Any]:
        """Create a tenant (``secret``: import an existing base64url secret of >= 32 bytes);
        return it. Raises ``Conflict`` if the id exists, ``BadRequest`` for invalid fields."""
        body = _present(
            id=tenant_id,
            name=name,
            secret=secret,
            access_token_ttl=access_token_ttl,
            max_token_ttl=max_token_ttl,
        )
        return self._admin("POST", TENANTS, body, safe=False)  # type: ignore[no-any-return]

    def rotate_tenant(self, tenant_id: str, secret: str | None = None) -> dict[str, Any]:
        """Rotate the tenant's secret; when this returns every older token of the tenant is
        rejected everywhere. Returns ``{"id", "key_version", "rotated_at"}``."""
        path = f"{TENANTS}/{segment(tenant_id)}/rotate"
        return self._admin("POST", path, _present(secret=secret))  # type: ignore[no-any-return]

    def suspend_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Suspend the tenant (its tokens stop verifying at once); return it."""
        return self._set_status(tenant_id, "suspended")

    def resume_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Make a suspended tenant active again; return it."""
        return self._set_status(tenant_id, "active")

    def delete_tenant(self, tenant_id: str) -> None:
        """Delete the tenant (secret erased, tokens rejected at once). Returns once it is gone,
        also when a retried attempt found it deleted by an earlier one. Raises ``NotFound``
        when the first answer says it does not exist."""
        self._admin("DELETE", f"{TENANTS}/{segment(tenant_id)}", gone_ok=True)

    def _set_status(self, tenant_id: str, status: str) -> dict[str, Any]:
        path = f"{TENANTS}/{segment(tenant_id)}"
        return self._admin("PATCH", path, {"status": status})  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ admin: tokens, users

    def issue_token(
        self,
        tenant_id: str,
        sub: str,
        *,
        scope: str | None = None,
        aud: str | None = None,
        ttl: int | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Mint an access token for ``sub`` in the tenant; return it (a compact JWT).
        Raises ``NotFound`` for an unknown tenant, ``BadRequest`` for invalid fields."""
        body = _present(sub=sub, scope=scope, aud=aud, ttl=ttl, claims=_dict(claims))
        answer = self._admin("POST", f"{TENANTS}/{segment(tenant_id)}/tokens", body)
        return str(answer["access_token"])

    def revoke_token(self, tenant_id: str, token: str) -> bool:
        """Denylist one access token until it expires; return ``False`` if it was not a valid
        token of this tenant (RFC 7009 §2.2: not an error)."""
        path = f"{TENANTS}/{segment(tenant_id)}/tokens/revoke"
        return bool(self._admin("POST", path, {"token": token})["revoked"])

    def revoke_user(self, tenant_id: str, username: str) -> dict[str, Any]:
        """Log ``username`` (any subject) out everywhere: every token issued to it until now is
        rejected once this returns. Returns ``{"tenant_id", "subject", "version",
        "revoked_at"}``.

        Names the subject in the body (``POST …/subjects/revoke``), so any subject a token can
        carry works, ``/`` and ``..`` included, which no path segment can carry through every
        proxy.
        """
        path = f"{TENANTS}/{segment(tenant_id)}/subjects/revoke"
        return self._admin("POST", path, {"sub": username})  # type: ignore[no-any-return]

    def create_user(
        self,
        tenant_id: str,
        username: str,
        password: str,
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a user of the tenant; return it (never the password). Raises ``Conflict``
        if the name is taken, ``BadRequest`` for a name or password the policy refuses."""
        body = _present(username=username, password=password, claims=_dict(claims))
        path = f"{TENANTS}/{segment(tenant_id)}/users"
        return self._admin("POST", path, body, safe=False)  # type: ignore[no-any-return]

    def create_client(
        self, tenant_id: str, name: str, scopes: Iterable[str], grant_types: Iterable[str]
    ) -> ClientCredentials:
        """Register an OAuth client; return its ``ClientCredentials`` (id and the secret,
        which tenantauth never shows again)."""
        body = {"name": name, "scopes": list(scopes), "grant_types": list(grant_types)}
        path = f"{TENANTS}/{segment(tenant_id)}/clients"
        answer = self._admin("POST", path, body, safe=False)
        info = {k: v for k, v in answer.items() if k != "client_secret"}
        return ClientCredentials(answer["client_id"], answer["client_secret"], info)

    # ------------------------------------------------------------------ plumbing

    def _admin(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        safe: bool = True,
        gone_ok: bool = False,
    ) -> Any:
        if not self._admin_token:
            raise ConfigurationError("this call needs the client's admin_token")
        token = self._admin_token
        return self._http.request(method, path, body=body, bearer=token, safe=safe, gone_ok=gone_ok)

    def close(self) -> None:
        """Close the pooled connections (the client may still be used; it reconnects)."""
        self._http.close()

    def __enter__(self) -> Self:
        """Use the client as a context manager that closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the pooled connections."""
        self.close()


def _claims_of(answer: Any) -> Claims:
    """Return the claims of a 200 from /v1/verify; anything else is no answer (fail closed)."""
    try:
        if isinstance(answer, dict) and answer.get("active") is True:
            return Claims.from_json(answer["claims"])
        problem = "not an active verification"
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        problem = str(exc)
    detail = f"/v1/verify answered 200 without valid claims ({problem})"
    raise ServiceUnavailable(200, "unexpected_response", "Unexpected answer", detail)


def _present(**fields: Any) -> dict[str, Any]:
    """Return the fields that are not ``None`` (the server's defaults apply to the others)."""
    return {name: value for name, value in fields.items() if value is not None}


def _dict(claims: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if claims is None else dict(claims)
