"""Row <-> Tenant mapping shared by the SQL adapters (columns in one order everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from tenantauth.domain.models import (
    KeyRecord,
    SealedSecret,
    StoredTenant,
    Tenant,
    TenantKey,
    TenantStatus,
    VerificationState,
    decode_keys,
)
from tenantauth.storage.accounts import Dialect

TENANT_COLUMNS = (
    "id, name, status, key_version, generation, access_token_ttl, max_token_ttl, "
    "secret_key_id, secret_blob, created_at, updated_at, rotated_at, alg, key_name"
)
KEY_COLUMNS = (
    "t.id, t.generation, t.status, t.secret_key_id, t.secret_blob, t.key_version, t.alg, t.key_name"
)
_UPDATE_COLUMNS = TENANT_COLUMNS.split(", ", 1)[1]
#: A tenant's other keys (``tenant_keys``) as one column of a query on ``tenants t``: each
#: adapter's ``Dialect.other_keys`` aggregate, so a tenant and all its keys are one row of
#: one statement (one snapshot: docs/design.md, "Key lifecycle").
OTHER_KEYS = "<<OTHER_KEYS>>"
#: The parts of one key in ``models.encode_keys`` order, to be joined by ':' (each dialect
#: spells the blob's hex, the joining and the aggregate).
OTHER_KEY_PARTS = ("k.key_name", "k.alg", "k.secret_key_id", "{hex}", "k.state", "k.at")


def other_keys_sql(aggregate: str, hex_blob: str) -> str:
    """``Dialect.other_keys`` of a dialect whose ``aggregate(text, ',')`` concatenates rows
    and whose ``hex_blob`` spells the blob in hex (``||`` joins text in both dialects)."""
    key = " || ':' || ".join(OTHER_KEY_PARTS).replace("{hex}", hex_blob)
    return f"(SELECT {aggregate}({key}, ',') FROM tenant_keys k WHERE k.tenant_id = t.id)"  # noqa: S608 - constants only


_TENANT_SELECT = ", ".join(f"t.{c}" for c in TENANT_COLUMNS.split(", ")) + f", {OTHER_KEYS}"

# Statement templates shared by the SQL adapters: "{}" is a placeholder, which each adapter
# renders in its own style with ``Dialect.sql`` (the only difference between them).
SELECT_TENANT = f"SELECT {_TENANT_SELECT} FROM tenants t WHERE t.id = {{}}"  # noqa: S608 - constants only
SELECT_KEY = f"SELECT {KEY_COLUMNS}, {OTHER_KEYS} FROM tenants t WHERE t.id = {{}}"  # noqa: S608
LIST_TENANTS = (
    f"SELECT {_TENANT_SELECT} FROM tenants t "  # noqa: S608
    "WHERE t.status <> 'deleted' AND t.id > {} ORDER BY t.id LIMIT {}"
)
LIST_TENANT_IDS = "SELECT id FROM tenants WHERE status <> 'deleted' LIMIT {}"
INSERT_TENANT = f"INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ({', '.join(['{}'] * 14)})"  # noqa: S608
UPDATE_TENANT = (
    f"UPDATE tenants SET ({_UPDATE_COLUMNS}) = ({', '.join(['{}'] * 13)}) WHERE id = {{}}"  # noqa: S608
)
# The verifier's miss path: tenant, subject version and jti mark in one round trip.
LOAD_STATE = (
    f"SELECT {KEY_COLUMNS}, {OTHER_KEYS}, "  # noqa: S608
    "(SELECT version FROM subject_revocations s WHERE s.tenant_id = t.id AND s.subject = {}), "
    "EXISTS (SELECT 1 FROM revoked_jtis j WHERE j.tenant_id = t.id AND j.jti = {}) "
    "FROM tenants t WHERE t.id = {}"
)
LOAD_SUBJECTS = (
    "SELECT subject, version, revoked_at FROM subject_revocations "
    "WHERE tenant_id = {} AND revoked_at >= {}"
)
LOAD_JTIS = "SELECT jti, expires_at FROM revoked_jtis WHERE tenant_id = {} AND expires_at > {}"
# Warming a worker's memory: tenants in id order a page at a time (keyset pagination), then
# the live revocations of exactly that id range (tenant_id > after AND tenant_id <= last).
PAGE_KEYS = (
    f"SELECT {KEY_COLUMNS}, {OTHER_KEYS} FROM tenants t "  # noqa: S608
    "WHERE t.status <> 'deleted' AND t.id > {} ORDER BY t.id LIMIT {}"
)
PAGE_SUBJECTS = (
    "SELECT tenant_id, subject, version, revoked_at FROM subject_revocations "
    "WHERE tenant_id > {} AND tenant_id <= {} AND revoked_at >= {}"
)
PAGE_JTIS = (
    "SELECT tenant_id, jti, expires_at FROM revoked_jtis "
    "WHERE tenant_id > {} AND tenant_id <= {} AND expires_at > {}"
)


def tenant_from_row(row: tuple[Any, ...]) -> Tenant:
    """Build a Tenant from a row selected with ``TENANT_COLUMNS``."""
    (tid, name, status, key_version, generation, access_ttl, max_ttl, key_id, blob, *rest) = row
    *times, alg, key_name = rest
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
        alg=alg,
        key_name=key_name,
    )


def tenant_with_keys_from_row(row: tuple[Any, ...]) -> Tenant:
    """Build a Tenant, its other keys included, from a row of ``SELECT_TENANT`` or
    ``LIST_TENANTS`` (``TENANT_COLUMNS`` then ``OTHER_KEYS``)."""
    *columns, others = row
    return replace(tenant_from_row(tuple(columns)), others=decode_keys(others))


def key_record_from_row(row: tuple[Any, ...]) -> KeyRecord:
    """Build a KeyRecord from a row selected with ``KEY_COLUMNS`` then ``OTHER_KEYS``."""
    tid, generation, status, key_id, blob, key_version, alg, key_name, others = row
    sealed = SealedSecret(key_id, bytes(blob)) if blob is not None else None
    return KeyRecord(
        tid,
        generation,
        TenantStatus(status),
        sealed,
        key_version,
        alg,
        key_name,
        decode_keys(others),
    )


def key_params(tenant_id: str, key: TenantKey, created_at: Any) -> tuple[Any, ...]:
    """The values of ``INSERT_KEY`` for ``key`` of ``tenant_id``."""
    sealed = key.sealed
    return (
        tenant_id,
        key.name,
        key.alg,
        sealed.key_id,
        sealed.blob,
        key.state.value,
        key.at,
        created_at,
    )


def read_snapshot_page(
    fetch: Callable[[str, tuple[Any, ...]], list[Any]],
    statements: tuple[str, str, str],
    after: str,
    limit: int,
    *,
    revoked_since: int,
    expiring_after: int,
) -> list[StoredTenant]:
    """``Storage.load_snapshot_page`` on ``fetch`` (run a statement, return its rows) with
    the adapter's rendering of ``PAGE_KEYS``, ``PAGE_SUBJECTS`` and ``PAGE_JTIS``."""
    page_keys, page_subjects, page_jtis = statements
    keys = fetch(page_keys, (after, limit))
    if not keys:
        return []
    last = keys[-1][0]
    subjects = fetch(page_subjects, (after, last, revoked_since))
    jtis = fetch(page_jtis, (after, last, expiring_after))
    return snapshot_page(keys, subjects, jtis)


def snapshot_page(keys: list[Any], subjects: list[Any], jtis: list[Any]) -> list[StoredTenant]:
    """Group a page's rows (``PAGE_KEYS``, ``PAGE_SUBJECTS``, ``PAGE_JTIS``) by tenant, in
    the order of ``keys``: each tenant's key record with its subject revocations and jtis."""
    by_tenant: dict[str, StoredTenant] = {
        row[0]: (key_record_from_row(row), [], []) for row in keys
    }
    for tenant_id, subject, version, revoked_at in subjects:
        if tenant_id in by_tenant:  # a deleted tenant's rows are in the range, not its key
            by_tenant[tenant_id][1].append((subject, version, revoked_at))
    for tenant_id, jti, expires_at in jtis:
        if tenant_id in by_tenant:
            by_tenant[tenant_id][2].append((jti, expires_at))
    return list(by_tenant.values())


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
        t.alg,
        t.key_name,
    )


def _dt(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


#: Verifying from memory (docs/design.md): the one-row declaration, never removed.
MEMORY_DECLARED = "SELECT 1 FROM verify_memory WHERE id = 1"
DECLARE_MEMORY = (
    "INSERT INTO verify_memory (id, declared_at) VALUES (1, {}) ON CONFLICT (id) DO NOTHING"
)

#: Tenant issuers (issue 15): until when a token with the service-wide legacy ``iss`` may
#: have been issued (no row: never).
LEGACY_ISSUER_UNTIL = "SELECT legacy_until FROM legacy_issuer WHERE id = 1"

#: A tenant's other keys inside a change's transaction (``Tx.replace_keys``).
DELETE_KEYS = "DELETE FROM tenant_keys WHERE tenant_id = {}"
INSERT_KEY = (
    "INSERT INTO tenant_keys "
    "(tenant_id, key_name, alg, secret_key_id, secret_blob, state, at, created_at) "
    "VALUES ({}, {}, {}, {}, {}, {}, {}, {})"
)


def replace_keys(
    execute: Callable[[str, tuple[Any, ...]], Any],
    dialect: Dialect,
    tenant_id: str,
    keys: tuple[TenantKey, ...],
    created_at: datetime,
) -> None:
    """``Tx.replace_keys`` on an adapter's ``execute``: delete the tenant's other keys, then
    insert ``keys`` (the caller holds the tenant's row lock, ``apply_change``)."""
    execute(dialect.sql(DELETE_KEYS), (tenant_id,))
    written = created_at.isoformat() if dialect.iso_times else created_at
    for key in keys:
        execute(dialect.sql(INSERT_KEY), key_params(tenant_id, key, written))
