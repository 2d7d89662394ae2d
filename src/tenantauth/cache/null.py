"""NullCache: no shared cache (embedded mode). Every lookup reads storage, which is correct
by construction; fences still hand out increasing generations."""

from __future__ import annotations

from tenantauth.domain.models import CacheRead, KeyRecord, Revocations


class NullCache:
    """A cache that never holds anything."""

    def get(self, tenant_id: str) -> KeyRecord | None:
        """Always a miss."""
        return None

    def get_state(self, tenant_id: str, subject: str, jti: str) -> CacheRead:
        """Always a miss."""
        return CacheRead(None)

    def claim(self, tenant_id: str) -> str:
        """No cache to vouch for anything: ""."""
        return ""

    def directory(self) -> str:
        """No cache to vouch for a directory: ""."""
        return ""

    def renew_directory(self) -> None:
        """No directory to renew."""

    def fill(
        self,
        record: KeyRecord,
        ttl_seconds: float,
        revocations: Revocations | None = None,
        *,
        ticket: str,
    ) -> bool:
        """Store nothing; return False."""
        return False

    def revoke_subject(self, tenant_id: str, subject: str, version: int, ttl_seconds: int) -> None:
        """Nothing cached, so storage alone answers."""

    def revoke_jti(self, tenant_id: str, jti: str, ttl_seconds: int) -> None:
        """Nothing cached, so storage alone answers."""

    def fence(self, tenant_id: str, stored_generation: int) -> int:
        """Return ``stored_generation + 1``: nothing is cached, so nothing needs barring."""
        return stored_generation + 1

    def seal(self, tenant_id: str, generation: int) -> None:
        """Nothing cached, nothing to bar."""

    def ping(self) -> None:
        """Nothing to reach."""

    def eviction_policy(self) -> str:
        """Return "": there is no server to evict anything."""
        return ""

    def close(self) -> None:
        """Nothing to release."""
