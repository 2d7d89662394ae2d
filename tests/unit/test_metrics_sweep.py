"""The /metrics server drops the live gauges of workers that exited, whatever the HTTP server
(granian has no worker-exit hook): src/tenantauth/observability/exposition.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tenantauth.observability.exposition import (
    MULTIPROC_ENV,
    LiveOnlyCollector,
    sweep_dead_workers,
)

#: A worker: writes a livesum gauge (2) and a counter (1), says so, then waits for stdin.
WORKER = """
from prometheus_client import Counter, Gauge
Gauge("pool_max", "live", multiprocess_mode="livesum").set(2)
Counter("requests", "total").inc()
print("ready", flush=True)
input()
"""


def start_worker(directory: Path) -> subprocess.Popen[str]:
    """Start a worker process writing to ``directory``; return once it wrote its values."""
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """Let the worker exit and reap it."""
    proc.communicate("\n", timeout=10)


@pytest.fixture
def workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[subprocess.Popen[str]]]:
    """Two worker processes writing to a fresh multiprocess directory named in the
    environment; any still running at teardown is stopped."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    procs = [start_worker(tmp_path), start_worker(tmp_path)]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            stop(proc)


def scrape() -> dict[str, float]:
    """Return the summed samples the /metrics server's collector gives now."""
    collector = LiveOnlyCollector(MultiProcessCollector(None))
    return {s.name: s.value for m in collector.collect() for s in m.samples}


def test_an_exited_worker_stops_counting_in_live_gauges(
    workers: list[subprocess.Popen[str]],
) -> None:
    """Once a worker exited, a scrape sums the live gauge over the running worker only;
    the counter keeps the exited worker's total."""
    assert scrape()["pool_max"] == 4
    stop(workers[0])
    samples = scrape()
    assert samples["pool_max"] == 2
    assert samples["requests_total"] == 2


def test_running_workers_are_kept(workers: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    """The sweep drops nothing while every worker runs, and names the pid of one that exited."""
    assert sweep_dead_workers(tmp_path) == []
    stop(workers[1])
    assert sweep_dead_workers(tmp_path) == [workers[1].pid]
    assert sweep_dead_workers(tmp_path) == []
