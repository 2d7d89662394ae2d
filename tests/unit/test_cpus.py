"""The worker count's CPU figure: cgroup v2 and v1 quotas, the affinity mask, no quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenantauth.cli.cpus import available_cpus, cgroup_quota


def _v2(root: Path, text: str) -> Path:
    (root / "cpu.max").write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("text", "quota"),
    [("max 100000", None), ("150000 100000", 1.5), ("50000 100000", 0.5), ("200000", 2.0)],
)
def test_cgroup_v2_quota(tmp_path: Path, text: str, quota: float | None) -> None:
    """cpu.max "QUOTA PERIOD" is QUOTA/PERIOD CPUs; "max" is no quota."""
    assert cgroup_quota(_v2(tmp_path, text)) == quota


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    """cfs_quota_us / cfs_period_us (cpu/ subdirectory), and -1 for none."""
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_quota(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota(tmp_path) is None


@pytest.mark.parametrize("text", ["", "garbage here", "0 100000", "100000 0"])
def test_unreadable_or_nonsense_quota_is_none(tmp_path: Path, text: str) -> None:
    """No file, or a value that is no positive quota, means no quota (never a crash)."""
    assert cgroup_quota(tmp_path / "missing") is None
    assert cgroup_quota(_v2(tmp_path, text)) is None


def test_available_cpus_is_the_quota_rounded_up_within_the_affinity(tmp_path: Path) -> None:
    """A quota limits the count (rounded up, at least 1); without one, the affinity mask."""
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(_v2(tmp_path, "50000 100000")) == 1
    assert available_cpus(_v2(tmp_path, f"{affinity * 100000 + 1} 100000")) == affinity
    assert available_cpus(_v2(tmp_path, "max 100000")) == affinity
