"""A tenant's public keys as a JWK Set (RFC 7517 §5), for verifiers that work offline.

Answered from the state verification reads (worker memory, the shared cache, storage), so a
rotation, suspension or deletion shows here exactly when tenantauth's own verify endpoints
see it. What an offline verifier does with a copy is bounded only by how long it keeps it:
``JWKS_MAX_AGE`` (the ``Cache-Control: max-age`` of the response).
"""

from __future__ import annotations

from typing import Any

from tenantauth.crypto import keypairs
from tenantauth.crypto.jwt import header_kid
from tenantauth.domain.models import TenantStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import JWKS_MAX_AGE, require_tenant_id
from tenantauth.errors import NotFoundError

__all__ = ["JWKS_MAX_AGE", "tenant_jwks"]


def tenant_jwks(svc: Services, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """Return the JWK Set of ``tenant_id``: while it is active, the public keys of its
    key-pair keys that verify now (the signing key, a published next key, retiring keys in
    their grace window); none for a suspended tenant, and never an HS256 secret.

    Raises ``NotFoundError`` for an unknown or deleted tenant, ``DependencyUnavailableError``
    when neither the cache nor storage can answer.
    """
    require_tenant_id(tenant_id)
    keys, state = svc.keys.resolve(tenant_id, "", "")
    if state.record.status in (TenantStatus.ABSENT, TenantStatus.DELETED):
        raise NotFoundError(f"tenant {tenant_id!r} does not exist")
    published = keys.published(svc.clock.now()) if keys is not None else ()
    return {
        "keys": [
            keypairs.public_key_jwk(key.alg, key.material, header_kid(tenant_id, key.name, key.alg))
            for key in published
            if not isinstance(key.material, bytes)
        ]
    }
