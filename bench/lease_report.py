"""The tables, chart and doc section of bench/lease_scaling.py (issue 14)."""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
from pathlib import Path
from typing import Any

START = "<!-- bench-leases:start -->"
END = "<!-- bench-leases:end -->"


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1), inclusive method: with 50 samples p99 is close to the max."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def per_change(row: dict[str, Any]) -> tuple[float, float]:
    """Redis commands and Redis CPU (ms) one change adds over the rest rate."""
    rest, chg = row["rest"], row["changes"]
    count = max(1, len(row["latency_ms"]))
    commands = (chg["commands_s"] - rest["commands_s"]) * chg["seconds"] / count
    cpu_ms = 10 * (chg["redis_cpu_pct"] - rest["redis_cpu_pct"]) * chg["seconds"] / count
    return commands, cpu_ms


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The results as two markdown tables: at rest, and during changes."""
    lines = [
        "At rest (no change):",
        "",
        "| N | Redis conns | cmd/s | EVALSHA+XREAD/s | Redis CPU % | listeners CPU % "
        "| machine busy % | load 1 min before → after |",
        "|" + "---:|" * 8,
    ]
    for row in rows:
        rest = row["rest"]
        lines.append(
            f"| {row['n']} | {row['connections']} | {rest['commands_s']:.0f} "
            f"| {rest['evalsha_s'] + rest['xread_s']:.0f} | {rest['redis_cpu_pct']:.1f} "
            f"| {rest['clients_cpu_pct']:.0f} | {rest['machine_busy_pct']:.0f} "
            f"| {row['load_before']:.1f} → {row['load_after']:.1f} |"
        )
    lines += [
        "",
        "During changes:",
        "",
        "| N | change p50 / p99 / max ms | polls/change | Redis cmds/change "
        "| Redis CPU ms/change | cmd/s | Redis CPU % | listeners CPU % | writer CPU % "
        "| machine busy % |",
        "|" + "---:|" * 10,
    ]
    for row in rows:
        chg, lat = row["changes"], row["latency_ms"]
        commands, cpu_ms = per_change(row)
        lines.append(
            f"| {row['n']} | {quantile(lat, 0.5):.1f} / {quantile(lat, 0.99):.1f} / {max(lat):.1f} "
            f"| {row['polls_per_change']:.1f} | {commands:.0f} | {cpu_ms:.2f} "
            f"| {chg['commands_s']:.0f} | {chg['redis_cpu_pct']:.1f} "
            f"| {chg['clients_cpu_pct']:.0f} | {row['writer_cpu_pct']:.0f} "
            f"| {chg['machine_busy_pct']:.0f} |"
        )
    return lines


def chart(rows: list[dict[str, Any]], width: int = 50) -> list[str]:
    """An ASCII chart: change p99 and Redis CPU during changes, against N."""
    p99 = [quantile(r["latency_ms"], 0.99) for r in rows]
    cpu = [r["changes"]["redis_cpu_pct"] for r in rows]
    top_ms, top_cpu = max(p99) or 1.0, max(cpu) or 1.0
    lines = [
        "```",
        f"{'N':>5}  change p99 (# = {top_ms / width:.2f} ms), Redis CPU (= = {top_cpu / width:.2f} %)",
    ]
    for row, ms, pct in zip(rows, p99, cpu, strict=True):
        lines.append(f"{row['n']:>5}  {'#' * round(width * ms / top_ms):<{width}} {ms:7.1f} ms")
        lines.append(f"{'':>5}  {'=' * round(width * pct / top_cpu):<{width}} {pct:7.1f} %")
    lines.append("```")
    return lines


def section(rows: list[dict[str, Any]], args: argparse.Namespace, lease: float) -> str:
    """The generated section of the doc: when, where, how, the table, the chart, the notes."""
    uname = os.uname()
    head = [
        START,
        f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {uname.nodename} "
        f"({uname.machine}, {os.cpu_count()} CPUs, redis-server {args.redis_version}); "
        f"L = {lease} s, {args.procs} listener processes, {args.changes} changes per N, one "
        f"every {args.interval} s, {args.rest_seconds:.0f} s at rest. Load average (1 min) before → after each row "
        "and the machine's busy share are in the table: the machine is shared.",
        "",
        *table(rows),
        "",
        *chart(rows),
    ]
    notes = [f"- N = {r['n']}: {r['note']}" for r in rows if r.get("note")]
    notes += [
        f"- N = {r['n']}: {r['unconfirmed']} changes raised UnconfirmedChangeError (the writer's own Redis call timed out, or the wait passed 3 L); their time is in the latencies"
        for r in rows
        if r["unconfirmed"]
    ]
    for row in rows:
        notes += [
            f"- N = {row['n']}, listener log: {count} × {msg!r}"
            for msg, count in row["messages"].items()
        ]
    return (
        "\n".join(
            [*head, "", *(notes or ["- No listener logged an error or registered again."]), END]
        )
        + "\n"
    )


def write_doc(path: Path, text: str) -> None:
    """Replace the section between the markers of ``path`` (append it if there is none)."""
    old = path.read_text() if path.exists() else "# Verifying from memory: how it scales\n\n"
    if START in old and END in old:
        before, rest = old.split(START, 1)
        old = before + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        old = old.rstrip("\n") + "\n\n" + text
    path.write_text(old)
