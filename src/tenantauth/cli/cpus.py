"""How many CPUs this process may use, container limits included, for the worker count.

``os.cpu_count()`` reports the host's cores, not a container's CPU limit: a pod limited to one
CPU on a 64-core node would start 64 workers that the kernel throttles in turn. The limit is the
cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up;
the affinity mask (``taskset``, cpusets) bounds it too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cpus(cgroup: Path = CGROUP) -> int:
    """Return the CPUs this process may use: the smaller of its affinity mask and its cgroup
    quota rounded up; at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_quota(cgroup: Path = CGROUP) -> float | None:
    """Return the cgroup CPU quota in CPUs (``1.5`` for 150000/100000), or None when there is
    none ("max", -1) or no cgroup file can be read."""
    v2 = _read(cgroup / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _ratio(quota, period or "100000")
    quota_v1 = _read(cgroup / "cpu" / "cpu.cfs_quota_us") or _read(cgroup / "cpu.cfs_quota_us")
    period_v1 = _read(cgroup / "cpu" / "cpu.cfs_period_us") or _read(cgroup / "cpu.cfs_period_us")
    if quota_v1 is None or period_v1 is None:
        return None
    return _ratio(quota_v1, period_v1)


def _ratio(quota: str, period: str) -> float | None:
    if quota in ("max", "-1"):
        return None
    try:
        value, per = int(quota), int(period)
    except ValueError:
        return None
    return value / per if value > 0 and per > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
