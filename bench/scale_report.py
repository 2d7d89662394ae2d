"""bench/scale.py's output: three markdown tables and docs/performance-scale.md."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from common import lopsided
from scale_load import KINDS

Result = dict[str, Any]


def _pct(values: Sequence[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method: with 50 calls, p99 is near the maximum)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _mode(result: Result) -> str:
    return f"{result['tenants']:,} | {result['memory']}"


def verify_table(results: Sequence[Result]) -> str:
    """Many tenants: req/s (and its ratio to the smallest size's, same mode), latencies, where
    the answers came from, database calls, worker RSS."""
    smallest = {}
    for r in sorted(results, key=lambda r: -r["tenants"]):
        smallest[r["memory"]] = r["verify"]["rps"]
    lines = [
        "| tenants | memory | req/s | ÷ smallest size | p50 ms | p99 ms | non-2xx / socket errors "
        "| from memory / Redis / DB (miss) | database calls "
        "| worker RSS MiB: sum (each) | load 1/5/15 min |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        v, m = r["verify"], r["verify"]["metrics"]
        rss = v["rss_mib"]
        each = ", ".join(f"{x:.0f}" for x in rss)
        sources = f"{m.get('memory', 0):,.0f} / {m.get('hit', 0):,.0f} / {m.get('miss', 0):,.0f}"
        lines.append(
            f"| {_mode(r)} | {v['rps']:,.0f}{_lopsided(v)} "
            f"| {v['rps'] / smallest[r['memory']]:.2f} "
            f"| {v['p50_ms']:.2f} | {v['p99_ms']:.2f} "
            f"| {v['non_2xx']:.0f} / {v['socket_errors']:.0f} | {sources} "
            f"| {m.get('database', 0):,.0f} | {sum(rss):.0f} ({each}) | {v['load']} |"
        )
    return "\n".join(lines)


def alternate_table(results: Sequence[Result]) -> str:
    """The largest size's alternating rounds: a few tenants' tokens, as many tokens as every
    tenant's but all of those few tenants, and one token of every tenant; a run where one
    worker did under a third of the work is marked (lopsided)."""
    lines = [
        "| tenants | memory | round | few tenants, few tokens: req/s, p99 ms "
        "| few tenants, as many tokens: req/s, p99 ms | every tenant: req/s, p99 ms "
        "| every ÷ few (÷ few, as many tokens) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for i, a in enumerate(r.get("alternate") or [], 1):
            hot, many, every = a["hot"], a["hot_many"], a["every"]
            lines.append(
                f"| {_mode(r)} | {i} | {_run(hot)} | {_run(many)} | {_run(every)} "
                f"| {every['rps'] / hot['rps']:.2f}x ({every['rps'] / many['rps']:.2f}x) |"
            )
    return "\n".join(lines)


def _run(run: dict[str, Any]) -> str:
    return f"{run['rps']:,.0f}, {run['p99_ms']:.1f}{_lopsided(run)}"


def _lopsided(run: dict[str, Any]) -> str:
    """ " (lopsided)" when one worker did less than a third of the run's work, else ""."""
    return " (lopsided)" if lopsided(run.get("split") or []) else ""


def alternate_ratios(rounds: Sequence[dict[str, Any]], over: str) -> float:
    """The median over ``rounds`` of every-tenant req/s divided by ``over``'s."""
    return statistics.median(a["every"]["rps"] / a[over]["rps"] for a in rounds)


def flood_table(results: Sequence[Result]) -> str:
    """Unknown-id flood: the valid wrk's p99 without and with the flood, and the metrics."""
    lines = [
        "| tenants | memory | valid p99 ms, no flood | valid p99 ms, flood | ratio "
        "| valid req/s no flood / flood | unknown req/s (their non-2xx) "
        "| ruled out (no read) | misses (valid, read from DB) | database calls "
        "| load 1/5/15 min |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        f = r["flood"]
        calm, hit, ghosts, m = f["no_flood"], f["flood_valid"], f["flood_unknown"], f["metrics"]
        lines.append(
            f"| {_mode(r)} | {calm['p99_ms']:.2f} | {hit['p99_ms']:.2f} "
            f"| {hit['p99_ms'] / calm['p99_ms']:.2f}x | {calm['rps']:,.0f} / {hit['rps']:,.0f} "
            f"| {ghosts['rps']:,.0f} ({ghosts['non_2xx']:,.0f} of {ghosts['requests']:,.0f}) "
            f"| {m.get('ruled_out', 0):,.0f} | {m.get('miss', 0):,.0f} "
            f"| {m.get('database', 0):,.0f} | {f['load']} |"
        )
    return "\n".join(lines)


#: The change phases a result may hold, and how the tables name them.
PHASES = (("changes", "same server"), ("changes_admin", "admin server"))


def changes_table(results: Sequence[Result]) -> str:
    """Changes under load: each kind's latency, the admin failures, the verify run beside;
    each phase (through the verifying server, through an admin-role server beside it)."""
    lines = [
        "| tenants | memory | through | change | calls | p50 ms | p99 ms | max ms "
        "| admin non-2xx | verify req/s, p99 ms during (its 401s) | mean ms in the server (its "
        "route) / waiting for acknowledgements (every change) |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for phase, through in PHASES:
            if phase not in r:
                continue
            c = r[phase]
            v = c["verify"]
            during = f"{v['rps']:,.0f}, {v['p99_ms']:.1f} ({v['non_2xx']:,.0f})"
            for kind in KINDS:
                ms = c["timings_ms"][kind]
                bad = sum(1 for f in c["admin_failed"] if f.startswith(kind))
                lines.append(
                    f"| {_mode(r)} | {through} | {kind} | {len(ms)} | {_pct(ms, 50):.1f} "
                    f"| {_pct(ms, 99):.1f} | {max(ms, default=float('nan')):.1f} | {bad} "
                    f"| {during} | {_server_side(c.get('metrics', {}), kind)} |"
                )
    return "\n".join(lines)


def _slowest_p99(result: Result, phase: str) -> float:
    """The slowest change kind's p99 (ms) in ``phase`` of ``result``."""
    return max(_pct(ms, 99) for ms in result[phase]["timings_ms"].values())


def targets(results: Sequence[Result]) -> str:
    """Issue 14's three targets for these rows, each measured figure beside it."""
    lines = []
    for mode in ("off", "on"):
        rows = sorted((r for r in results if r["memory"] == mode), key=lambda r: r["tenants"])
        if len(rows) < 2:
            continue
        small, large = rows[0], rows[-1]
        ratio = large["verify"]["rps"] / small["verify"]["rps"]
        flood = ", ".join(
            f"{r['flood']['flood_valid']['p99_ms'] / r['flood']['no_flood']['p99_ms']:.2f}x "
            f"at {r['tenants']:,}"
            for r in rows
        )
        worst = ", ".join(
            f"{_slowest_p99(r, 'changes'):.0f} ms at {r['tenants']:,}"
            + (
                f" ({_slowest_p99(r, 'changes_admin'):.0f} ms through an admin server)"
                if "changes_admin" in r
                else ""
            )
            for r in rows
        )
        rounds = large.get("alternate")
        side = ""
        if rounds:
            side = (
                f"; alternating on one server ({len(rounds)} rounds, median of the ratios): "
                f"{alternate_ratios(rounds, 'hot'):.2f}x, and "
                f"{alternate_ratios(rounds, 'hot_many'):.2f}x against the few tenants "
                "sending as many distinct tokens"
            )
        lines += [
            f"- memory {mode}: {large['tenants']:,} tenants verify at {ratio:.2f}x the req/s of "
            f"{small['tenants']:,} (target: within 10%, i.e. >= 0.90x){side}",
            f"- memory {mode}: valid p99 under the flood / without it: {flood} (target <= 2x); "
            "database calls during the flood in the table",
            f"- memory {mode}: the slowest change kind's p99: {worst} (target <= 50 ms)",
        ]
    return "\n".join(lines)


def warmth(results: Sequence[Result]) -> str:
    """How Redis was warmed before each server, and the in-memory footprint estimate."""
    lines = []
    for r in results:
        took = r.get("prefill_seconds")
        how = f"prefilled in {took:.1f} s" if took is not None else "cold (--cold)"
        warmed = r["verify"].get("warmed") or []
        each = ", ".join(f"{n:,} tenants in {t:.1f} s" for n, t in warmed)
        held = f"; warmed: {each}" if warmed else ""
        lines.append(f"- {r['tenants']:,} tenants, memory {r['memory']}: Redis {how}{held}")
    sizes = {r["tenants"]: r["footprint"] for r in results if r.get("footprint")}
    for size, f in sizes.items():
        lines.append(
            f"- holding {f['tenants']:,} tenants (of {size:,}) in one `VerifyMemory`: "
            f"+{f['mib']:.1f} MiB RSS, {f['kib_per_tenant']:.2f} KiB a tenant (estimate)"
        )
    return "\n".join(lines)


#: The admin route (method and template suffix) each kind of change calls.
ROUTES = {
    "rotate": ("POST", "/rotate"),
    "suspend": ("PATCH", "/<tenant_id>"),
    "resume": ("PATCH", "/<tenant_id>"),
    "user revoke": ("POST", "/revoke"),
    "jti revoke": ("POST", "/tokens/revoke"),
}


def _server_side(m: dict[str, float], kind: str) -> str:
    """Mean time in the server of this kind's route (suspend and resume share one) and the
    mean invalidation wait of every change, ms ("-": not measured, or none recorded)."""
    method, suffix = ROUTES[kind]
    counted = [k.removesuffix("_count") for k in m if k.endswith("_count")]
    jti = suffix == "/tokens/revoke"
    routes = [
        k
        for k in counted
        if k.startswith(f"admin {method} ")
        and k.endswith(suffix)
        and k.endswith("/tokens/revoke") == jti
    ]

    def mean(keys: list[str]) -> str:
        count = sum(m.get(f"{k}_count", 0.0) for k in keys)
        total = sum(m.get(f"{k}_sum", 0.0) for k in keys)
        return f"{total / count * 1e3:.1f}" if count else "-"

    return f"{mean(routes)} / {mean(['invalidation_wait'])}"


def one_line(r: Result) -> str:
    """A progress line for one size and mode."""
    v, f = r["verify"], r["flood"]
    worst = max((max(ms, default=0.0) for ms in r["changes"]["timings_ms"].values()), default=0)
    return (
        f"{r['tenants']:>7,} tenants, memory {r['memory']:3}: {v['rps']:,.0f} req/s, p99 "
        f"{v['p99_ms']:.1f} ms, RSS {sum(v['rss_mib']):.0f} MiB; flood p99 "
        f"{f['no_flood']['p99_ms']:.1f} -> {f['flood_valid']['p99_ms']:.1f} ms; slowest change "
        f"{worst:.0f} ms; load {v['load']}"
    )


def document(results: Sequence[Result], meta: dict[str, Any]) -> str:
    """docs/performance-scale.md: date, machine, method, the three tables, notes."""
    m, cfg = meta["machine"], meta["config"]
    seeding = results[0]["seeding"] if results else "-"
    sampled = {r["tenants"]: r["script_tokens"] for r in results}
    return f"""# Scale: many tenants, unknown-id floods, changes under load (issue 14)

Written by `make bench-scale` (bench/scale.py{" " + meta["args"] if meta["args"] else ""}) on
{meta["date"]}; `make bench` does not touch this file. Machine: {m["cpu_model"]}, {m["cores"]}
cores (usable: {m["usable_cores"]}), kernel {m["kernel"]}; load average at the start
{" / ".join(f"{x:.2f}" for x in m["loadavg"])}, at the end
{" / ".join(f"{x:.2f}" for x in meta["loadavg_end"])} (and beside every row below). wrk shares
the cores with the server, PostgreSQL and Redis, and this machine is shared with other work:
compare memory off and on side by side, not absolutes across runs.

## Method

- Server: `tenantauth serve` in production mode (PostgreSQL + Redis), {cfg["workers"]} workers
  of the default server (granian), the environment bench/verify_http.py gives it (metrics and INFO request log lines as
  they ship), plus `TENANTAUTH_ADMIN_RATE_LIMIT` and `TENANTAUTH_ADMIN_IP_RATE_LIMIT` raised to
  1,000,000 a minute so that no change of the last table is a 429. "memory on" is
  `TENANTAUTH_VERIFY_MEMORY=true` (the production default; memory off is `false`). Memory off
  runs first on each database, since
  the first server verifying from memory declares it there.
- Seeding: {seeding}; one token per tenant (TTL 1 h). Each size has a database and a Redis DB
  of its own.
- Tokens wrk sends: {", ".join(f"{n:,} of {t:,} tenants" for t, n in sampled.items())}; each
  request picks one at random (a Lua script reading them from a file, seeded per thread).
  Each server is warmed {cfg["warm_seconds"]:g} s with the same script, then measured
  {cfg["seconds"]:g} s with `wrk -t2 -c32 --latency --timeout=2s`. A worker holds at most
  100,000 tenants in memory (`MemoryPolicy.capacity`); "from memory / Redis / DB" counts the
  measured run's verifications by `tenantauth_cache_reads_total` outcome. Worker RSS is
  `VmRSS` of each worker (/proc) right after the measured run.
- Flood: two wrk at once (`-t1 -c16` each, {cfg["seconds"]:g} s), the first always sending
  valid tokens. No flood: the second sends valid tokens too. Flood: the second sends tokens
  of random unknown tenant ids (`kid` = `tid` = `ghost-<16 hex>`, {cfg["unknown"]:,} distinct
  ids at most, picked at random), so about half the requests are unknown ids. The p99 is the
  first wrk's. "ruled out" and "database calls" are the server's own counters over the flood
  run (`tenantauth_cache_reads_total{{outcome="ruled_out"}}`,
  `tenantauth_dependency_call_duration_seconds_count{{dependency="database"}}`). Database
  calls also count the valid tokens' misses and, memory on, each worker's first load of a
  tenant it did not hold yet: compare them with the ruled-out count, not with zero.
- Changes: while `wrk -t2 -c32` verifies with the same random tokens, {cfg["changes"]} rounds
  of, one after another from this process over HTTP (a new connection each, as `call` in
  tests/e2e/harness.py does): suspend, resume and jti revoke (`POST …/tokens/revoke` of the
  token wrk sends) of tenant a; user revoke (`POST …/users/<sub>/revoke` of that token's
  subject) and rotate of tenant b; a and b tenants wrk is verifying. Before them, under the
  same load, 2 untimed rounds per worker of the changing server (bench/scale_load.py
  `warm_up`: a fresh process's first admin calls pay one-time costs, as its first
  verifications do before wrk's warm-up; until session 14 they were timed), the tokens they
  revoked renewed after. The verify run's 401s
  are expected (tokens revoked on purpose) and not errors; "admin non-2xx" counts the changes
  that failed. With {cfg["changes"]} calls, p99 is close to the maximum. The latencies are
  the client's (this process: connect, queue behind wrk's 32 connections, answer); beside
  them, from the server's metrics over the same calls, the mean time from the request
  reaching Flask to its response (`tenantauth_http_request_duration_seconds` of the route)
  and the mean wait for the workers' acknowledgements (`tenantauth_invalidation_wait_seconds`,
  memory on only). Memory on (the production default), the phase runs twice: "same server"
  sends the admin calls to the server wrk loads; "admin server" sends them to a
  `TENANTAUTH_ROLE=admin` server started beside it ({cfg["workers"]} workers, the same
  database and Redis; docs/design.md, "Changes under load wait for the GIL"), the changed
  tenants' tokens renewed in between. The loaded server stays `all` (its verify path is the
  `public` role's).

## Against issue 14's targets

{targets(results)}

## Warming, and what memory costs

Before each server starts, every token wrk will send is verified once in this process (16
threads, through the seeding Services, which fill the same Redis), so the server meets a
warm Redis, as in a steady state, rather than a cold one; an entry lives 300 s (± 10 %), so
when prefilling takes minutes the oldest entries expire during the runs: the "Redis / DB
(miss)" counts say how it went. A worker warms its own memory: right after it registers
its lease (at its first verification), it loads every tenant from the database a page of
1,000 at a time (domain/verifying/warming.py); with memory on, the measured run starts only once every
worker logged that it finished ("warmed" below, each worker's tenants and seconds, under the
warm-up's load). Beside it, the RSS growth of filling a `VerifyMemory` (domain/verifying/memory.py) in
process with the snapshots a worker would load, as a cross-check of the workers' RSS.

{warmth(results)}

## Many tenants: GET /v1/verify

{verify_table(results)}

The rows above are separate servers minutes apart on a shared machine, so their ratio
carries the machine's drift. The same comparison without it: on the largest size's server,
right after its measured run, rounds of three runs each: the tokens of {min(sampled)} tenants
only (one each, as the small size sends); as many distinct tokens as the last run, all of
those {min(sampled)} tenants; one token of every tenant, as above. The second isolates the
number of tenants from the number of distinct tokens: a verifier memoises the parse and the
200 body of the last 2,048 tokens it verified (domain/tokens.py, api/lean_verify.py), which a
few tokens fit and 100,000 do not. "lopsided": one worker did less than a third of the work
(its CPU seconds against the other's, bench/common.py `lopsided`) — granian's workers share one accept queue, and now
and then one accepts all of wrk's 32 connections (docs/design.md, "One accept queue, and its
price").

{alternate_table(results)}

## Unknown-id flood (50/50 with valid tokens)

{flood_table(results)}

## Changes while verify runs at full load

{changes_table(results)}
"""
