"""Row <-> Tenant mapping shared by the SQL adapters (columns in one order everywhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenantauth.domain.models import (
    KeyRecord,
    SealedSecret,
    Tenant,
    TenantStatus,
    VerificationState,
)

TENANT_COLUMNS = (
    "id, name, status, key_version, generation, access_token_ttl, max_token_ttl, "
    "secret_key_id, secret_blob, created_at, updated_at, rotated_at"
)
KEY_COLUMNS = "id, generation, status, secret_key_id, secret_blob"


def tenant_from_row(row: tuple[Any, ...]) -> Tenant:
    """Build a Tenant from a row selected with ``TENANT_COLUMNS``."""
    (tid, name, status, key_version, generation, access_ttl, max_ttl, key_id, blob, *times) = row
    created, updated, rotated = (_dt(t) for t in times)
    return Tenant(
        id=tid,
        name=name,
        status=TenantStatus(status),
        key_version=key_version,
        generation=generation,
        access_token_ttl=access_ttl,
        max_token_ttl=max_ttl,
        created_at=created,
        updated_at=updated,
        rotated_at=rotated,
        sealed_secret=SealedSecret(key_id, bytes(blob)) if blob is not None else None,
    )


def key_record_from_row(row: tuple[Any, ...]) -> KeyRecord:
    """Build a KeyRecord from a row selected with ``KEY_COLUMNS``."""
    tid, generation, status, key_id, blob = row
    sealed = SealedSecret(key_id, bytes(blob)) if blob is not None else None
    return KeyRecord(tid, generation, TenantStatus(status), sealed)


def state_from_row(row: tuple[Any, ...]) -> VerificationState:
    """Build a VerificationState from a row of ``KEY_COLUMNS`` + subject version + jti flag."""
    *key, version, jti_revoked = row
    return VerificationState(key_record_from_row(tuple(key)), int(version or 0), bool(jti_revoked))


def tenant_params(t: Tenant, *, iso_times: bool) -> tuple[Any, ...]:
    """Return the values of ``TENANT_COLUMNS`` for ``t`` (times as ISO text for SQLite)."""
    sealed = t.sealed_secret
    times = (t.created_at, t.updated_at, t.rotated_at)
    return (
        t.id,
        t.name,
        t.status.value,
        t.key_version,
        t.generation,
        t.access_token_ttl,
        t.max_token_ttl,
        sealed.key_id if sealed else None,
        sealed.blob if sealed else None,
        *((x.isoformat() for x in times) if iso_times else times),
    )


def _dt(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
