"""The one error hierarchy of tenantauth (stdlib only).

Every error carries a stable ``code`` slug and a human ``title``; ``api/problems.py`` maps the
classes to HTTP statuses exactly once (resolved through the MRO), so nothing else in the code
base knows about status codes.
"""

from __future__ import annotations

from enum import StrEnum


class TenantAuthError(Exception):
    """Base of every error tenantauth raises on purpose."""

    code = "error"
    title = "Error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InvalidRequestError(TenantAuthError):
    """The request is malformed or fails validation."""

    code = "invalid_request"
    title = "Invalid request"

    def __init__(self, detail: str | None = None, errors: object = None) -> None:
        super().__init__(detail)
        self.errors = errors


class MalformedRequestError(InvalidRequestError):
    """The request is ambiguous or unparsable as sent (HTTP 400), e.g. two credentials.

    Validation failures of a well-formed request stay ``InvalidRequestError`` (422).
    """


class UnsupportedMediaTypeError(InvalidRequestError):
    """The request has a body of a media type the endpoint does not take (HTTP 415);
    ``accept`` names the type it does take."""

    code = "unsupported_media_type"
    title = "Unsupported media type"

    def __init__(self, detail: str, accept: str) -> None:
        super().__init__(detail)
        self.accept = accept


class AuthenticationError(TenantAuthError):
    """The caller could not be authenticated."""

    code = "unauthenticated"
    title = "Authentication required"


class RejectReason(StrEnum):
    """Why a token was rejected, in categories few enough to be a metrics label and a log
    field (``tenantauth_verify_total{reason}``); never sent to the client (uniform 401)."""

    MISSING = "missing"  # no credentials at all
    MALFORMED = "malformed"  # not one strict compact JWS, bad header, bad JSON, bad encoding
    SIGNATURE = "signature"
    UNKNOWN_TENANT = "unknown_tenant"  # no such tenant, or suspended or deleted
    ROTATED = "rotated"  # signed before the tenant's secret was rotated
    REVOKED_TOKEN = "revoked_token"  # noqa: S105 - a label, not a secret: jti revoked
    REVOKED_SUBJECT = "revoked_subject"  # user logged out / revoked
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"  # nbf or iat in the future
    LIFETIME = "lifetime"  # exp - iat over the maximum
    ISSUER = "issuer"
    AUDIENCE = "audience"
    CLAIMS = "claims"  # a required claim missing or mistyped, tid != kid


class InvalidTokenError(AuthenticationError):
    """A bearer token failed verification.

    ``reason`` is for logs only: responses are uniform whatever check failed (RFC 8725 §2,
    VERIFIER-CHECKLIST #13), so an attacker learns nothing about which part was wrong.
    """

    code = "invalid_token"
    title = "Invalid token"

    def __init__(self, reason: str, kind: RejectReason | None = None) -> None:
        """``reason`` is free text for the log line; ``kind`` its bounded category (the
        metrics label), malformed unless given."""
        super().__init__("The access token is missing, invalid, expired or revoked.")
        self.reason = reason
        self.kind = kind or RejectReason.MALFORMED


class MissingTokenError(InvalidTokenError):
    """The request carries no credentials at all (gateway endpoint ``GET /v1/verify``).

    Same status and body as any other token failure; only the challenge differs, because
    RFC 6750 §3.1 says a request without credentials SHOULD get no error code.
    """

    def __init__(self) -> None:
        super().__init__("no credentials", RejectReason.MISSING)


class PermissionDeniedError(TenantAuthError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"
    title = "Forbidden"


class NotFoundError(TenantAuthError):
    """The addressed resource does not exist."""

    code = "not_found"
    title = "Not found"


class ConflictError(TenantAuthError):
    """The request conflicts with the current state (e.g. the id already exists)."""

    code = "conflict"
    title = "Conflict"


class RateLimitedError(TenantAuthError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DependencyUnavailableError(TenantAuthError):
    """A dependency (database, cache) failed, so the answer cannot be known safely.

    The service fails closed: this is a 503, never an allow.
    """

    code = "unavailable"
    title = "Service unavailable"


class StorageUnavailableError(DependencyUnavailableError):
    """The database could not be reached or failed mid-operation."""

    code = "storage_unavailable"


class CacheUnavailableError(DependencyUnavailableError):
    """The cache could not be reached; callers fall back to storage where that is safe."""

    code = "cache_unavailable"


class UnconfirmedChangeError(CacheUnavailableError):
    """A change committed, but the cache could not be told again afterwards (the "seal" of
    docs/design.md, "Cache incarnations"), so a verifier might still accept what it revoked.

    Repeating the same call is safe and confirms it; the change itself is not undone.
    """

    code = "change_unconfirmed"


class OAuthError(TenantAuthError):
    """An error of the OAuth 2.0 endpoints; ``code`` is its RFC 6749 §5.2 ``error`` value.

    The base class itself is ``invalid_request`` (RFC 6749 §5.2: a missing, repeated or
    unsupported parameter, or more than one client authentication method).
    """

    code = "invalid_request"
    title = "Invalid request"


class InvalidClientError(OAuthError):
    """Client authentication failed (RFC 6749 §5.2 ``invalid_client``): unknown client, wrong
    secret, no or malformed credentials."""

    code = "invalid_client"
    title = "Client authentication failed"


class InvalidGrantError(OAuthError):
    """The grant (password, refresh token) is invalid, expired, revoked or not this client's
    (RFC 6749 §5.2 ``invalid_grant``)."""

    code = "invalid_grant"
    title = "Invalid grant"


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant type (RFC 6749 §5.2 ``unauthorized_client``)."""

    code = "unauthorized_client"
    title = "Unauthorized client"


class UnsupportedGrantTypeError(OAuthError):
    """The grant type is not supported (RFC 6749 §5.2 ``unsupported_grant_type``)."""

    code = "unsupported_grant_type"
    title = "Unsupported grant type"


class InvalidScopeError(OAuthError):
    """The requested scope is malformed or exceeds what was granted (RFC 6749 §5.2)."""

    code = "invalid_scope"
    title = "Invalid scope"


class ConfigurationError(TenantAuthError):
    """Settings are missing or invalid; ``problems`` lists every one at once."""

    code = "configuration"
    title = "Invalid configuration"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
