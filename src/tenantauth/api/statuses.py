"""The only table from error class to HTTP status (RFC 9110 §15), resolved through the MRO.

Stdlib only: ``api.problems`` answers with it, and the CLI records in the audit log the status
the API would have answered, without loading the web framework.
"""

from __future__ import annotations

from tenantauth import errors

#: Error class -> HTTP status, resolved through the MRO (most specific class wins).
STATUS_BY_ERROR: dict[type[errors.TenantAuthError], int] = {
    errors.MalformedRequestError: 400,
    errors.OAuthError: 400,  # RFC 6749 §5.2
    errors.InvalidClientError: 401,  # RFC 6749 §5.2: always 401, with WWW-Authenticate
    errors.UnsupportedMediaTypeError: 415,  # RFC 9110 §15.5.16
    errors.InvalidRequestError: 422,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.RateLimitedError: 429,
    errors.DependencyUnavailableError: 503,
    errors.TenantAuthError: 500,
}


def status_for(exc: errors.TenantAuthError) -> int:
    """Return the HTTP status of an error (first match along its MRO)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500
