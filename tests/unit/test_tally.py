"""Tally: hot-path counts folded into prometheus_client values in bulk (observability/tally.py)."""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tenantauth.observability.metrics import REQUEST_BUCKETS, PrometheusTelemetry
from tenantauth.observability.tally import FoldFirst, Tally, fold_all

DURATIONS = (0.0, 0.0001, 0.0005, 0.0007, 0.001, 0.3, 4.9, 5.0, 7.5, 1e6)


def _histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("d", "durations", ("route",), buckets=REQUEST_BUCKETS, registry=registry)


def test_a_folded_histogram_is_exposed_as_observe_would_expose_it() -> None:
    """Buckets, count and sum: the same exposition as one ``observe`` per value, including
    values on a bound, below the first and above the last (+Inf)."""
    direct, folded = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    child = _histogram(folded).labels("/v1/verify")
    reference = _histogram(direct).labels("/v1/verify")
    for seconds in DURATIONS * 3:
        reference.observe(seconds)
        tally.observe(child, bisect_left(REQUEST_BUCKETS, seconds), seconds)
    tally.fold()
    assert _exposed(folded) == _exposed(direct)
    sums = [r.get_sample_value("d_sum", {"route": "/v1/verify"}) for r in (folded, direct)]
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)  # added in another order


def _exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines but the creation time and the sum."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if not line.startswith(("d_created", "d_sum"))]


def test_counts_from_many_threads_are_all_folded() -> None:
    """Eight threads adding at once lose nothing."""
    registry = CollectorRegistry()
    tally = Tally()
    child = Counter("c", "count", ("k",), registry=registry).labels("x")

    def add(_: int) -> None:
        for _ in range(5_000):
            tally.count(child)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))
    tally.fold()
    assert registry.get_sample_value("c_total", {"k": "x"}) == 40_000


def test_the_fold_thread_folds_within_its_interval() -> None:
    """Without anyone reading, a count reaches the value within a few intervals."""
    registry = CollectorRegistry()
    tally = Tally(interval=0.01)
    child = Counter("c", "count", registry=registry)
    tally.count(child, 3)
    deadline = time.monotonic() + 5
    while registry.get_sample_value("c_total") != 3:
        assert time.monotonic() < deadline, "never folded"
        time.sleep(0.01)


def test_reading_a_registry_folds_first() -> None:
    """``FoldFirst``, registered ahead of the metrics, makes an in-process read exact at
    once (the fold thread's interval is an hour here)."""
    registry = CollectorRegistry()
    tally = Tally(interval=3600)
    registry.register(FoldFirst(tally))
    child = Counter("c", "count", registry=registry)
    tally.count(child, 2)
    assert registry.get_sample_value("c_total") == 2


def test_the_telemetry_counts_through_its_tally_and_reads_exactly() -> None:
    """``PrometheusTelemetry``'s hot counts read back exactly, without waiting."""
    metrics = PrometheusTelemetry(CollectorRegistry())
    for _ in range(3):
        metrics.request("/v1/verify", "GET", 200, 0.0003)
        metrics.cache_read("memory")
    read = metrics.registry.get_sample_value
    assert read("tenantauth_cache_reads_total", {"outcome": "memory"}) == 3
    labels = {"route": "/v1/verify", "method": "GET"}
    assert read("tenantauth_http_request_duration_seconds_count", labels) == 3
    assert read("tenantauth_http_request_duration_seconds_sum", labels) == 0.0003 * 3


def test_a_forked_child_drops_its_parents_pending_counts() -> None:
    """The parent's pending counts are the parent's: a child that folded them would count
    them twice (once in each process's values)."""
    registry = CollectorRegistry()
    tally = Tally(interval=3600)
    child = Counter("c", "count", registry=registry)
    tally.count(child, 5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: fold, report, leave at once
        try:
            tally.count(child, 1)
            tally.fold()
            os.write(write, str(registry.get_sample_value("c_total")).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert reported == "1.0"
    tally.fold()
    assert registry.get_sample_value("c_total") == 5


def test_fold_all_folds_every_tally_of_the_process() -> None:
    """What the servers' worker-exit hooks call: nothing gathered is left behind."""
    registry = CollectorRegistry()
    tallies = [Tally(interval=3600), Tally(interval=3600)]
    child = Counter("c", "count", registry=registry)
    for tally in tallies:
        tally.count(child, 2)
    fold_all()
    assert registry.get_sample_value("c_total") == 4


def test_both_servers_fold_at_worker_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """granian's exit finalizer and gunicorn's worker_exit fold what is gathered: granian's
    workers leave through os._exit, where atexit never runs."""
    from tenantauth import granian_conf, gunicorn_conf  # noqa: PLC0415 - server modules

    for module in (granian_conf, gunicorn_conf):
        monkeypatch.setattr(module.leases, "stop_all", lambda: None)
        monkeypatch.setattr(module.logs, "flush", lambda: None)
    for exit_hook in (granian_conf.worker_exit, lambda: gunicorn_conf.worker_exit(None, None)):
        registry = CollectorRegistry()
        tally = Tally(interval=3600)
        tally.count(Counter("c", "count", registry=registry), 3)
        exit_hook()
        assert registry.get_sample_value("c_total") == 3
