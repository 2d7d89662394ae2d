"""Issue 14's scale rows: many tenants, a flood of unknown ids, changes under load.

Usage: ``make bench-scale [ARGS='--tenants 20000 --quick']`` or ``.venv/bin/python
bench/scale.py [--tenants N] [--small N] [--seconds S] [--changes N] [--quick] [--no-write]``.
Needs ``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL`` (``make bench-scale``
sets them) and ``wrk``. Writes docs/performance-scale.md (``make bench`` does not touch it).

For each size (``--small`` tenants, then ``--tenants``): a database of its own and a claimed
Redis DB (bench/common.py), seeded **in process** through the use case
(``tenants.create_tenant`` on ``build_services`` of the server's own database and Redis, a few
threads) with one token each minted by ``issue_token`` (bench/scale_load.py). Then
``tenantauth serve`` in production mode (as bench/verify_http.py starts it: metrics and INFO
request log lines as they ship), first with verifying from memory off (`false`), then on (the
default since issue 14);
the admin rate limits are raised (1,000,000 a minute) so that the changes are not 429s. Each
server in turn answers:

1. verify: ``wrk -t2 -c32``, each request a token picked at random (bench/scale_load.py
   ``random_script``); req/s, p99, the share answered from memory, worker RSS after.
2. flood: two wrk at once, ``-t1 -c16`` each: one sends valid tokens, the other either
   valid tokens too (the no-flood baseline) or tokens of random unknown tenant ids (the
   flood); the first one's p99 in both; the server's metrics show no database read per id.
3. changes: while wrk verifies at full load, rotate, suspend + resume, user revoke and jti
   revoke of tenants being verified, one after another from this process, each call timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_load  # bench/scale_load.py
import scale_report  # bench/scale_report.py
from common import claimed_redis, machine
from report import today
from run import postgres_database, unknown_tenant_tokens
from tests.e2e.harness import Server, start_server, wait_ready
from verify_http import tenantauth_environ

from tenantauth.domain.policy import MemoryPolicy

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: High enough that no admin call of the changes phase is a 429 (tests/faults does the same).
ADMIN_RATE_LIMIT = "1000000"
MODES = {"off": "false", "on": "true"}


@dataclass
class Config:
    """What one run measures: sizes, wrk's length, how many changes, where its files go."""

    tmp: Path
    sizes: tuple[int, ...] = (100, 100_000)
    seconds: float = 10.0
    warm_seconds: float = 10.0
    changes: int = 50
    sample: int = 0  # tokens in the wrk script; 0: every tenant's
    unknown: int = 50_000
    prefill: bool = True  # Redis warm for every tenant wrk sends before each server starts
    rounds: int = 5  # alternating rounds, hot few vs every tenant, on the largest size's server
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)


@contextmanager
def server(
    cfg: Config, pg_url: str, redis_url: str, mode: str, role: str = "all"
) -> Iterator[Server]:
    """``tenantauth serve`` in production mode, verifying from memory ``mode`` ("on"/"off"),
    answering ``role`` (``TENANTAUTH_ROLE``), admin rate limits raised; ready when yielded,
    stopped after."""
    env = tenantauth_environ(pg_url, redis_url)
    env["TENANTAUTH_VERIFY_MEMORY"] = MODES[mode]
    env["TENANTAUTH_ADMIN_RATE_LIMIT"] = ADMIN_RATE_LIMIT
    env["TENANTAUTH_ADMIN_IP_RATE_LIMIT"] = ADMIN_RATE_LIMIT
    env["TENANTAUTH_ROLE"] = role
    started = start_server(cfg.tmp, f"scale-{mode}-{role}", env, workers=cfg.workers)
    try:
        wait_ready(started, timeout=60)
        yield started
    finally:
        started.stop()


def measure_size(cfg: Config, size: int) -> list[dict[str, Any]]:
    """Seed ``size`` tenants into a fresh database and Redis DB, then measure the three
    phases with memory off, then on; return one result per mode."""
    results = []
    with ExitStack() as stack:
        pg_url = stack.enter_context(postgres_database())
        redis_url = stack.enter_context(claimed_redis())
        seeding = scale_load.seed(pg_url, redis_url, size, cfg.tmp)
        seeded = stack.enter_context(seeding)
        print(f"seeded {size} tenants in {seeded.seconds:.0f} s ({seeded.how})", flush=True)
        sent = list(range(size))
        if cfg.sample and cfg.sample < size:
            sent = random.sample(sent, cfg.sample)  # spread over all tenants
        random.shuffle(sent)  # the changes take the first ones
        valid = cfg.tmp / f"valid-{size}.lua"
        ghosts = unknown_tenant_tokens(seeded.tokens[0], min(cfg.unknown, max(1_000, size)))
        unknown = scale_load.random_script(cfg.tmp / f"unknown-{size}.lua", ghosts)
        footprint = scale_load.held_footprint(seeded, min(size, MemoryPolicy().capacity))
        scripts = alternating_scripts(cfg, seeded, sent, valid) if size > min(cfg.sizes) else {}
        # Memory off first: the first server verifying from memory declares it in the
        # database, after which every change publishes an invalidation.
        for mode in MODES:
            # The previous mode's changes revoked some tokens: every mode starts with all valid.
            all_valid(cfg, seeded, sent, valid)
            warmed = scale_load.prefill(seeded, sent) if cfg.prefill else None
            with server(cfg, pg_url, redis_url, mode) as srv:
                result: dict[str, Any] = {"tenants": size, "memory": mode, "seeding": seeded.how}
                result["script_tokens"] = len(sent)
                result["prefill_seconds"], result["footprint"] = warmed, footprint
                result["verify"] = scale_load.verify(cfg, srv, valid, memory=mode == "on")
                if scripts:
                    result["alternate"] = scale_load.alternate(cfg, srv, scripts)
                result["flood"] = scale_load.flood(cfg, srv, valid, unknown)
                result["changes"] = scale_load.changes(cfg, srv, valid, seeded, sent)
                if mode == "on":  # the production default: changes through an admin server too
                    seeded.renew(result["changes"]["touched"])
                    all_valid(cfg, seeded, sent, valid)
                    with server(cfg, pg_url, redis_url, mode, role="admin") as admin:
                        result["changes_admin"] = scale_load.changes(
                            cfg, srv, valid, seeded, sent, through=admin
                        )
                print(scale_report.one_line(result), flush=True)
                results.append(result)
            seeded.renew(result["changes"]["touched"])
    return results


def all_valid(cfg: Config, seeded: scale_load.Seeded, sent: list[int], valid: Path) -> None:
    """(Re)write ``valid``, wrk's script, with the current token of every tenant in ``sent``:
    before each mode, and before the changes through an admin server (docs/design.md,
    "Changes under load wait for the GIL"), after a phase of changes revoked some."""
    scale_load.random_script(valid, [seeded.tokens[i] for i in sent])


def alternating_scripts(
    cfg: Config, seeded: scale_load.Seeded, sent: list[int], valid: Path
) -> dict[str, Path]:
    """The scripts of the alternating rounds ({} without rounds): ``hot``, the tokens of as
    many tenants as the small size (from the end of ``sent``: the changes take the first
    ones); ``hot_many``, as many new tokens as ``valid`` sends, all of those tenants; and
    ``every``, ``valid`` itself (one token of each tenant)."""
    if not cfg.rounds:
        return {}
    indexes = sent[-min(cfg.sizes) :]
    tokens = {
        "hot": [seeded.tokens[i] for i in indexes],
        "hot_many": scale_load.mint_many(seeded, indexes, len(sent)),
    }
    scripts = {
        name: scale_load.random_script(cfg.tmp / f"{name}-{len(sent)}.lua", listed)
        for name, listed in tokens.items()
    }
    return {**scripts, "every": valid}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000, help="the large size (100000)")
    parser.add_argument("--small", type=int, default=100, help="the small size (100)")
    parser.add_argument("--seconds", type=float, help="length of one measured wrk run (10)")
    parser.add_argument("--warm-seconds", type=float, help="wrk warm-up per server (10)")
    parser.add_argument("--changes", type=int, help="calls of each kind under load (50)")
    parser.add_argument("--sample", type=int, default=0, help="cap the tokens wrk picks from")
    parser.add_argument("--cold", action="store_true", help="no in-process Redis prefill")
    parser.add_argument(
        "--rounds", type=int, help="alternating rounds, hot few vs every tenant (5; 0: none)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a check, no result)")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--report", type=Path, help="only write the doc from an --out file")
    args = parser.parse_args(argv)
    defaults = (3.0, 2.0, 10, 1) if args.quick else (10.0, 10.0, 50, 5)
    names = ("seconds", "warm_seconds", "changes", "rounds")
    for name, value in zip(names, defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every size and mode; print the tables; write docs/performance-scale.md."""
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        write(scale_report.document(saved["results"], saved["meta"]), args.no_write)
        return
    meta: dict[str, Any] = {"date": today(), "machine": machine(), "args": " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = tuple(sorted({args.small, args.tenants}))
        cfg = Config(Path(tmp), sizes, args.seconds, args.warm_seconds)
        cfg.changes, cfg.sample, cfg.prefill = args.changes, args.sample, not args.cold
        cfg.rounds = args.rounds
        meta["config"] = {k: v for k, v in vars(cfg).items() if k != "tmp"}
        results = [r for size in cfg.sizes for r in measure_size(cfg, size)]
    meta["loadavg_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    write(scale_report.document(results, meta), args.no_write)


def write(text: str, dry: bool) -> None:
    """Print the doc; write it to docs/performance-scale.md unless ``dry``."""
    print("\n" + text)
    if not dry:
        (DOCS / "performance-scale.md").write_text(text, encoding="utf-8")
        print(f"wrote {DOCS / 'performance-scale.md'}")


if __name__ == "__main__":
    main()
