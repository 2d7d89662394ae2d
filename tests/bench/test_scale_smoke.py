"""Smoke test of bench/scale.py (`make bench-scale`): every phase runs, briefly, on 4 tenants.

Seeding in process, a server with memory off then on, the verify, flood and changes phases
for a second each, and the doc. Nothing here asserts on a timing: it only keeps the benchmark
from rotting. Needs wrk (`make gateways` installs it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import scale  # noqa: E402 - bench/ is not a package
import scale_report  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_scale_phases_run_and_report(tmp_path: Path) -> None:
    """With memory off and on, verify answers every random token, the flood is ruled out
    without database reads, every change succeeds (memory on, through an admin-role server
    too), and the doc has a row of each."""
    if shutil.which("wrk") is None:
        pytest.fail("`wrk` not found: `make gateways` installs it (Debian)", pytrace=False)
    cfg = scale.Config(tmp_path, (4,), seconds=1, warm_seconds=1, changes=1, unknown=1_000)
    results = scale.measure_size(cfg, 4)
    assert [r["memory"] for r in results] == ["off", "on"]
    for r in results:
        assert r["verify"]["requests"] > 0
        assert r["verify"]["non_2xx"] == 0
        assert len(r["verify"]["rss_mib"]) == cfg.workers
        assert r["flood"]["metrics"].get("ruled_out", 0) > 0
        assert r["changes"]["admin_failed"] == []
    assert len(results[1]["verify"]["warmed"]) == cfg.workers  # every worker warmed its memory
    admin = results[1]["changes_admin"]  # memory on: the changes again, through an admin server
    assert admin["admin_failed"] == []
    assert sum(map(len, admin["timings_ms"].values())) == len(admin["timings_ms"])
    meta = {"date": "today", "machine": scale.machine(), "args": "", "config": vars(cfg)}
    doc = scale_report.document(results, {**meta, "loadavg_end": (0.0, 0.0, 0.0)})
    assert "| 4 | off |" in doc
    assert "| 4 | on | same server | rotate |" in doc
    assert "| 4 | on | admin server | rotate |" in doc
