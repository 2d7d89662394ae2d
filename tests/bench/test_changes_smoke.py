"""Smoke test of bench/changes.py (`make bench-changes`): one idle and one loaded round
through both servers, and the doc. Nothing here asserts on a timing: it only keeps the
benchmark from rotting. Needs wrk (`make gateways` installs it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import changes  # noqa: E402 - bench/ is not a package
import scale_load  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_changes_and_probes_run_through_both_servers(tmp_path: Path) -> None:
    """Every change kind and probe is timed through both servers, idle and loaded (a change
    that is not 2xx raises), wrk's verifications all succeed, and the doc has each row."""
    if shutil.which("wrk") is None:
        pytest.fail("`wrk` not found: `make gateways` installs it (Debian)", pytrace=False)
    idle, busy, moved, verify = changes.measure(tmp_path, 1, 1, sent=4, settle=0.5)
    names = (*scale_load.KINDS, *changes.PROBES)
    for timings in (idle, busy):
        assert set(timings) == {(route, name) for route in changes.ROUTES for name in names}
    assert verify["requests"] > 0 and verify["non_2xx"] == 0
    assert moved["admin server"].get("invalidation_wait_count", 0) == len(scale_load.KINDS)
    meta = {"date": "today", "machine": changes.machine(), "load_start": (0, 0, 0)}
    doc = changes.document(idle, busy, moved, verify, {**meta, "load_end": (0, 0, 0)})
    for route in changes.ROUTES:
        assert f"| {route} | **every change** |" in doc
        assert f"| {route} | GET /readyz |" in doc
    assert "| rotate |" in doc and "Reading: through the loaded server" in doc
