"""What the domain and its adapters report for metrics: the ``Telemetry`` port.

The domain says what happened (a cache hit, a refused fill, a committed change); the adapter
(``tenantauth.observability.metrics``) decides how it is counted. Every method must be cheap
and must never raise or block: they run on the verify path. Label values are always from a
small fixed set — never a tenant id, subject or token (issue 13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

#: How a verification found its tenant state: in the shared cache; not there (read from
#: storage); ruled out by the tenant directory (no read at all); or the cache did not answer
#: (read from storage).
CacheOutcome = Literal["memory", "hit", "miss", "ruled_out", "unavailable"]
#: The dependencies, named as /readyz names them.
Dependency = Literal["database", "cache"]
#: How a change's wait for the workers that verify from memory ended (docs/design.md).
WaitOutcome = Literal["acknowledged", "settled", "unconfirmed"]
#: Why a worker registered its lease: first start, renewal refused (lapsed or registry
#: changed), or a gap in the invalidation stream.
RegisterReason = Literal["start", "refused", "gap"]


class Telemetry(Protocol):
    """Receives the events metrics are made of. Implementations never raise."""

    def cache_read(self, outcome: CacheOutcome) -> None:
        """One verification's state lookup ended this way."""
        ...

    def cache_fill(self, *, stored: bool) -> None:
        """A fill was offered to the cache; ``stored`` False when its fence refused it."""
        ...

    def directory_loaded(self, size: int | None) -> None:
        """The tenant directory read the ids again: ``size`` of them (None: over its limit)."""
        ...

    def change(self, action: str, outcome: str) -> None:
        """An admin action was recorded in the audit log (``action`` from a fixed set;
        ``outcome`` is ``success`` or an HTTP status)."""
        ...

    def change_unconfirmed(self) -> None:
        """A committed change could not be confirmed to the cache (the 503
        ``change_unconfirmed``)."""
        ...

    def audit_head(self, seq: int) -> None:
        """The audit chain's head is now entry ``seq``."""
        ...

    def dependency_call(self, dependency: Dependency, seconds: float, *, ok: bool) -> None:
        """One call to a dependency took ``seconds``; ``ok`` False when it failed."""
        ...

    def dependency_state(self, dependency: Dependency, *, up: bool) -> None:
        """A readiness probe found the dependency answering (or not)."""
        ...

    def invalidation_wait(self, seconds: float, outcome: WaitOutcome) -> None:
        """A change waited ``seconds`` for the workers that verify from memory."""
        ...

    def lease_registered(self, reason: RegisterReason) -> None:
        """A worker (re)registered its lease, for ``reason``."""
        ...

    def memory_warmed(self, tenants: int, seconds: float) -> None:
        """A worker finished warming its memory: ``tenants`` loaded in ``seconds``."""
        ...

    def breaker(self, *, is_open: bool) -> None:
        """The cache circuit breaker opened (True) or closed again (False)."""
        ...

    def pool(self, *, in_use: int, idle: int, waiting: int, maximum: int) -> None:
        """The database pool's connections after a checkout was returned."""
        ...


class NullTelemetry:
    """Counts nothing: the CLI, and tests that do not look at metrics."""

    def cache_read(self, outcome: CacheOutcome) -> None:
        """Ignore it."""

    def cache_fill(self, *, stored: bool) -> None:
        """Ignore it."""

    def directory_loaded(self, size: int | None) -> None:
        """Ignore it."""

    def change(self, action: str, outcome: str) -> None:
        """Ignore it."""

    def change_unconfirmed(self) -> None:
        """Ignore it."""

    def audit_head(self, seq: int) -> None:
        """Ignore it."""

    def dependency_call(self, dependency: Dependency, seconds: float, *, ok: bool) -> None:
        """Ignore it."""

    def dependency_state(self, dependency: Dependency, *, up: bool) -> None:
        """Ignore it."""

    def invalidation_wait(self, seconds: float, outcome: WaitOutcome) -> None:
        """Ignore it."""

    def lease_registered(self, reason: RegisterReason) -> None:
        """Ignore it."""

    def memory_warmed(self, tenants: int, seconds: float) -> None:
        """Ignore it."""

    def breaker(self, *, is_open: bool) -> None:
        """Ignore it."""

    def pool(self, *, in_use: int, idle: int, waiting: int, maximum: int) -> None:
        """Ignore it."""


NULL_TELEMETRY: Telemetry = NullTelemetry()


# Not frozen: a frozen dataclass's __init__ sets each of these 12 fields through
# object.__setattr__, 1-2 µs more per request; nothing changes one after it is built.
@dataclass(slots=True)
class RequestFacts:
    """What one answered HTTP request was, for its metrics and its log line.

    Built by the Flask hook (``observability.http``) or by the lean verify path
    (``api.lean_verify``); nothing in it comes from a header or a body except ``request_id``
    (already validated) and ``client``.
    """

    route: str  # the route template, never the path
    method: str
    status: int
    seconds: float
    request_id: str | None
    client: str | None
    verifier: str = ""  # "verify" or "introspect" for a verifying endpoint, else ""
    tenant_id: str | None = None
    reject_kind: str | None = None  # RejectReason of a rejected token
    reject_reason: str | None = None  # its free-text reason (logs only)
    code: str | None = None  # the problem code of an error answer
    introspection_active: bool = True
