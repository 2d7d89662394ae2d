"""bench/algorithms.py's output: its tables and docs/performance-algorithms.md."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from common import machine, stats
from cryptography.hazmat.backends.openssl import backend
from report import today
from scale_load import uptime

from tenantauth.domain.tokens import PARSED_MEMO_MAX

BASE = "HS256"
WORKLOADS = ("warm", "first sight")
#: The signature costs docs/design.md ("The verified-token memo and key pairs") guessed.
GUESSES = {"HS256": "~1.5", "EdDSA": "~60", "ES256": "~90", "RS256": "cheap (no figure)"}


def meta_start(args: str) -> dict[str, Any]:
    """What the doc says about the run, known before it: date, machine, load, versions."""
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    return {
        "date": today(),
        "machine": machine(),
        "uptime_start": uptime(),
        "args": args,
        "python": platform.python_version(),
        "cryptography": f"cryptography {metadata.version('cryptography')} "
        f"({backend.openssl_version_text()})",
        "granian": f"granian {metadata.version('granian')}",
        "wrk": wrk.splitlines()[0].split(" Copyright")[0] if wrk else "wrk",
    }


def meta_end(meta: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the load after measuring and the configuration that ran."""
    return {**meta, "uptime_end": uptime(), "loadavg_end": os.getloadavg(), "config": config}


def _us(values: Sequence[float]) -> str:
    s = stats(list(values))
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def _median(values: Sequence[float]) -> float:
    return stats(list(values))["median"]


def in_process_table(inside: dict[str, Any], measure: int) -> str:
    """µs per call (``measure`` 0: wall, 1: process CPU), median of the runs (min–max), and
    the ratio to HS256, per kind; and what the signature leaves of a first-sight verify."""
    runs = inside["runs"]
    got = {
        kind: {alg: [r[measure] for r in v] for alg, v in by.items()} for kind, by in runs.items()
    }
    lines = [
        "| algorithm | warm µs | ÷ HS256 | first sight µs | ÷ HS256 | signature alone µs "
        "| ÷ HS256 | first sight − HS256's µs | first sight − signature µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for alg in runs["warm"]:
        cells = []
        for kind in ("warm", "first sight", "signature"):
            mine, base = _median(got[kind][alg]), _median(got[kind][BASE])
            cells += [_us(got[kind][alg]), f"{mine / base:.2f}x"]
        first = _median(got["first sight"][alg])
        extra = first - _median(got["first sight"][BASE])
        rest = first - _median(got["signature"][alg])
        lines.append(f"| {alg} | {' | '.join(cells)} | {extra:+.1f} | {rest:.1f} |")
    return "\n".join(lines)


def checks_table(inside: dict[str, Any]) -> str:
    """The signatures counted in one pass of each kind, and the cost docs/design.md guessed."""
    checks, runs = inside["checks"], inside["runs"]
    lines = [
        "| algorithm | signatures checked: warm | first sight "
        "| signature alone, CPU µs (measured) | design's guess, µs |",
        "|---|---:|---:|---:|---|",
    ]
    for alg in runs["warm"]:
        counted = [f"{c:,} of {n:,} calls" for c, n in (checks[alg][k] for k in WORKLOADS)]
        cpu = _median([r[1] for r in runs["signature"][alg]])
        lines.append(f"| {alg} | {' | '.join(counted)} | {cpu:.1f} | {GUESSES.get(alg, '-')} |")
    return "\n".join(lines)


def http_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per workload and algorithm: req/s, p50, p99, server CPU per request, ratios to HS256."""
    base = {r["workload"]: r for r in rows if r["alg"] == BASE}
    lines = [
        "| workload | algorithm | req/s median (min–max) | ÷ HS256 | p50 ms "
        "| p99 ms median (min–max) | p99 ÷ HS256 | server CPU µs/request (− HS256) | ÷ HS256 "
        "| non-2xx / socket errors | lopsided runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: r["workload"] != "warm"):
        b = base[r["workload"]]
        rps, p99, cpu = r["rps"], r["p99_ms"], r["cpu_us"]
        cells = [
            f"{rps['median']:,.0f} ({rps['min']:,.0f}–{rps['max']:,.0f})",
            f"{rps['median'] / b['rps']['median']:.2f}x",
            f"{r['p50_ms']['median']:.2f}",
            f"{p99['median']:.2f} ({p99['min']:.2f}–{p99['max']:.2f})",
            f"{p99['median'] / b['p99_ms']['median']:.2f}x",
            f"{cpu['median']:.0f} ({cpu['median'] - b['cpu_us']['median']:+.0f})",
            f"{cpu['median'] / b['cpu_us']['median']:.2f}x",
            f"{r['non_2xx']:.0f} / {r['socket_errors']:.0f}",
            f"{r['lopsided']} of {len(r['runs'])}",
        ]
        lines.append(f"| {r['workload']} | {r['alg']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def document(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """docs/performance-algorithms.md: machine, both tables, method, how to reproduce."""
    m, cfg = meta["machine"], meta["config"]
    args = f" ARGS='{meta['args']}'" if meta["args"] else ""
    busy = max(m["loadavg"][0], meta["loadavg_end"][0]) > m["cores"]
    shared = (
        "\n**Other work shared the machine during this run** (a load average above the core "
        "count): the absolute figures are depressed and spread wide; every run alternates the "
        "algorithms, so compare each algorithm with HS256, not with other days.\n"
        if busy
        else ""
    )
    return f"""# Verify cost by signing algorithm (issue 15)

Written by `make bench-algorithms{args}` (bench/algorithms.py) on {meta["date"]}; do not edit by
hand, run it again (`make bench` does not touch this file).

Machine: {m["cpu_model"]}, {m["cores"]} cores ({m["usable_cores"]} usable), kernel
{m["kernel"]}; `uptime` load average at the start {meta["uptime_start"]}, at the end
{meta["uptime_end"]}. Python {meta["python"]}, {meta["cryptography"]}, {meta["granian"]},
{meta["wrk"]}. wrk, PostgreSQL and Redis share the cores with the server, and the machine is
shared with other work: read the ratios to HS256, measured alike and alternately.
{shared}
## In process

`svc.verifier.verify(token)` on the app `tenantauth serve` builds (`create_app`: PostgreSQL +
Redis, metrics, INFO JSON log lines, verifying from memory; every tenant held in this
process's memory before measuring). Process CPU µs per call (every thread of the process;
what a shared machine distorts least), median of {cfg["in_process_runs"]} runs (min–max):

{in_process_table(results["in_process"], 1)}

The same runs' wall µs per call:

{in_process_table(results["in_process"], 0)}

- **warm**: one token, {cfg["calls"]:,} calls per run. The verified-token memo keeps the key
  object that accepted the signature, so a repeated token skips the signature check whatever
  its algorithm.
- **first sight**: {cfg["first_sight"]:,} distinct tokens, each verified once per run: more
  than the memo keeps ({PARSED_MEMO_MAX:,}, cleared when full), so every call parses the token
  and checks its signature, as for a client's first request with a new token.
- **signature alone**: `tenantauth.crypto.jwt.check_signature(parsed, key)` over the same
  tokens, parsed beforehand, with the tenant's key object: HMAC-SHA256 (HS256), or
  `cryptography`'s verify (EdDSA: Ed25519; ES256: P-256, the low-S check first; RS256: a
  generated 2048-bit key, PKCS#1 v1.5). "first sight − HS256's" is what a first sight of
  the algorithm's token costs beyond an HS256 one; "first sight − signature" is the rest of a
  first-sight verify (parse, memory lookup, claim checks, memo insert).
- Each run measures warm, then first sight, then signature alone, every algorithm in turn
  within each (the order rotating by run).

Signatures `jwt.check_signature` was called for in one pass of each kind (counted outside the
timed runs, in their steady state: every first-sight token verified once before, the warm
token verified just before), beside the signature cost docs/design.md ("The verified-token
memo and key pairs") guessed:

{checks_table(results["in_process"])}

## Over HTTP

`tenantauth serve` as it ships (granian, {cfg["workers"]} workers, metrics and request log
lines on, verifying from memory), one tenant per algorithm, `wrk -t{cfg["threads"]}
-c{cfg["connections"]} -d{cfg["duration"]:g}s --latency` against `GET /v1/verify`. Median of
{cfg["runs"]} runs (min–max); "server CPU µs/request" is the CPU seconds the workers spent in
the run over its requests (/proc), which a busy machine distorts less than req/s:

{http_table(results["http"])}

- **warm**: one token per algorithm; every worker's memo holds it after its first request.
- **first sight**: {cfg["distinct"]:,} distinct tokens per algorithm, sent in turn by a wrk Lua
  script whose two threads start half the list apart: a worker sees a token again only after
  thousands of others, more than its memo keeps ({PARSED_MEMO_MAX:,}), so nearly every request
  checks a signature (a worker that got few connections may still meet a token it holds).
- After a {cfg["warm_seconds"]:g} s warm-up run each, every round runs each (workload,
  algorithm) once, the order rotating by round. Before measuring, each tenant's first and last
  token must verify (200) and a token with one signature character changed must not (401).
  "lopsided runs" counts runs in which one worker did under a third of the work (granian's
  shared accept queue, docs/design.md "One accept queue, and its price"); medians include them.

## Method and how to reproduce

`make bench-algorithms` (about 4 minutes on 2 cores; `ARGS='--runs 5 --duration 10'` for
more, `ARGS=--quick` for a check; `ARGS='--out results.json'` keeps every run, and
`bench/algorithms.py --report results.json` writes this file again from it). It creates a
throwaway database on the test PostgreSQL and claims a free Redis DB as the tests do (never
flushing another's); tenants `bench-hs256`, `bench-eddsa`, `bench-es256`, `bench-rs256` with
generated keys are created through the use case and {cfg["distinct"]:,} tokens each (TTL
1 h, distinct subjects) minted in process in {results["seed_seconds"]:.0f} s, then the
in-process part runs, then the HTTP part on the same database and Redis DB.
`tests/bench/test_algorithms_smoke.py` runs every path of it for a moment in `make test`.
"""
