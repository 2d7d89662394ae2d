"""Helpers the benchmarks share: a claimed Redis DB, running ``wrk`` and reading its report.

``claimed_redis`` takes a free Redis DB the way the test suite does (tests/conftest.py: one
atomic ``SET NX`` of the run lock in the candidate DB), so a concurrent test run is never
flushed. ``wrk`` runs ``wrk --latency`` and parses its report, including the counts of
non-2xx responses and socket errors, which the callers must check.
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from tests.support import RUN_LOCK, redis_db_url

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@contextmanager
def claimed_redis() -> Iterator[str]:
    """Claim a free Redis DB as the test suite does (tests/conftest.py); flush it after."""
    run_id = f"bench-{os.getpid()}-{secrets.token_hex(4)}"
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(redis_db_url(db), socket_timeout=5)
        if client.set(RUN_LOCK, run_id, nx=True, ex=3600):
            try:
                yield redis_db_url(db)
            finally:
                if client.get(RUN_LOCK) == run_id.encode():
                    client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError("no free Redis DB among 1..15")


def wrk(
    url: str,
    seconds: float,
    *,
    threads: int = 2,
    connections: int = 32,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
    timeout: float = 2.0,
    workers: Sequence[int] = (),
) -> dict[str, Any]:
    """One ``wrk -t{threads} -c{connections} -d{seconds}s --latency`` run at ``url`` (wrk takes
    whole seconds: ``seconds`` is rounded, at least 1). A request slower than ``timeout``
    seconds counts as a socket error (timeout), not in the latencies.

    Returns req/s, p50/p90/p99 in ms, the request count, and the counts of non-2xx (or 3xx)
    responses and socket errors (0 when wrk printed none); with ``workers`` (server worker
    pids), ``split``: the CPU seconds each spent during the run, and ``lopsided``: 1 if one
    did under two thirds of its even share (``lopsided``), else 0. Raises RuntimeError with wrk's
    output if it fails, AssertionError if its report cannot be read.
    """
    duration = max(1, round(seconds))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    argv.append(f"--timeout={timeout:g}s")
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    with worker_split(workers) as split:
        done = subprocess.run(
            [*argv, url], capture_output=True, text=True, check=False, timeout=duration + 30
        )
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return {**parse_wrk(done.stdout), **split}


@contextmanager
def worker_split(pids: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Measure the block: the dict yielded holds, once it ends, ``split`` (the CPU seconds
    each of ``pids`` spent in it) and ``lopsided`` (1 or 0, see ``lopsided``); nothing
    without ``pids``."""
    before = process_cpu(pids)
    found: dict[str, Any] = {}
    yield found
    if pids:
        after = process_cpu(pids)
        found["split"] = [after[pid] - before[pid] for pid in pids]
        found["lopsided"] = int(lopsided(found["split"]))


def lopsided(split: Sequence[float]) -> bool:
    """Whether one worker did less than two thirds of its even share of a run's work (its CPU
    seconds; with two workers, under a third of the whole): granian's workers share one
    accept queue, and now and then one accepts every connection of a burst (docs/design.md,
    "One accept queue, and its price")."""
    return len(split) > 1 and min(split) < sum(split) / len(split) * 2 / 3


def parse_wrk(out: str) -> dict[str, float]:
    """Read req/s, latency percentiles, requests, non-2xx and socket errors from wrk's report."""

    def latency(pct: str) -> float:
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert found is not None, out
        return float(found[1]) * _UNITS[found[2]]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ", out, re.MULTILINE)
    assert rps is not None and total is not None, out
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps[1]),
        "p50_ms": latency("50"),
        "p90_ms": latency("90"),
        "p99_ms": latency("99"),
        "requests": float(total[1]),
        "non_2xx": float(non_2xx[1]) if non_2xx else 0.0,
        "socket_errors": float(sum(int(n) for n in errors.groups())) if errors else 0.0,
    }


def rotating_script(
    path: Path, tokens: Sequence[str], route: str = "/v1/verify", *, stride: int = 37
) -> Path:
    """Write a wrk Lua script sending GET ``route`` with each of ``tokens`` in turn (wrk
    thread n starts at offset n * ``stride``: with ``len(tokens) // threads``, the threads
    send a token far apart, not 37 requests apart); return ``path``."""
    quoted = ",\n".join(f'  "{token}"' for token in tokens)
    path.write_text(
        f"local tokens = {{\n{quoted}\n}}\n"
        "local i = 0\n"
        "function setup(thread)\n"
        "  i = i + 1\n"
        f"  thread:set('offset', i * {stride})\n"
        "end\n"
        "function init(args)\n"
        "  i = offset or 0\n"
        "end\n"
        "function request()\n"
        "  i = i % #tokens + 1\n"
        f'  return wrk.format("GET", "{route}", {{["Authorization"] = "Bearer " .. tokens[i]}})\n'
        "end\n",
        encoding="ascii",
    )
    return path


def stats(values: list[float]) -> dict[str, float]:
    """Median, min, max and the quartiles of ``values``."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values * 3)
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": q1,
        "q3": q3,
    }


def machine() -> dict[str, Any]:
    """Describe this machine: cores, CPU model (/proc/cpuinfo), load average, kernel."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "loadavg": os.getloadavg(),
        "kernel": os.uname().release,
    }


def process_cpu(pids: Sequence[int]) -> dict[int, float]:
    """Return the CPU seconds (user + system) each of ``pids`` has used (from /proc)."""
    used = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
        used[pid] = ticks / os.sysconf("SC_CLK_TCK")
    return used
