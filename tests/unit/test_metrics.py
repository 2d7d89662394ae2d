"""PrometheusTelemetry: what each event counts, with bounded labels (observability/metrics.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from tenantauth import __version__
from tenantauth.errors import RejectReason
from tenantauth.observability.metrics import PrometheusTelemetry


def _value(metrics: PrometheusTelemetry, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_metric_is_exposed_before_any_event() -> None:
    """A fresh telemetry already exposes each family (so alerts and rate() see zeros, not
    absent series), including the per-dependency errors."""
    metrics = PrometheusTelemetry(CollectorRegistry())
    text = generate_latest(metrics.registry).decode()
    for name in (
        "tenantauth_http_requests_total",
        "tenantauth_verify_total",
        "tenantauth_cache_reads_total",
        "tenantauth_changes_unconfirmed_total",
        "tenantauth_audit_head_seq",
        "tenantauth_db_pool_waiting",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert _value(metrics, "tenantauth_dependency_errors_total", dependency="cache") == 0
    assert _value(metrics, "tenantauth_cache_fills_total", result="refused") == 0
    assert _value(metrics, "tenantauth_build_info", version=__version__) == 1


def test_requests_and_verifications_are_counted_by_their_labels() -> None:
    """A request counts under its route template, method and status, with its duration;
    a verification under its endpoint, outcome and reason."""
    metrics = PrometheusTelemetry(CollectorRegistry())
    metrics.request("/v1/verify", "GET", 401, 0.0004)
    metrics.request("/v1/verify", "GET", 401, 0.02)
    metrics.verify("verify", "rejected", RejectReason.EXPIRED)
    labels = {"route": "/v1/verify", "method": "GET"}
    assert _value(metrics, "tenantauth_http_requests_total", **labels, status="401") == 2
    assert _value(metrics, "tenantauth_http_request_duration_seconds_count", **labels) == 2
    assert (
        _value(metrics, "tenantauth_http_request_duration_seconds_bucket", **labels, le="0.0005")
        == 1
    )
    assert (
        _value(
            metrics,
            "tenantauth_verify_total",
            endpoint="verify",
            outcome="rejected",
            reason="expired",
        )
        == 1
    )


def test_dependency_calls_mark_the_dependency_down_and_up_again() -> None:
    """A failed call counts an error and sets dependency_up to 0; the next good call sets it
    back to 1; the breaker gauge follows open and close, and trips are counted."""
    metrics = PrometheusTelemetry(CollectorRegistry())
    metrics.dependency_call("cache", 0.0001, ok=True)
    assert _value(metrics, "tenantauth_dependency_up", dependency="cache") == 1
    metrics.dependency_call("cache", 0.25, ok=False)
    metrics.breaker(is_open=True)
    assert _value(metrics, "tenantauth_dependency_up", dependency="cache") == 0
    assert _value(metrics, "tenantauth_dependency_errors_total", dependency="cache") == 1
    assert _value(metrics, "tenantauth_cache_breaker_open") == 1
    metrics.dependency_call("cache", 0.0001, ok=True)
    metrics.breaker(is_open=False)
    assert _value(metrics, "tenantauth_dependency_up", dependency="cache") == 1
    assert _value(metrics, "tenantauth_cache_breaker_open") == 0
    assert _value(metrics, "tenantauth_cache_breaker_trips_total") == 1
    assert (
        _value(metrics, "tenantauth_dependency_call_duration_seconds_count", dependency="cache")
        == 3
    )


def test_domain_events_are_counted() -> None:
    """Cache reads, fills, directory loads, changes, unconfirmed changes, the audit head and
    the pool each move their own metric."""
    metrics = PrometheusTelemetry(CollectorRegistry())
    metrics.cache_read("hit")
    metrics.cache_read("ruled_out")
    metrics.cache_fill(stored=False)
    metrics.directory_loaded(None)
    metrics.change("tenant.rotate", "success")
    metrics.change_unconfirmed()
    metrics.audit_head(42)
    metrics.pool(in_use=3, idle=1, waiting=2, maximum=10)
    assert _value(metrics, "tenantauth_cache_reads_total", outcome="hit") == 1
    assert _value(metrics, "tenantauth_cache_reads_total", outcome="ruled_out") == 1
    assert _value(metrics, "tenantauth_cache_fills_total", result="refused") == 1
    assert _value(metrics, "tenantauth_tenant_directory_size") == -1
    assert _value(metrics, "tenantauth_tenant_directory_loads_total") == 1
    assert (
        _value(metrics, "tenantauth_changes_total", action="tenant.rotate", outcome="success") == 1
    )
    assert _value(metrics, "tenantauth_changes_unconfirmed_total") == 1
    assert _value(metrics, "tenantauth_audit_head_seq") == 42
    assert _value(metrics, "tenantauth_db_pool_connections", state="in_use") == 3
    assert _value(metrics, "tenantauth_db_pool_waiting") == 2


def test_reject_reasons_are_a_small_fixed_set() -> None:
    """The reason label takes its values from RejectReason only: few, and none of them
    derived from input."""
    values = {reason.value for reason in RejectReason}
    assert len(values) <= 16
    assert all(value.isidentifier() and value.islower() for value in values)
