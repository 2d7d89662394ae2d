"""tenantauth-client: verify tenantauth tokens from other Python services.

Importing this package needs only urllib3 (never flask): ``tenantauth_client.flask`` is the
optional Flask integration, ``tenantauth_client.wsgi`` the framework-free middleware.
"""

from tenantauth_client.claims import Claims
from tenantauth_client.client import ClientCredentials, TenantAuthClient
from tenantauth_client.errors import (
    ApiError,
    BadRequest,
    ConfigurationError,
    Conflict,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TenantAuthClientError,
    Unauthorized,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "BadRequest",
    "Claims",
    "ClientCredentials",
    "ConfigurationError",
    "Conflict",
    "InvalidToken",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "TenantAuthClient",
    "TenantAuthClientError",
    "Unauthorized",
    "__version__",
]
