"""Issue 14's output: the comparison table, docs/performance.md and its SVG chart.

The SVG is drawn by hand (no plotting dependency): one horizontal bar per contender, its length
the median req/s, its p99 written beside it; tenantauth's bar in its own colour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any

from verify_http import (
    NAIVE,
    NODE_KEYOBJECT,
    NODE_STRING,
    TENANTAUTH,
    TENANTAUTH_EXACT,
    TENANTAUTH_GUNICORN,
)

#: What each contender checks on GET /v1/verify, for the doc.
CHECKS = {
    TENANTAUTH: "strict JWS shape and header (alg=HS256, typ, kid), signature, exp/nbf/iat, "
    "lifetime, iss, aud, tid = kid, key version (rotation), tenant status, jti and subject "
    "revocation; a tenant this worker holds is answered from its memory (no Redis round "
    "trip), kept exact by leases and acknowledged invalidation; metrics and a JSON INFO line "
    "per request",
    TENANTAUTH_GUNICORN: "as tenantauth, served by gunicorn (`tenantauth serve --server "
    "gunicorn`: gthread workers, 4 threads each, HTTP parsed in Python) instead of granian "
    "(HTTP in Rust threads, 4 blocking threads per worker), the default",
    TENANTAUTH_EXACT: "as tenantauth, with `TENANTAUTH_VERIFY_MEMORY=false`: tenant and both "
    "revocation marks in one Redis round trip per verification (the default before issue 14)",
    NAIVE: "signature (HS256 only), exp, iss, aud (PyJWT `decode`); secret by `kid`, one Redis "
    "GET; no revocation, rotation, tenant status or tid check, no logs, no metrics",
    NODE_STRING: "signature (HS256 only), exp (only when present: jsonwebtoken does not "
    "require it), iss, aud (jsonwebtoken `verify`, the secret as a string); secret by `kid`, "
    "one Redis GET; no revocation, rotation, tenant status or tid check, no logs, no metrics",
    NODE_KEYOBJECT: "as node (string), the secret wrapped in `crypto.createSecretKey` first",
}


def node_best(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The Node row with the higher median req/s."""
    nodes = [r for r in rows if r["name"] in (NODE_STRING, NODE_KEYOBJECT)]
    return max(nodes, key=lambda r: r["rps"]["median"])


def _row_of(rows: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


def http_table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table: median req/s (min–max), p50, p99 (min–max), the ratios of req/s and
    p99 to the naive baseline and to the faster Node form, the non-2xx and socket-error counts."""
    naive, node = _row_of(rows, NAIVE), node_best(rows)
    lines = [
        "| server | req/s median (min–max) | p50 ms | p99 ms median (min–max) "
        "| req/s ÷ naive | req/s ÷ node best | p99 ÷ naive | p99 ÷ node best "
        "| non-2xx / socket errors | lopsided runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rps, p99 = row["rps"], row["p99_ms"]
        cells = [
            f"{rps['median']:,.0f} ({rps['min']:,.0f}–{rps['max']:,.0f})",
            f"{row['p50_ms']['median']:.2f}",
            f"{p99['median']:.2f} ({p99['min']:.2f}–{p99['max']:.2f})",
            f"{rps['median'] / naive['rps']['median']:.2f}x",
            f"{rps['median'] / node['rps']['median']:.2f}x",
            f"{p99['median'] / naive['p99_ms']['median']:.2f}x",
            f"{p99['median'] / node['p99_ms']['median']:.2f}x",
            f"{row['non_2xx']:.0f} / {row['socket_errors']:.0f}",
            _lopsided(row),
        ]
        lines.append(f"| {row['name']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _lopsided(row: dict[str, Any]) -> str:
    """ "k of n" runs in which one worker did too little (bench/common.py ``lopsided``); "-"
    for a server whose workers are not watched (the baselines)."""
    runs = row.get("runs") or []
    if not runs or "lopsided" not in runs[0]:
        return "-"
    return f"{row['lopsided']} of {len(runs)}"


def issuance_table(rows: Sequence[dict[str, Any]]) -> str:
    """The issuance rows (bench/issuance.py): median req/s (min–max), p50, p99, errors."""
    lines = [
        "| grant | tokens/s median (min–max) | p50 ms | p99 ms | non-2xx / socket errors "
        "| lopsided runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rps = row["rps"]
        cells = [
            f"{rps['median']:,.0f} ({rps['min']:,.0f}–{rps['max']:,.0f})",
            f"{row['p50_ms']['median']:.2f}",
            f"{row['p99_ms']['median']:.2f}",
            f"{row['non_2xx']:.0f} / {row['socket_errors']:.0f}",
            _lopsided(row),
        ]
        lines.append(f"| `{row['name']}` | {' | '.join(cells)} |")
    return "\n".join(lines)


def in_process_table(rows: Sequence[tuple[str, float]], runs: int) -> str:
    """The in-process rows (bench/run.py) as a markdown table, ratio to the first row."""
    base = rows[0][1]
    lines = [f"| what | ops/s (median of {runs}) | ÷ pyjwt.decode |", "|---|---:|---:|"]
    lines += [f"| {name.strip()} | {value:,.0f} | {value / base:.2f}x |" for name, value in rows]
    return "\n".join(lines)


def document(
    http: Sequence[dict[str, Any]],
    issued: Sequence[dict[str, Any]],
    in_process: Sequence[tuple[str, float]],
    meta: dict[str, Any],
) -> str:
    """docs/performance.md: date, machine, commands and settings, both tables, the caveats."""
    m, cfg = meta["machine"], meta["http"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg"])
    load_end = ", ".join(f"{x:.2f}" for x in meta["loadavg_end"])
    busy = max(m["loadavg"][0], meta["loadavg_end"][0]) > m["cores"]
    shared = (
        "\n**Other work shared the machine during this run** (a load average above the core "
        "count): every absolute figure is depressed and the spread (min–max) is wide; the "
        "alternation spreads that load over all servers, so the ratios stay fair on average.\n"
        if busy
        else ""
    )
    wrk_cmd = (
        f"wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['seconds']:g}s --latency "
        "-s tokens.lua http://127.0.0.1:PORT/v1/verify"
    )
    checks = "\n".join(f"- **{name}**: {text}." for name, text in CHECKS.items())
    return f"""# Performance: GET /v1/verify against its baselines (issue 14)

Written by `make bench{meta["make_args"]}` (bench/run.py) on {meta["date"]}; do not edit by hand,
run it again. Chart: [performance-verify.svg](performance-verify.svg).

**wrk shares the cores with the servers** (and with whatever else the machine runs), so the
absolute figures are this machine's on this day: read the **ratios**, which compare servers
measured alike, alternately, on the same cores.
{shared}
## Machine

- CPU: {m["cpu_model"]}; {m["cores"]} cores ({m["usable_cores"]} usable by the bench)
- Load average (1, 5, 15 min) at the start: {load}; at the end: {load_end}
- Kernel {m["kernel"]}; Python {meta["python"]}; Node {meta["node"]}; {meta["wrk"]}

## Over HTTP

![req/s per server, p99 annotated](performance-verify.svg)

{http_table(http)}

Method: {cfg["tenants"]} tenants created through tenantauth's admin API, each with an imported
secret and one token minted by tenantauth (`POST /v1/admin/tenants/{{id}}/tokens`); the secrets
written to the baselines' Redis DB under `tenant-secret:{{kid}}`. Every server verifies the same
tokens: a wrk Lua script rotates among them. Each server runs {cfg["workers"]} worker processes
(one per core). All four are started together and stay up; after a {cfg["warm_seconds"]:g} s warm-up
run each, {cfg["runs"]} rounds of `{wrk_cmd}` visit every server once, the order rotating by
round; the table gives the median of the rounds (min–max). "lopsided runs" counts the runs
in which one of tenantauth's workers did less than a third of the work (their CPU seconds):
granian's workers share one accept queue, and now and then one accepts all of wrk's
connections while the other idles, which halves that run (docs/design.md, "One accept queue,
and its price"); the median includes them. Before measuring, every server must
accept the first tokens and answer a forged one with 401. Any non-2xx response fails the bench.
PostgreSQL and Redis are the test servers on loopback, shared with the machine.

What each checks:

{checks}

So the baselines do less than tenantauth: the ratios price what tenantauth adds (revocation,
rotation, tenant status, strict parsing, metrics, request logs) on top of the same signature
and claim checks. The naive baseline's gunicorn sync workers do not keep connections alive, so
wrk reconnects for each of its requests. jsonwebtoken 9 tries a string secret as a public key
first (`createPublicKey`, which throws) and only then as a secret key
(node_modules/jsonwebtoken/verify.js): that failed parse, on every request, is the string
form's extra cost over the KeyObject form.

## Issuance (tenantauth)

`POST /v1/tenants/{{id}}/token`, one client (HTTP Basic; its secret checked by keyed HMAC) and
one user (its password checked against an argon2id hash with the parameters tenantauth ships);
{cfg["runs"]} runs per grant, alternating; `client_credentials` with the verify runs' wrk
settings, the password grant with `-t1 -c4 --timeout 30s` (argon2 is CPU-bound: more
connections would only queue):

{issuance_table(issued)}

## In process

Per-call rates in one Python process (`{meta["in_process_args"]}`), ratios to PyJWT `decode`
with the key in hand:

{in_process_table(in_process, meta["in_process_runs"])}

The verifier memoises the parse (shape, header, claims) of tokens that passed every check,
keyed by the token (at most 2,048 tokens of up to 1 KB each): a client sends its token again
and again until it expires. Signature, times, issuer, audience, tenant state and revocations
are checked on every call. The rows that repeat one token measure that memo hit; the row of
distinct tokens in turn measures a parse on every call. The HTTP runs above rotate among
100 tokens, so they hit the memo too.

## Measured elsewhere

Each has a file of its own, written by its own target (this file is rewritten whole):

- docs/performance-servers.md (`make bench-servers`): gunicorn against granian, on this verify,
  on a cheap verify and on a trivial app.
- docs/performance-leases.md (`make bench-leases`): the lease protocol with 10 to 400 simulated
  workers against one Redis: change latency, Redis commands and CPU, where it stops scaling.
- docs/performance-scale.md (`make bench-scale`): 100,000 tenants (throughput and worker RSS
  against 100), a flood of unknown-tenant tokens mixed 50/50 with valid ones, and rotate,
  suspend, user revoke and jti revoke latency under full verify load, with memory on and off.
- docs/performance-changes.md (`make bench-changes`, 2 minutes): those changes under full
  verify load again, through the loaded server and through an admin server beside it, next to
  probes that do no tenantauth work (a Redis and a PostgreSQL round trip, `/healthz`,
  `/readyz`) at the same moments: the floor any request meets on the machine at that load.
- docs/performance-algorithms.md (`make bench-algorithms`): each signing algorithm (EdDSA,
  ES256, RS256) beside HS256: µs per verify in process (a repeated token, a first-seen one, the
  signature check alone) and req/s over HTTP with one token and with 10,000 in turn.
"""


def svg(rows: Sequence[dict[str, Any]], caption: str) -> str:
    """A horizontal bar chart of median req/s per server, p99 written beside each bar."""
    width, left, bar_h, gap, top = 760, 170, 34, 16, 58
    scale = (width - left - 190) / max(r["rps"]["median"] for r in rows)
    height = top + len(rows) * (bar_h + gap) + 44
    font = 'font-family="Helvetica, Arial, sans-serif"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="GET /v1/verify req/s per server">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="20" y="28" {font} font-size="17" font-weight="bold" fill="#222">'
        "GET /v1/verify: requests per second (median), p99 latency beside each bar</text>",
    ]
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        length = max(1.0, row["rps"]["median"] * scale)
        colour = (
            "#d9622b"
            if row["name"] in (TENANTAUTH, TENANTAUTH_GUNICORN, TENANTAUTH_EXACT)
            else "#4a78b5"
        )
        label = f"{row['rps']['median']:,.0f} req/s · p99 {row['p99_ms']['median']:.1f} ms"
        parts += [
            f'<text x="{left - 10}" y="{y + bar_h / 2 + 5}" {font} font-size="14" '
            f'text-anchor="end" fill="#222">{escape(row["name"])}</text>',
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}"/>',
            f'<text x="{left + length + 8:.1f}" y="{y + bar_h / 2 + 5}" {font} font-size="13" '
            f'fill="#222">{escape(label)}</text>',
        ]
    parts.append(
        f'<text x="20" y="{height - 16}" {font} font-size="11" fill="#555">{escape(caption)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def today() -> str:
    """The UTC date and time, to the minute."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
