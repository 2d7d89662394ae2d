"""Building domain objects for contract tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.models import Tenant, TenantStatus
from tests.support import MASTER_KEY, NOW

KEYRING = MasterKeyring(MASTER_KEY)
WHEN = datetime.fromtimestamp(NOW, UTC)


def tenant(tenant_id: str = "acme", **changes: object) -> Tenant:
    """Return a live tenant row with a sealed random secret."""
    base = Tenant(
        id=tenant_id,
        name=tenant_id.title(),
        status=TenantStatus.ACTIVE,
        key_version=1,
        generation=1,
        access_token_ttl=900,
        max_token_ttl=3600,
        created_at=WHEN,
        updated_at=WHEN,
        rotated_at=WHEN,
        sealed_secret=KEYRING.seal(tenant_id, bytes(32)),
    )
    return replace(base, **changes)  # type: ignore[arg-type]
