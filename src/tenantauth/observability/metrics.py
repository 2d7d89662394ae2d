"""The metrics tenantauth exports, on prometheus_client (docs/observability.md lists them).

``PrometheusTelemetry`` implements the domain's ``Telemetry`` port and the HTTP layer's
request and verify counts. Under gunicorn every worker writes its values to memory-mapped files
in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up by
``observability.exposition`` before any worker starts) and the master serves their sum on the
metrics port; in a single process (tests) the values live in the registry given.

Every label value comes from a fixed set (route templates, statuses, reason categories, audit
actions): never a tenant id, subject, client or token, so no series can be created at will.
The hot path takes a label child from a dict instead of ``labels()``, which locks and
validates (0.4 µs against 2.2 µs per call, docs/design.md "Metrics and request logs"), and
what every request counts (requests, durations, verifications, cache reads, dependency calls)
goes through a ``Tally``, folded into the values every 0.1 s (observability/tally.py).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tenantauth import __version__
from tenantauth.domain.telemetry import CacheOutcome, Dependency, RegisterReason, WaitOutcome
from tenantauth.observability.tally import FoldFirst, Tally

#: Request latency buckets (seconds): a warm verify is ~0.3 ms, p99 targets are 10 ms,
#: a password grant is ~50 ms, and anything near the 5 s dependency timeout is an outage.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: Dependency call buckets: a Redis round trip is 50-100 µs on loopback, a query ~0.5 ms.
CALL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1, 5)
#: A change's wait for the workers' acknowledgements: ~1-5 ms when all answer, up to the
#: lease (2 s) when one is stopped, 6 s (3 leases) when it gives up.
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 6)
#: Warming a worker's memory: milliseconds for a few tenants, seconds for 100,000.
WARM_BUCKETS = (0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _Children:
    """Label children of one metric, memoised by their label values (a bounded set)."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._metric.labels(*values)
        return child


class PrometheusTelemetry:
    """Telemetry on prometheus_client metrics registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create every metric (so each appears in /metrics from the start)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self._tally = Tally()
        self.registry.register(FoldFirst(self._tally))  # first: a read folds, then collects
        self._last_up: dict[str, bool] = {}  # per worker: write dependency_up on changes only
        self._define_http()
        self._define_cache()
        self._define_dependencies()
        self._define_state()
        self._define_memory()
        self._info.labels(__version__).set(1)
        self._touch_children()

    # ------------------------------------------------------------------ definitions

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, mode: str, labels: tuple[str, ...] = ()) -> Any:
        # mode: how the master combines the workers' values (prometheus_client multiprocess).
        return Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode)  # type: ignore[arg-type]

    def _define_http(self) -> None:
        self._requests = _Children(
            self._counter(
                "tenantauth_http_requests",
                "HTTP requests answered, by route template, method and status.",
                ("route", "method", "status"),
            )
        )
        self._durations = _Children(
            Histogram(
                "tenantauth_http_request_duration_seconds",
                "Time from the request reaching Flask to its response, by route and method.",
                ("route", "method"),
                buckets=REQUEST_BUCKETS,
                registry=self.registry,
            )
        )
        self._verifies = _Children(
            self._counter(
                "tenantauth_verify",
                "Token verifications by endpoint, outcome and reason category "
                "(reason is 'none' unless rejected).",
                ("endpoint", "outcome", "reason"),
            )
        )
        self._dropped = self._counter(
            "tenantauth_log_lines_dropped",
            "Request log lines dropped because the log writer fell behind.",
        )

    def _define_cache(self) -> None:
        self._cache_reads = _Children(
            self._counter(
                "tenantauth_cache_reads",
                "Verification state lookups: memory (this worker's, no I/O), hit (Redis), miss "
                "(read from the database), ruled_out (unknown tenant, no read) or unavailable "
                "(cache down, read from the database).",
                ("outcome",),
            )
        )
        self._fills = _Children(
            self._counter(
                "tenantauth_cache_fills",
                "Cache fills offered: stored, or refused by a fence (a change raced the read).",
                ("result",),
            )
        )
        self._breaker_open = self._gauge(
            "tenantauth_cache_breaker_open",
            "1 while a worker's Redis circuit breaker is open (reads go to the database).",
            "livemax",
        )
        self._breaker_trips = self._counter(
            "tenantauth_cache_breaker_trips", "Times a Redis circuit breaker opened."
        )
        self._directory_size = self._gauge(
            "tenantauth_tenant_directory_size",
            "Tenant ids in the directory that rules out unknown tenants (-1: over its limit).",
            "livemax",
        )
        self._directory_loads = self._counter(
            "tenantauth_tenant_directory_loads", "Times the tenant directory was read again."
        )

    def _define_dependencies(self) -> None:
        self._calls = _Children(
            Histogram(
                "tenantauth_dependency_call_duration_seconds",
                "Duration of each call to the database or the cache.",
                ("dependency",),
                buckets=CALL_BUCKETS,
                registry=self.registry,
            )
        )
        self._errors = _Children(
            self._counter(
                "tenantauth_dependency_errors",
                "Calls to the database or the cache that failed (outages, timeouts).",
                ("dependency",),
            )
        )
        self._up = _Children(
            self._gauge(
                "tenantauth_dependency_up",
                "1 if the dependency answered the last readiness probe or call, else 0.",
                "livemostrecent",
                ("dependency",),
            )
        )
        self._pool = _Children(
            self._gauge(
                "tenantauth_db_pool_connections",
                "Database connections of all workers, in use or idle.",
                "livesum",
                ("state",),
            )
        )
        self._pool_waiting = self._gauge(
            "tenantauth_db_pool_waiting", "Requests waiting for a database connection.", "livesum"
        )
        self._pool_max = self._gauge(
            "tenantauth_db_pool_max", "Most database connections all workers may open.", "livesum"
        )

    def _define_state(self) -> None:
        self._changes = _Children(
            self._counter(
                "tenantauth_changes",
                "Admin actions recorded in the audit log, by action and outcome "
                "('success' or the HTTP status).",
                ("action", "outcome"),
            )
        )
        self._unconfirmed = self._counter(
            "tenantauth_changes_unconfirmed",
            "Changes committed but not confirmed to the cache (503 change_unconfirmed): "
            "verifiers may still accept what they revoked until the call is repeated.",
        )
        self._audit_head = self._gauge(
            "tenantauth_audit_head_seq",
            "Sequence number of the newest audit entry this replica wrote (the head's hash "
            "is in the 'audit head' log line).",
            "max",
        )
        self._info = self._gauge(
            "tenantauth_build_info", "Always 1; the version is a label.", "livemax", ("version",)
        )

    def _define_memory(self) -> None:
        self._waits = _Children(
            Histogram(
                "tenantauth_invalidation_wait_seconds",
                "How long each change waited for the workers that verify from memory, by how "
                "the wait ended: acknowledged (every live lease acknowledged), settled (a "
                "registry younger than one lease was waited out) or unconfirmed (gave up: 503).",
                ("outcome",),
                buckets=WAIT_BUCKETS,
                registry=self.registry,
            )
        )
        self._registrations = _Children(
            self._counter(
                "tenantauth_lease_registrations",
                "Lease registrations of workers that verify from memory, by reason: start, "
                "refused (a renewal came too late or the registry changed) or gap (an "
                "invalidation was lost); each one empties that worker's memory.",
                ("reason",),
            )
        )
        self._warms = Histogram(
            "tenantauth_memory_warm_seconds",
            "How long each warming of a worker's memory took (every tenant loaded a page at "
            'a time after the worker registered; docs/design.md, "Warming memory"). Its '
            "count is the warmings finished.",
            buckets=WARM_BUCKETS,
            registry=self.registry,
        )
        self._warmed = self._counter(
            "tenantauth_memory_warmed_tenants",
            "Tenants loaded into workers' memory by warming.",
        )

    def _touch_children(self) -> None:
        """Create the children whose label values are known in advance, at zero: a series
        that appears only with its first event has no rate() until its second."""
        for dependency in ("database", "cache"):
            self._errors(dependency)
            self._calls(dependency)
        for outcome in ("memory", "hit", "miss", "ruled_out", "unavailable"):
            self._cache_reads(outcome)
        for result in ("stored", "refused"):
            self._fills(result)
        for wait in ("acknowledged", "settled", "unconfirmed"):
            self._waits(wait)
        for reason in ("start", "refused", "gap"):
            self._registrations(reason)

    # ------------------------------------------------------------------ HTTP layer

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self._tally.count(self._requests(route, method, str(status)))
        bucket = bisect_left(REQUEST_BUCKETS, seconds)
        self._tally.observe(self._durations(route, method), bucket, seconds)

    def verify(self, endpoint: str, outcome: str, reason: str) -> None:
        """Count one verification's outcome."""
        self._tally.count(self._verifies(endpoint, outcome, reason))

    def log_dropped(self, count: int) -> None:
        """Count request log lines that could not be written."""
        self._dropped.inc(count)

    # ------------------------------------------------------------------ Telemetry port

    def cache_read(self, outcome: CacheOutcome) -> None:
        """See ``Telemetry.cache_read``."""
        self._tally.count(self._cache_reads(outcome))

    def cache_fill(self, *, stored: bool) -> None:
        """See ``Telemetry.cache_fill``."""
        self._fills("stored" if stored else "refused").inc()

    def directory_loaded(self, size: int | None) -> None:
        """See ``Telemetry.directory_loaded``."""
        self._directory_loads.inc()
        self._directory_size.set(-1 if size is None else size)

    def change(self, action: str, outcome: str) -> None:
        """See ``Telemetry.change``."""
        self._changes(action, outcome).inc()

    def change_unconfirmed(self) -> None:
        """See ``Telemetry.change_unconfirmed``."""
        self._unconfirmed.inc()

    def audit_head(self, seq: int) -> None:
        """See ``Telemetry.audit_head``."""
        self._audit_head.set(seq)

    def dependency_call(self, dependency: Dependency, seconds: float, *, ok: bool) -> None:
        """See ``Telemetry.dependency_call``: a failed call also marks the dependency down,
        the next good one up again (written only on a change of state)."""
        bucket = bisect_left(CALL_BUCKETS, seconds)
        self._tally.observe(self._calls(dependency), bucket, seconds)
        if not ok:
            self._errors(dependency).inc()
        self._mark(dependency, up=ok)

    def dependency_state(self, dependency: Dependency, *, up: bool) -> None:
        """See ``Telemetry.dependency_state`` (always written: probes are rare)."""
        self._up(dependency).set(1 if up else 0)
        self._last_up[dependency] = up

    def invalidation_wait(self, seconds: float, outcome: WaitOutcome) -> None:
        """See ``Telemetry.invalidation_wait``."""
        self._waits(outcome).observe(seconds)

    def lease_registered(self, reason: RegisterReason) -> None:
        """See ``Telemetry.lease_registered``."""
        self._registrations(reason).inc()

    def memory_warmed(self, tenants: int, seconds: float) -> None:
        """See ``Telemetry.memory_warmed``."""
        self._warms.observe(seconds)
        self._warmed.inc(tenants)

    def breaker(self, *, is_open: bool) -> None:
        """See ``Telemetry.breaker``."""
        self._breaker_open.set(1 if is_open else 0)
        if is_open:
            self._breaker_trips.inc()

    def pool(self, *, in_use: int, idle: int, waiting: int, maximum: int) -> None:
        """See ``Telemetry.pool``."""
        self._pool("in_use").set(in_use)
        self._pool("idle").set(idle)
        self._pool_waiting.set(waiting)
        self._pool_max.set(maximum)

    def _mark(self, dependency: Dependency, *, up: bool) -> None:
        if self._last_up.get(dependency) is not up:
            self.dependency_state(dependency, up=up)
