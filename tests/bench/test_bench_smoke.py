"""Smoke test of issue 14's benchmark (bench/): every code path of `make bench` runs, briefly.

Seeding through the admin API, each contender starting (tenantauth serve with and without
verifying from memory, the naive Python and both Node baselines), one 1-second wrk round each,
issuance (both grants), the tables, the doc and the SVG; and the in-process rows for a
fraction of a second. Nothing here asserts on a timing: it only keeps the benchmark from
rotting. Needs wrk, node and npm (`make gateways` installs them).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import common  # noqa: E402 - bench/ is not a package
import report  # noqa: E402
import run  # noqa: E402
import verify_http  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
NAMES = [verify_http.TENANTAUTH, verify_http.TENANTAUTH_GUNICORN, verify_http.TENANTAUTH_EXACT]
NAMES += [verify_http.NAIVE]
NAMES += [verify_http.NODE_STRING, verify_http.NODE_KEYOBJECT]


def test_in_process_rows_run(redis_url: str) -> None:
    """The in-process rows (PyJWT, our verifier, rejections, test client) each measure."""
    rows = run.in_process(0.05, 1, redis_url)
    assert len(rows) == 8
    assert all(rate > 0 for _, rate in rows)
    assert "| pyjwt.decode" in report.in_process_table(rows, 1)


def test_http_comparison_runs_and_reports(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    """Every contender starts, verifies the seeded tokens under wrk without a non-2xx, and the
    table, the doc and the chart name each of them."""
    if shutil.which("wrk") is None:
        pytest.fail("`wrk` not found: `make gateways` installs it (Debian)", pytrace=False)
    cfg = verify_http.Settings(tmp_path, seconds=1, runs=1, warm_seconds=1, tenants=3)
    # The baselines' secrets go to a DB of their own, flushed after: the worker's DB is
    # emptied only of tenantauth:* keys between tests, and the next test checks its keys.
    with common.claimed_redis() as baseline_url:
        rows, issued = verify_http.compare(cfg, pg_url, redis_url, baseline_url)
    assert [row["name"] for row in rows] == NAMES
    assert all(row["non_2xx"] == 0 and row["requests"] > 0 for row in rows)
    assert [row["name"] for row in issued] == ["client_credentials", "password"]
    assert all(row["non_2xx"] == 0 for row in issued)
    meta = run.describe(run.parse_args(["--quick"]), cfg, run.common.machine(), report.today())
    doc = report.document(rows, issued, [("pyjwt.decode", 1.0)], meta)
    chart = report.svg(rows, "caption")
    for name in NAMES:
        assert f"| {name} |" in doc
        assert f">{name}</text>" in chart
    assert "wrk shares the cores" in doc
    assert "| `password` |" in doc
