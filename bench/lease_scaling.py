"""How a change's wait and Redis's load grow with the number of live lease listeners (issue 14).

Usage: ``make bench-leases`` or ``python bench/lease_scaling.py [--listeners 10,50,100,200,400]
[--procs 4] [--changes 50] [--interval 0.1] [--rest-seconds 10] [--doc docs/performance-leases.md] [--out x.json]``.

Everything runs against a private redis-server (tests/faults/harness.py ``PrivateRedis``: its own
loopback port and temporary directory, no persistence); the shared Redis is never touched. For
each N, N simulated workers — each a ``LeaseListener`` thread with its own ``VerifyMemory`` and
its own ``RedisLeases`` (its own two connections, as a real worker has) — run in ``--procs``
spawned child processes, so one process's GIL is not the only bottleneck. Once all N leases are
live (ZCOUNT of the expiry ZSET above Redis's ``TIME``) and one more lease has passed (so the
registry is older than one lease and no change waits for its age), the parent measures:

- at rest, ``--rest-seconds`` with no change: Redis commands/s (``INFO stats``), Redis CPU
  (``used_cpu_sys + used_cpu_user`` per wall second), ``EVALSHA``/``XREAD`` calls/s;
- ``--changes`` changes, one started every ``--interval`` seconds (or when the one before
  returned, if later), each ``Invalidator(...).invalidate(tenant)`` timed (publish, then poll
  every 1 ms until every live lease acked), and the same load figures during them.

"commands" are Redis's ``total_commands_processed``: they include the commands run inside the
Lua scripts (a renewal is one EVALSHA and ~5 commands inside it).

The listeners' processes (``/proc/<pid>/stat``), the writer and Redis share the machine's cores
with whatever else runs there: the machine's busy share and load average are reported with
every row. The results replace the section between the markers of ``--doc``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.leases_lua import EXPIRIES
from tenantauth.domain.verifying.leases import Invalidator, LeaseListener
from tenantauth.domain.verifying.memory import VerifyMemory
from tenantauth.errors import UnconfirmedChangeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lease_report import section, table, write_doc  # bench/lease_report.py
from tests.faults.harness import PrivateRedis

LEASE = 2.0
TENANT = "bench-tenant"
TICKS = os.sysconf("SC_CLK_TCK")


class DeclaredStorage:
    """The one part of Storage the listener and writer use: memory is always declared."""

    def declare_memory(self) -> None:
        """Nothing to record: the simulation is about Redis."""

    def memory_declared(self) -> bool:
        """Return True: writers always publish and wait."""
        return True


class CountingLeases:
    """RedisLeases counting the writer's polls of the acknowledgements."""

    def __init__(self, inner: RedisLeases) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.polls = 0

    def acks(self, publication: Any) -> Any:
        """Poll once (counted)."""
        self.polls += 1
        return self.inner.acks(publication)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = record.getMessage()[:60]
        if record.exc_info and record.exc_info[1] is not None:
            key += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"[:80]
        self.counts[key] = self.counts.get(key, 0) + 1


def listeners(url: str, count: int, stop: Any, report: Any) -> None:
    """Child process: run ``count`` listeners until ``stop`` is set, then leave the registry and
    put the listeners' log messages (counted: errors, re-registrations) on ``report``."""
    counter = _Counter()
    logging.getLogger("tenantauth").addHandler(counter)
    logging.getLogger("tenantauth").setLevel(logging.INFO)
    running = []
    for _ in range(count):
        registry = RedisLeases(url, lease_seconds=LEASE)
        memory = VerifyMemory(LEASE)
        listener = LeaseListener(registry, memory, DeclaredStorage(), lease_seconds=LEASE)  # type: ignore[arg-type]
        listener.ensure_started()
        running.append((listener, registry))
    stop.wait()
    for listener, _ in running:
        listener.stop()
    time.sleep(LEASE / 4 + 0.3)  # the threads end after their blocked read
    for _, registry in running:
        registry.close()
    report.put(counter.counts)


@dataclass(frozen=True)
class Snapshot:
    """Counters at one instant: Redis's, the listener processes' and the machine's."""

    at: float
    commands: int
    redis_cpu: float
    calls: dict[str, int]
    clients_cpu: float
    busy: float
    total: float


def snapshot(client: redis.Redis, pids: list[int]) -> Snapshot:
    """Read INFO stats/cpu/commandstats, the children's CPU and /proc/stat."""
    info: Any = client.info("all")
    calls = {
        name: int(info.get(f"cmdstat_{name}", {}).get("calls", 0))
        for name in ("evalsha", "xread", "eval")
    }
    cpu = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, IndexError):
            continue
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]
    return Snapshot(
        time.monotonic(),
        int(info["total_commands_processed"]),
        float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        calls,
        cpu,
        float(sum(jiffies) - idle),
        float(sum(jiffies)),
    )


def rates(a: Snapshot, b: Snapshot) -> dict[str, float]:
    """Per wall second between two snapshots; CPU figures in % of one core."""
    wall = b.at - a.at
    out = {"seconds": wall, "commands_s": (b.commands - a.commands) / wall}
    out["redis_cpu_pct"] = 100 * (b.redis_cpu - a.redis_cpu) / wall
    out["clients_cpu_pct"] = 100 * (b.clients_cpu - a.clients_cpu) / wall
    out["machine_busy_pct"] = 100 * (b.busy - a.busy) / max(1.0, b.total - a.total)
    for name in a.calls:
        out[f"{name}_s"] = (b.calls[name] - a.calls[name]) / wall
    return out


def live(client: redis.Redis) -> int:
    """Leases live now, by Redis's clock (expired members stay in the ZSET for a while)."""
    seconds, micros = client.time()  # type: ignore[misc]
    return int(client.zcount(EXPIRIES, f"({seconds * 1000 + micros // 1000}", "+inf"))


def wait_live(client: redis.Redis, want: int, seconds: float) -> tuple[bool, float]:
    """Wait until exactly ``want`` leases are live. Returns (reached, seconds waited)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if live(client) == want:
            return True, time.monotonic() - started
        time.sleep(0.1)
    return False, time.monotonic() - started


def changes(writer: Invalidator, count: int, interval: float) -> tuple[list[float], int]:
    """Time ``count`` invalidations, one started every ``interval`` seconds (or as soon as the
    one before returned, if it took longer). Returns latencies (ms) and unconfirmed."""
    latencies: list[float] = []
    unconfirmed = 0
    due = time.perf_counter()
    for _ in range(count):
        time.sleep(max(0.0, due - time.perf_counter()))
        due += interval
        started = time.perf_counter()
        try:
            writer.invalidate(TENANT)
        except UnconfirmedChangeError:
            unconfirmed += 1
        latencies.append(1000 * (time.perf_counter() - started))
    return latencies, unconfirmed


def start_children(url: str, n: int, procs: int) -> tuple[list[Any], Any, Any]:
    """Spawn the listener processes (N spread over ``procs``). Returns them, stop, reports."""
    context = multiprocessing.get_context("spawn")
    stop, report = context.Event(), context.Queue()
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    children = [
        context.Process(target=listeners, args=(url, share, stop, report))
        for share in shares
        if share
    ]
    for child in children:
        child.start()
    return children, stop, report


def stop_children(children: list[Any], stop: Any, report: Any) -> dict[str, int]:
    """Stop the listeners (they leave the registry), collect their counts, reap them."""
    stop.set()
    messages: dict[str, int] = {}
    for _ in children:
        try:
            for key, value in report.get(timeout=30).items():
                messages[key] = messages.get(key, 0) + value
        except Exception:  # noqa: BLE001 - a child that did not report is recorded below
            messages["child did not report"] = messages.get("child did not report", 0) + 1
    for child in children:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)
    return messages


def during_changes(
    url: str, client: redis.Redis, pids: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """Time ``args.changes`` changes by a writer of its own; the load while they ran."""
    registry = CountingLeases(RedisLeases(url, lease_seconds=LEASE))
    writer = Invalidator(registry, DeclaredStorage(), lease_seconds=LEASE)  # type: ignore[arg-type]
    writer_cpu = time.process_time()
    a = snapshot(client, pids)
    latencies, unconfirmed = changes(writer, args.changes, args.interval)
    b = snapshot(client, pids)
    registry.close()
    return {
        "writer_cpu_pct": 100 * (time.process_time() - writer_cpu) / (b.at - a.at),
        "changes": rates(a, b),
        "latency_ms": latencies,
        "unconfirmed": unconfirmed,
        "polls_per_change": registry.polls / max(1, len(latencies)),
    }


def measure(server: PrivateRedis, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row: N listeners at rest, then ``args.changes`` changes."""
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    row: dict[str, Any] = {"n": n, "load_before": os.getloadavg()[0]}
    children, stop, report = start_children(server.url, n, args.procs)
    pids = [c.pid for c in children] + [os.getpid()]
    try:
        reached, row["register_s"] = wait_live(client, n, 60 + n / 5)
        row["registered"] = live(client)
        if not reached:
            row["note"] = (
                f"only {row['registered']} of {n} leases live after {row['register_s']:.0f} s"
            )
        time.sleep(LEASE)  # past the registration burst; the registry is older than one lease
        a = snapshot(client, pids)
        time.sleep(args.rest_seconds)
        b = snapshot(client, pids)
        row["rest"] = rates(a, b)
        row["connections"] = int(client.info("clients")["connected_clients"])  # type: ignore[index]
        row |= during_changes(server.url, client, pids, args)
        row["load_after"] = os.getloadavg()[0]
    finally:
        row["messages"] = stop_children(children, stop, report)
        wait_live(client, 0, 2 * LEASE)
        client.close()
    return row


def main() -> None:
    """Measure each N, print the table, write the doc's section and JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--listeners", default="10,50,100,200,400", help="N values, comma-separated"
    )
    parser.add_argument(
        "--procs", type=int, default=4, help="child processes holding the listeners"
    )
    parser.add_argument("--changes", type=int, default=50, help="changes timed per N")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between the starts of two changes"
    )
    parser.add_argument(
        "--rest-seconds", type=float, default=10.0, help="length of the at-rest window"
    )
    parser.add_argument(
        "--doc", type=Path, help="write the results into this markdown file's section"
    )
    parser.add_argument("--out", type=Path, help="write the raw results as JSON here")
    parser.add_argument("--from-json", type=Path, help="no run: report the results of --out")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        report(saved["rows"], argparse.Namespace(**saved["args"]))
        return
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-leases-") as tmp:
        server = PrivateRedis(Path(tmp))
        server.start()
        try:
            args.redis_version = redis.Redis.from_url(server.url).info("server")["redis_version"]  # type: ignore[index]
            for n in (int(x) for x in args.listeners.split(",")):
                rows.append(measure(server, n, args))
                print("\n".join(table(rows[-1:])), flush=True)
        finally:
            server.stop()
    if args.out:
        saved = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
        args.out.write_text(json.dumps(saved | {"rows": rows}, indent=2) + "\n")
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the section and write it into ``args.doc`` if given."""
    text = section(rows, args, LEASE)
    print(text)
    if args.doc:
        write_doc(Path(args.doc), text)


if __name__ == "__main__":
    main()
