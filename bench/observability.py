"""What the request log line and the metrics cost per request on the warm verify path (issue 13).

Usage: ``make bench-observability`` or ``.venv/bin/python bench/observability.py [--requests N]
[--runs R] [--http-seconds S] [--no-http] [--out results.json]``. Needs
``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL`` (``make bench-observability``
sets them); creates and drops its own database and claims a free Redis DB the way the test
suite does (``SET NX`` of its run lock), so a concurrent test run is never flushed.

In process: every configuration is ``create_app(make_settings(...))`` in a process of its own
(PostgreSQL + Redis, the tenant warm in Redis), its stdout (where the log writer writes) a
file. Each run calls the app's WSGI callable directly N times (GET /v1/verify, a valid token;
one environ built once, copied per call) and reports per request: ``wall`` (the request
thread's latency, incl. the Redis round trip), ``request-thread CPU`` (that thread alone) and
``process CPU`` (every thread, incl. the log writer's rendering, taken after a flush). Each of
R rounds pairs every configuration with a baseline run, back to back (which goes first
alternates, the configurations' order rotates): a row's Δ is the median [quartiles] of its R
paired differences, so the load of a shared machine, which drifts between pairs, cancels.
Then each process times the parts alone (no Redis, no routing; thread CPU, best of several
loops): the ``after_request`` hook as configured (its fixed part — route, status, outcome — is
the baseline's), the domain's telemetry calls of a warm verify, and rendering one line.

Rows:
- ``baseline``: metrics off (``metrics_port=0``), log level WARNING (no request line).
- ``metrics``: metrics on (the request, verify, cache-read and dependency-call series).
- ``log line``: a JSON request line per request (INFO), metrics off.
- ``both``: metrics on and the line, as production ships.
- ``both, sample 0.1``: as ``both`` with ``log_sample_accepted=0.1``.
- ``… (mmap)``: the same with ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is
  imported, as under gunicorn: values in memory-mapped files, not in-process floats.

Over HTTP (secondary; skipped unless ``wrk`` is installed): ``tenantauth serve`` with 2
workers, metrics on/off x log INFO/WARNING, ``wrk -t2 -c32 --latency`` against GET /v1/verify;
requests/s and latency percentiles, median of the runs. wrk shares the 2 cores with the server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import g

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # bench/common.py
from common import claimed_redis, stats
from run import postgres_database  # bench/run.py
from tests.support import Backend, make_settings

WARMUP = 500


@dataclass(frozen=True)
class Config:
    """One in-process configuration: its settings overrides and whether values are mmap'd."""

    name: str
    overrides: dict[str, Any]
    mmap: bool = False


_OFF = {"metrics_port": 0, "log_level": "WARNING"}
_METRICS = {"metrics_port": 9464, "log_level": "WARNING"}
_LINE = {"metrics_port": 0, "log_level": "INFO"}
_BOTH = {"metrics_port": 9464, "log_level": "INFO"}
CONFIGS = [
    Config("baseline (metrics off, no line)", _OFF),
    Config("metrics", _METRICS),
    Config("log line", _LINE),
    Config("both", _BOTH),
    Config("both, sample 0.1", {**_BOTH, "log_sample_accepted": 0.1}),
    Config("metrics (mmap)", _METRICS, mmap=True),
    Config("both (mmap)", _BOTH, mmap=True),
    Config("both, sample 0.1 (mmap)", {**_BOTH, "log_sample_accepted": 0.1}, mmap=True),
]


# --------------------------------------------------------------------------- worker side


def worker(spec: dict[str, Any]) -> None:
    """Serve measurement requests (a count per stdin line) for one configuration; answer
    each with a JSON line on the original stdout. Log lines go to ``spec['log']``."""
    from werkzeug.test import EnvironBuilder  # noqa: PLC0415 - after the env is final

    from tenantauth.app import create_app  # noqa: PLC0415
    from tenantauth.observability import logs  # noqa: PLC0415

    control = sys.stdout
    log = Path(spec["log"]).open("a", encoding="utf-8")  # noqa: SIM115
    sys.stdout = counted = CountedStream(log)
    backend = Backend("postgres", spec["database_url"], spec["redis_url"])
    settings = make_settings(
        backend, Path(spec["state"]), auto_migrate=False, log_format="json", **spec["overrides"]
    )
    app = create_app(settings)
    environ = EnvironBuilder(
        path="/v1/verify",
        headers={"Authorization": f"Bearer {spec['token']}"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()

    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        assert status.startswith("200"), status

    def call() -> None:
        body = app(dict(environ), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    from prometheus_client import values  # noqa: PLC0415

    for _ in range(WARMUP):
        call()
    logs.flush()
    ready = {"value_class": values.ValueClass.__name__}
    control.write(json.dumps(ready) + "\n")
    control.flush()
    for command in sys.stdin:
        if command.startswith("parts"):
            control.write(json.dumps(parts(app, settings, spec["token"])) + "\n")
            control.flush()
            continue
        count = int(command)
        size, writes = log.tell(), counted.writes
        wall, thread, cpu = time.perf_counter(), time.thread_time(), time.process_time()
        for _ in range(count):
            call()
        wall, thread = time.perf_counter() - wall, time.thread_time() - thread
        logs.flush()
        cpu = time.process_time() - cpu
        log.flush()
        lines, written = _written(Path(spec["log"]), size)
        result = {
            "wall_us": wall / count * 1e6,
            "thread_us": thread / count * 1e6,
            "cpu_us": cpu / count * 1e6,
            "requests": count,
            "lines": lines,
            "bytes": written,
            "writes": counted.writes - writes,
            "dropped": logs._writer.dropped if logs._writer else 0,  # the writer of this process
        }
        control.write(json.dumps(result) + "\n")
        control.flush()


#: Calls per timed loop of ``parts`` (below the log queue's limit) and loops (best taken).
PART_CALLS, PART_LOOPS = 2_000, 25


def parts(app: Any, settings: Any, token: str) -> dict[str, float | None]:
    """Time, without the rest of the request, what observability adds to one verify: the
    ``after_request`` hook (metrics and the line's dict, queued) on the request thread; the
    domain's telemetry calls of a warm verify (a cache hit and the Redis call's duration); and
    the writer thread's rendering of one line. µs per call, the best of PART_LOOPS loops."""
    from tenantauth.observability import logs  # noqa: PLC0415
    from tenantauth.observability.http import RequestTelemetry  # noqa: PLC0415
    from tenantauth.observability.metrics import PrometheusTelemetry  # noqa: PLC0415

    telemetry = app.extensions["tenantauth"]["services"].telemetry
    metrics = telemetry if isinstance(telemetry, PrometheusTelemetry) else None
    hook = RequestTelemetry(metrics, logs._writer, settings.log_sample_accepted)
    captured: list[dict[str, Any]] = []
    capture = RequestTelemetry(None, Capture(captured), 1.0)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {token}"}
    with app.test_request_context("/v1/verify", headers=headers):
        g.started, g.tenant_id = time.perf_counter(), "bench"
        response = app.response_class("{}", headers={"X-Request-Id": secrets.token_hex(16)})
        out: dict[str, float | None] = {"hook_us": _best(lambda: hook.finish(response))}
        logs.flush()
        capture.finish(response)
    out["domain_us"] = None
    if metrics is not None:
        out["domain_us"] = _best(
            lambda: (metrics.cache_read("hit"), metrics.dependency_call("cache", 1e-4, ok=True))
        )
    out["render_us"] = out["line_bytes"] = None
    if captured:  # the line's level is on
        render = logs.renderer("json", colors=False)
        out["render_us"] = _best(lambda: render(dict(captured[0])))
        out["line_bytes"] = len(render(dict(captured[0]))) + 1
    return out


class Capture:
    """A stand-in log writer that keeps the events put."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        """Append every event put to ``events``."""
        self.events = events

    def put(self, event: dict[str, Any]) -> None:
        """Keep ``event``."""
        self.events.append(event)


def _best(fn: Any) -> float:
    """µs per call of ``fn``: the best of PART_LOOPS loops of PART_CALLS calls (thread CPU)."""
    from tenantauth.observability import logs  # noqa: PLC0415

    best = float("inf")
    for _ in range(PART_LOOPS):
        start = time.thread_time()
        for _ in range(PART_CALLS):
            fn()
        best = min(best, time.thread_time() - start)
        logs.flush()  # what the hook queued: written before the next loop
    return best / PART_CALLS * 1e6


class CountedStream:
    """A text stream that counts its ``write`` calls (the writer's batches)."""

    def __init__(self, stream: Any) -> None:
        """Write to ``stream``."""
        self._stream = stream
        self.writes = 0

    def write(self, text: str) -> int:
        """Write ``text``; count the call."""
        self.writes += 1
        return int(self._stream.write(text))

    def flush(self) -> None:
        """Flush the stream."""
        self._stream.flush()

    def isatty(self) -> bool:
        """Never a terminal."""
        return False


def _written(path: Path, since: int) -> tuple[int, int]:
    """Return (lines, bytes) written to ``path`` after offset ``since``."""
    with path.open("rb") as f:
        f.seek(since)
        data = f.read()
    return data.count(b"\n"), len(data)


# --------------------------------------------------------------------------- parent side


class Worker:
    """A measuring subprocess of one configuration."""

    def __init__(self, config: Config, spec: dict[str, Any], tmp: Path) -> None:
        """Start it (``spec``: database, Redis, token; ``tmp``: its files)."""
        slug = re.sub(r"[^a-z0-9]+", "-", config.name.lower()).strip("-")
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if config.mmap:
            mmap_dir = tmp / f"mmap-{slug}"
            mmap_dir.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(mmap_dir)
        full = {**spec, "overrides": config.overrides, "log": str(tmp / f"{slug}.log")}
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(full)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.value_class = self._reply()["value_class"]

    def measure(self, count: int) -> dict[str, Any]:
        """Run ``count`` requests; return the worker's figures."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        return self._reply()

    def parts(self) -> dict[str, Any]:
        """Time the observability parts alone (``parts`` in the worker)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("parts\n")
        self.proc.stdin.flush()
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.config.name!r} died (see its stderr above)")
        return dict(json.loads(line))

    def stop(self) -> None:
        """Close its stdin and wait for it."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def in_process(spec: dict[str, Any], tmp: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Measure every configuration in pairs with the baseline; return one summary each.

    Each round runs, for every configuration in a rotated order, the baseline and it back to
    back (which goes first alternates), so a change of the machine's load between pairs
    cancels out of the paired difference; a row's delta is the median of its rounds' deltas.
    """
    workers = [Worker(config, spec, tmp) for config in CONFIGS]
    base, others = workers[0], workers[1:]
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONFIGS}
    deltas: dict[str, list[dict[str, float]]] = {c.name: [] for c in CONFIGS[1:]}
    try:
        for round_ in range(args.runs):
            shift = round_ % len(others)
            for i, w in enumerate(others[shift:] + others[:shift]):
                first, second = (base, w) if (round_ + i) % 2 else (w, base)
                got = {first: first.measure(args.requests), second: second.measure(args.requests)}
                runs[base.config.name].append(got[base])
                runs[w.config.name].append(got[w])
                deltas[w.config.name].append({key: got[w][key] - got[base][key] for key in KEYS})
        measured = {w.config.name: w.parts() for w in workers}
    finally:
        for w in workers:
            w.stop()
    return [
        summarise(w.config, w.value_class, runs[w.config.name], deltas.get(w.config.name))
        | {"parts": measured[w.config.name]}
        for w in workers
    ]


KEYS = ("wall_us", "thread_us", "cpu_us")


def summarise(
    config: Config,
    value_class: str,
    runs: list[dict[str, Any]],
    deltas: list[dict[str, float]] | None,
) -> dict[str, Any]:
    """Medians and ranges of one configuration's runs and of its paired deltas."""
    out: dict[str, Any] = {"name": config.name, "mmap": config.mmap, "value_class": value_class}
    for key in KEYS:
        out[key] = stats([r[key] for r in runs])
        if deltas is not None:
            out[f"delta_{key}"] = stats([d[key] for d in deltas])
    lines = sum(r["lines"] for r in runs)
    out["lines_per_request"] = lines / sum(r["requests"] for r in runs)
    out["bytes_per_line"] = sum(r["bytes"] for r in runs) / lines if lines else 0.0
    out["lines_per_write"] = lines / max(1, sum(r["writes"] for r in runs))
    out["dropped"] = max(r["dropped"] for r in runs)
    out["runs"] = runs
    return out


def seeded(pg_url: str, redis_url: str, state: Path) -> str:
    """Migrate, create tenant bench, return a valid token for it."""
    from tenantauth.bootstrap import build_services  # noqa: PLC0415
    from tenantauth.domain import tenants  # noqa: PLC0415
    from tenantauth.domain.tokens import TokenRequest, issue_token  # noqa: PLC0415

    svc = build_services(make_settings(Backend("postgres", pg_url, redis_url), state))
    svc.storage.migrate()  # type: ignore[attr-defined]
    tenants.create_tenant(svc, "bench", "Bench")
    token = issue_token(
        svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest("bench", "user-1")
    ).access_token
    svc.close()
    return token


# --------------------------------------------------------------------------- over HTTP

HTTP_CONFIGS = {
    "metrics off, WARNING": {"TENANTAUTH_METRICS_PORT": "0", "TENANTAUTH_LOG_LEVEL": "WARNING"},
    "metrics on, WARNING": {"TENANTAUTH_LOG_LEVEL": "WARNING"},
    "metrics off, INFO": {"TENANTAUTH_METRICS_PORT": "0", "TENANTAUTH_LOG_LEVEL": "INFO"},
    "metrics on, INFO": {"TENANTAUTH_LOG_LEVEL": "INFO"},
}


def wrk(port: int, token: str, seconds: float) -> dict[str, float]:
    """One ``wrk -t2 -c32 --latency`` run at GET /v1/verify; every response must be a 2xx."""
    url = f"http://127.0.0.1:{port}/v1/verify"
    got = common.wrk(url, seconds, headers={"Authorization": f"Bearer {token}"})
    assert not got["non_2xx"] and not got["socket_errors"], got
    return got


def over_http(
    pg_url: str, redis_url: str, tmp: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Measure the HTTP configurations, alternating; return one summary each."""
    from tests.e2e.harness import Admin, production_environ, start_server, wait_ready  # noqa: PLC0415

    servers = {}
    try:
        for name, extra in HTTP_CONFIGS.items():
            env = production_environ(pg_url, redis_url, tmp / "access.log")
            env.update(TENANTAUTH_ACCESS_LOG="", TENANTAUTH_LOG_FORMAT="json", **extra)
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
            servers[name] = start_server(tmp, slug, env, workers=2)
        for server in servers.values():
            wait_ready(server)
        admin = Admin(next(iter(servers.values())).port)
        admin.create_tenant("acme")
        token = admin.issue("acme")
        for server in servers.values():
            wrk(server.port, token, 1)  # warm: every worker's pools, caches and directory
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        names = list(servers)
        for round_ in range(args.http_runs):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                runs[name].append(wrk(servers[name].port, token, args.http_seconds))
    finally:
        for server in servers.values():
            server.stop()
    keys = ("rps", "p50_ms", "p99_ms")
    return [
        {"name": name, **{key: stats([r[key] for r in rs]) for key in keys}, "runs": rs}
        for name, rs in runs.items()
    ]


# --------------------------------------------------------------------------- output


def _cell(stat: dict[str, float], digits: int = 1) -> str:
    return f"{stat['median']:.{digits}f} ({stat['min']:.{digits}f}–{stat['max']:.{digits}f})"


def _delta(stat: dict[str, float] | None) -> str:
    if stat is None:
        return "—"
    return f"{stat['median']:+.1f} [{stat['q1']:+.1f}, {stat['q3']:+.1f}]"


def print_in_process(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The in-process table (markdown): µs per request, median (min–max), and each row's
    paired difference from the baseline, median [quartiles]."""
    pairs = args.runs * (len(rows) - 1)
    print(
        f"\nIn process: {args.requests} WSGI calls per run; {args.runs} rounds, each pairing "
        f"every row with a baseline run ({pairs} baseline runs)\n"
    )
    print(
        "| configuration | wall µs | process CPU µs | Δ wall µs | Δ request-thread CPU µs "
        "| Δ process CPU µs | lines/req | bytes/line | lines/write |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [_cell(row["wall_us"]), _cell(row["cpu_us"])]
        cells += [_delta(row.get(f"delta_{key}")) for key in KEYS]
        logged = bool(row["bytes_per_line"])
        cells.append(f"{row['lines_per_request']:.2f}")
        cells.append(f"{row['bytes_per_line']:.0f}" if logged else "—")
        cells.append(f"{row['lines_per_write']:.2f}" if logged else "—")
        print(f"| {row['name']} | {' | '.join(cells)} |")
    print(
        f"\nThe parts alone, µs per call (thread CPU, best of {PART_LOOPS} x {PART_CALLS:,}); "
        "Δ hook: minus the baseline's hook (route, status, outcome: paid even with both off)\n"
    )
    print("| configuration | after_request hook | Δ hook | domain telemetry | render a line |")
    print("|---|---:|---:|---:|---:|")
    base = rows[0]["parts"]["hook_us"]
    for row in rows:
        got = row["parts"]
        cells = [f"{got['hook_us']:.2f}", f"{got['hook_us'] - base:+.2f}"]
        cells.append("—" if got["domain_us"] is None else f"{got['domain_us']:.2f}")
        cells.append("—" if got["render_us"] is None else f"{got['render_us']:.2f}")
        print(f"| {row['name']} | {' | '.join(cells)} |")
    mmap = {row["value_class"] for row in rows if row["mmap"]}
    print(
        f"\nvalue class with PROMETHEUS_MULTIPROC_DIR: {', '.join(sorted(mmap))}; "
        f"without: {rows[0]['value_class']}"
    )
    dropped = max(row["dropped"] for row in rows)
    print(f"log lines dropped (writer behind): {dropped}")


def print_http(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The HTTP table (markdown): req/s, p50 and p99 ms, median (min–max)."""
    base = rows[0]["rps"]["median"]
    print(
        f"\nOver HTTP: wrk -t2 -c32 -d{args.http_seconds:g}s x {args.http_runs} runs, "
        "tenantauth serve --workers 2, alternating\n"
    )
    print("| configuration | req/s (min–max) | vs first | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        ratio = row["rps"]["median"] / base
        print(
            f"| {row['name']} | {_cell(row['rps'], digits=0)} | {ratio:.3f}x "
            f"| {_cell(row['p50_ms'], digits=2)} | {_cell(row['p99_ms'], digits=2)} |"
        )


def main() -> None:
    """Measure, print the tables, and write JSON to --out if given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="WSGI calls per run")
    parser.add_argument(
        "--runs", type=int, default=21, help="rounds (each pairs every row with a baseline run)"
    )
    parser.add_argument("--http-seconds", type=float, default=5.0, help="length of a wrk run")
    parser.add_argument("--http-runs", type=int, default=5, help="wrk runs per HTTP row")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP rows")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    results: dict[str, Any] = {"cpus": os.cpu_count(), "args": vars(args) | {"out": None}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as pg_url,
        claimed_redis() as redis_url,
    ):
        state = Path(tmp)
        token = seeded(pg_url, redis_url, state)
        spec = {"database_url": pg_url, "redis_url": redis_url, "token": token, "state": tmp}
        results["in_process"] = in_process(spec, state, args)
        print_in_process(results["in_process"], args)
        if args.no_http:
            results["http"] = "skipped: --no-http"
        elif shutil.which("wrk") is None:
            results["http"] = "skipped: wrk not installed (apt-get install wrk)"
            print(f"\nOver HTTP: {results['http']}")
        else:
            (state / "http").mkdir()
            results["http"] = over_http(pg_url, redis_url, state / "http", args)
            print_http(results["http"], args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
