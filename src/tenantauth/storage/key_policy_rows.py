"""Scheduled rollover policies inside a transaction (``tx.key_policies``), shared by both SQL
adapters through the same ``Dialect`` as the account repositories."""

from __future__ import annotations

from datetime import datetime

from tenantauth.domain.models import KeyPolicy
from tenantauth.storage.accounts import Rows


class KeyPolicyRows(Rows):
    """One policy per tenant at most (docs/design.md, "Scheduled rollover")."""

    _table = "key_policies"

    def get(self, tenant_id: str) -> KeyPolicy | None:
        """The tenant's policy, or None."""
        row = self._one(
            "SELECT tenant_id, every, publish_ahead, grace FROM key_policies WHERE tenant_id = {}",
            (tenant_id,),
        )
        return KeyPolicy(*row) if row else None

    def put(self, policy: KeyPolicy, updated_at: datetime) -> None:
        """Set the tenant's policy, replacing any."""
        self._conn.execute(
            self._d.sql(
                "INSERT INTO key_policies (tenant_id, every, publish_ahead, grace, updated_at) "
                "VALUES ({}, {}, {}, {}, {}) ON CONFLICT (tenant_id) DO UPDATE SET "
                "every = excluded.every, publish_ahead = excluded.publish_ahead, "
                "grace = excluded.grace, updated_at = excluded.updated_at"
            ),
            (
                policy.tenant_id,
                policy.every,
                policy.publish_ahead,
                policy.grace,
                self._time(updated_at),
            ),
        )

    def page(self, after: str, limit: int) -> list[KeyPolicy]:
        """Up to ``limit`` policies of tenants with ids above ``after``, in id order."""
        rows = self._all(
            "SELECT tenant_id, every, publish_ahead, grace FROM key_policies "
            "WHERE tenant_id > {} ORDER BY tenant_id LIMIT {}",
            (after, limit),
        )
        return [KeyPolicy(*row) for row in rows]
