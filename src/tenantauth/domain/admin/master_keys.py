"""Master-key rotation: re-wrap every tenant secret under the current master key.

The procedure (README, "Master-key rotation"; docs/design.md has the reasoning): every replica
runs with the new key as ``MASTER_KEY`` and the old one in ``MASTER_KEYS_OLD``; then ``rotate``
walks the tenants and re-seals each secret still under an older key, one tenant per short
transaction under the fence protocol (``tenants.rewrap_tenant``), so the service keeps
answering throughout. ``status`` counts the secrets under each key id.

Tenant secrets are *encrypted* and can be re-wrapped. Client secrets and refresh tokens are
*keyed hashes* under subkeys derived from the master key: they cannot be re-wrapped (we never
hold their plaintext), only re-hashed when next presented (``clients.upgrade_secret_hash``;
a refresh token's successor is minted under the current key). So an old key may leave
``MASTER_KEYS_OLD`` only once ``status`` shows no tenant under it AND every client secret was
used or rotated since AND every refresh token issued before has expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tenantauth.domain import tenants
from tenantauth.domain.models import Tenant
from tenantauth.domain.services import Services
from tenantauth.errors import TenantAuthError

#: Tenants per listing page, and so per progress report.
DEFAULT_BATCH = 100
#: What no count can show, said wherever the counts are (status, CLI, docs).
HASHED_CREDENTIALS_NOTE = (
    "Not counted here: client secrets and refresh tokens are keyed hashes under subkeys of "
    "the master key, moved to the current key only when next used. Keep an older key in "
    "MASTER_KEYS_OLD until no tenant secret is under it, every client secret was used or "
    "rotated since the new key was deployed, and REFRESH_TOKEN_TTL has passed since then. "
    "Admin API keys and audit-log entries are keyed by it too (README, Master-key rotation)."
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A tenant whose secret could not be re-wrapped, and why (re-running retries it)."""

    tenant_id: str
    reason: str


@dataclass(slots=True)
class RotationReport:
    """What ``rotate`` did so far: the counts grow as it walks the tenants."""

    current_id: str
    rewrapped: int = 0
    already_current: int = 0
    failed: list[Failure] = field(default_factory=list)

    @property
    def seen(self) -> int:
        """Return how many tenants were looked at."""
        return self.rewrapped + self.already_current + len(self.failed)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Tenant secrets per master key id, and which ids this process has configured.

    ``unknown`` maps ids that are in the database but not configured to their counts: those
    tenants cannot be verified or re-wrapped here (fail closed, 503).
    """

    current_id: str
    older_ids: list[str]
    secrets_by_key: dict[str, int]

    @property
    def unknown(self) -> dict[str, int]:
        """Return the counts under ids that are neither current nor older."""
        configured = {self.current_id, *self.older_ids}
        return {k: n for k, n in self.secrets_by_key.items() if k not in configured}

    @property
    def pending(self) -> int:
        """Return how many tenant secrets are not under the current key yet."""
        return sum(n for k, n in self.secrets_by_key.items() if k != self.current_id)


def rotate(
    svc: Services,
    progress: Callable[[RotationReport], None] | None = None,
    *,
    batch: int = DEFAULT_BATCH,
) -> RotationReport:
    """Re-seal every tenant secret that is not under the current master key.

    Walks live tenants (tombstones hold no secret) in id order, ``batch`` per listing, and
    calls ``progress`` after each batch. Idempotent and resumable: a tenant already under the
    current key is only counted, so re-running after a failure or an interruption finishes
    the job. A tenant that fails (its key is not configured; storage or cache unavailable) is
    recorded with the reason and the walk goes on. Returns the report. Raises
    ``DependencyUnavailableError`` only if the tenants cannot be listed.
    """
    report = RotationReport(svc.keyring.current_id)
    after: str | None = None
    while True:
        with svc.storage.transaction() as tx:
            page = tx.list_tenants(after, batch)
        for tenant in page:
            if set(_sealed_ids(tenant)) <= {report.current_id}:
                report.already_current += 1
            else:
                _rewrap(svc, tenant.id, report)
        if progress is not None and page:
            progress(report)
        if len(page) < batch:
            return report
        after = page[-1].id


def status(svc: Services, *, batch: int = DEFAULT_BATCH) -> KeyStatus:
    """Count live tenants' secrets per master key id (a read-only walk of the tenants).

    Returns the counts with the configured ids. Raises ``DependencyUnavailableError``.
    """
    counts: Counter[str] = Counter()
    after: str | None = None
    while True:
        with svc.storage.transaction() as tx:
            page = tx.list_tenants(after, batch)
        for tenant in page:
            counts.update(_sealed_ids(tenant))
        if len(page) < batch:
            break
        after = page[-1].id
    return KeyStatus(svc.keyring.current_id, svc.keyring.older_ids, dict(counts))


def _sealed_ids(tenant: Tenant) -> list[str]:
    """The master key id each of the tenant's keys is sealed under (its signing key's, then
    its other keys')."""
    return [k.key_id for k in (tenant.sealed_secret, *(o.sealed for o in tenant.others)) if k]


def _rewrap(svc: Services, tenant_id: str, report: RotationReport) -> None:
    """Re-wrap one tenant, counting the outcome; a failure is recorded, not raised."""
    try:
        changed = tenants.rewrap_tenant(svc, tenant_id)
    except TenantAuthError as exc:  # one tenant's failure must not stop the others
        report.failed.append(Failure(tenant_id, exc.detail))
        return
    if changed:
        report.rewrapped += 1
    else:  # re-wrapped (or deleted) by someone else since the listing
        report.already_current += 1
