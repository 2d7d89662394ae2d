"""Smoke test of bench/algorithms.py (`make bench-algorithms`): every path runs, briefly.

Two algorithms (HS256 and one key pair) instead of four, a few tokens each: seeding, the
in-process kinds with their signature counts, `tenantauth serve` answering one 1-second wrk
run of each workload, and the doc. Nothing here asserts on a timing: it only keeps the
benchmark from rotting. Needs wrk (`make gateways` installs it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import algorithms  # noqa: E402 - bench/ is not a package
import algorithms_report  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_algorithms_measure_and_report(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    """Each algorithm's in-process kinds and HTTP workloads measure without a non-2xx, a
    repeated token's signature is checked no more, and the doc has a row of each."""
    if shutil.which("wrk") is None:
        pytest.fail("`wrk` not found: `make gateways` installs it (Debian)", pytrace=False)
    cfg = algorithms.Config(
        tmp_path, algs=("HS256", "EdDSA"), runs=1, duration=1, warm_seconds=0, distinct=20
    )
    cfg.in_process_runs, cfg.calls, cfg.first_sight = 1, 50, 20
    results = algorithms.measure(cfg, pg_url, redis_url)
    for alg in cfg.algs:
        assert results["in_process"]["checks"][alg]["warm"] == (0, 50)
    assert [(r["workload"], r["alg"]) for r in results["http"]] == [
        (workload, alg) for alg in cfg.algs for workload in algorithms.WORKLOADS
    ]
    assert all(r["non_2xx"] == 0 and r["requests"] > 0 for r in results["http"])
    meta = algorithms_report.meta_start("")
    meta = algorithms_report.meta_end(meta, {k: v for k, v in vars(cfg).items() if k != "tmp"})
    doc = algorithms_report.document(results, meta)
    for alg in cfg.algs:
        assert f"| {alg} |" in doc
        assert f"| first sight | {alg} |" in doc
