"""Subject revocation versions and the jti denylist inside a transaction (``tx.revocations``),
shared by both SQL adapters through the same ``Dialect`` as the account repositories."""

from __future__ import annotations

from tenantauth.storage.accounts import Rows


class RevocationRows(Rows):
    """Revocation points and denylisted jtis; every method takes ``tenant_id`` first."""

    _table = "revoked_jtis"

    def subject_version(self, tenant_id: str, subject: str) -> int:
        """Return the subject's revocation version (0 if it was never revoked)."""
        row = self._one(
            "SELECT version FROM subject_revocations WHERE tenant_id = {} AND subject = {}",
            (tenant_id, subject),
        )
        return int(row[0]) if row else 0

    def bump_subject(self, tenant_id: str, subject: str, revoked_at: int) -> int:
        """Raise the subject's revocation version by one (creating it at 1); return it.

        Concurrent bumps of one subject serialise on its row (the upsert locks it).
        """
        row = self._one(
            "INSERT INTO subject_revocations (tenant_id, subject, version, revoked_at) "
            "VALUES ({}, {}, 1, {}) ON CONFLICT (tenant_id, subject) DO UPDATE "
            "SET version = subject_revocations.version + 1, revoked_at = excluded.revoked_at "
            "RETURNING version",
            (tenant_id, subject, revoked_at),
        )
        return int(row[0])

    def revoke_jti(self, tenant_id: str, jti: str, expires_at: int, revoked_at: int) -> None:
        """Denylist ``jti`` until ``expires_at`` (idempotent)."""
        self._conn.execute(
            self._d.sql(
                "INSERT INTO revoked_jtis (tenant_id, jti, expires_at, revoked_at) "
                "VALUES ({}, {}, {}, {}) ON CONFLICT (tenant_id, jti) DO NOTHING"
            ),
            (tenant_id, jti, expires_at, revoked_at),
        )
