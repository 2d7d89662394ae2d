"""The one exception hierarchy of tenantauth-client.

Every error the client raises on purpose is a ``TenantAuthClientError``. Answers of the
server become an ``ApiError`` subclass chosen by HTTP status (the table ``STATUS_ERRORS`` below,
the only place that knows statuses), carrying the RFC 9457 problem members the server sent.

No exception built here ever holds a token, the admin token or a secret: the server never
echoes them in a problem body, and the client builds its messages from the problem members,
the method and the path only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TenantAuthClientError(Exception):
    """Base of every error raised by tenantauth-client."""


class ConfigurationError(TenantAuthClientError, ValueError):
    """The client was set up wrongly (no admin token for an admin call, a bad base URL)."""


class ApiError(TenantAuthClientError):
    """tenantauth answered with an error, or could not be asked.

    Attributes: ``status`` (the HTTP status, ``None`` when no answer came), ``code`` (the
    problem's stable ``code`` slug), ``title``, ``detail`` and ``request_id`` (quote it to the
    operator of tenantauth: its logs carry the reason of the failure).
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        title: str,
        detail: str = "",
        request_id: str | None = None,
    ) -> None:
        """Record the problem members; the message is ``"<status> <code>: <detail>"``."""
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.request_id = request_id
        super().__init__(f"{status or 'no answer'} {code}: {detail or title}")

    @classmethod
    def from_problem(cls, status: int, problem: Mapping[str, Any]) -> ApiError:
        """Return the error for an RFC 9457 problem body (missing members get defaults)."""
        rid = problem.get("request_id")
        return cls(
            status,
            str(problem.get("code") or problem.get("error") or "error"),
            str(problem.get("title") or "Error"),
            str(problem.get("detail") or ""),
            str(rid) if rid is not None else None,
        )


class Unauthorized(ApiError):
    """401: the credential was not accepted (for admin calls: the admin token)."""


class InvalidToken(Unauthorized):
    """401 from ``verify``: the token is invalid, expired, revoked, for another audience or
    not a token at all. The server says no more than that, on purpose (RFC 8725)."""


class BadRequest(ApiError):
    """400, 413, 415, 422 and any other 4xx without a class of its own: the request was
    refused as sent (``detail`` says why). Never retried."""


class PermissionDenied(ApiError):
    """403: the admin credential may not do this (e.g. a tenant admin key, another tenant)."""


class NotFound(ApiError):
    """404: no such tenant, user or client (or a path the server does not know)."""


class Conflict(ApiError):
    """409: the id exists already, or the change conflicts with the current state."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` is the server's ``Retry-After`` in seconds
    (``None`` if it sent none). Never retried by the client: the caller decides."""

    retry_after: int | None = None


class ServiceUnavailable(ApiError):
    """tenantauth could not give an answer: 503 (it fails closed when a dependency is down),
    another 5xx, an unexpected answer, or no answer at all (connection refused, timeout) —
    after the bounded retries. ``status`` is ``None`` when no answer came.

    A 503 with ``code == "change_unconfirmed"`` on an admin change means the change was
    committed but not yet confirmed to every verifier; repeating the same call confirms it.
    """


#: HTTP status -> error class; 4xx not named here are BadRequest, 5xx ServiceUnavailable.
STATUS_ERRORS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """Return the ``ApiError`` subclass for an error status (4xx or 5xx)."""
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return BadRequest if 400 <= status < 500 else ServiceUnavailable
