"""Issue 15: what each signing algorithm's verify costs beside HS256, in process and over HTTP.

Usage: ``make bench-algorithms [ARGS=...]`` or ``.venv/bin/python bench/algorithms.py [--runs N]
[--duration S] [--in-process-runs N] [--distinct N] [--quick] [--no-write] [--out file.json]
[--report file.json]``
with ``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL`` set (``make
bench-algorithms`` sets them) and ``wrk``. Writes docs/performance-algorithms.md
(bench/algorithms_report.py); ``make bench`` does not touch it. ~4 minutes on 2 cores.

A database of its own and a claimed Redis DB (bench/common.py). The app is built as ``tenantauth
serve`` builds it (``create_app``: metrics, INFO JSON request lines, verifying from memory); one
tenant per algorithm (``bench-hs256``, ``bench-eddsa``, ``bench-es256``, ``bench-rs256``: keys
generated, RSA 2048 bits) created through the use case, and ``--distinct`` tokens each (10,000)
minted in process beforehand. Then:

1. In process, every tenant held in memory first, microseconds per call (wall and process CPU):
   - warm: ``svc.verifier.verify`` of one token again and again. The verified-token memo keeps
     the key object that accepted the signature, so the signature is not checked again;
   - first sight: PARSED_MEMO_MAX + 1,000 distinct tokens, each verified once per run: more
     than the memo keeps, so every call parses and checks the signature;
   - signature alone: ``jwt.check_signature(parsed, key)`` over the same tokens, parsed before.
   Each run measures every algorithm in turn (the order rotating by run); medians of the runs.
   How many signatures each kind checked is counted once, outside the timed runs.
2. Over HTTP: ``tenantauth serve`` as it ships (granian, one worker per core, metrics and request
   log lines on, verifying from memory), ``wrk -t2 -c32 --latency`` against GET /v1/verify:
   - warm: one token per algorithm (every worker's memo holds it after its first request);
   - first sight: the ``--distinct`` tokens in turn, the two wrk threads half the list apart,
     so a worker meets a token again only after thousands of others, more than its memo keeps.
   After a warm-up run each, ``--runs`` rounds visit every (algorithm, workload) once, the
   order rotating by round; medians, and the server's CPU per request from its workers' CPU
   seconds. Any non-2xx response voids the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import algorithms_report  # bench/algorithms_report.py
from common import claimed_redis, rotating_script, stats, wrk
from run import postgres_database  # bench/run.py
from tests.e2e.harness import HOST, Server, call, start_server, wait_ready
from tests.support import Backend, make_settings
from verify_http import READY_SECONDS, tenantauth_environ

from tenantauth.app import create_app
from tenantauth.crypto import jwt
from tenantauth.domain import tenants
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import PARSED_MEMO_MAX, TokenRequest, mint_token

DOCS = Path(__file__).resolve().parents[1] / "docs"
ALGS = ("HS256", "EdDSA", "ES256", "RS256")
KINDS = ("warm", "first sight", "signature")
WORKLOADS = ("warm", "first sight")
#: Tokens outlive the whole run (the tenants' default is 15 minutes).
TOKEN_TTL = 3600


@dataclass
class Config:
    """What one run measures (see the module docstring) and where its files go."""

    tmp: Path
    algs: tuple[str, ...] = ALGS
    runs: int = 3  # wrk rounds
    duration: float = 8.0  # seconds of one wrk run
    warm_seconds: float = 2.0  # wrk warm-up per (algorithm, workload); 0: none
    distinct: int = 10_000  # tokens per algorithm over HTTP
    in_process_runs: int = 7
    calls: int = 20_000  # warm calls per in-process run
    first_sight: int = PARSED_MEMO_MAX + 1_000  # distinct tokens per in-process run
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    threads: int = 2
    connections: int = 32


def tenant_id(alg: str) -> str:
    """The bench's tenant signing with ``alg``."""
    return f"bench-{alg.lower()}"


def seed(svc: Services, algs: Sequence[str], count: int) -> dict[str, list[str]]:
    """Create one tenant per algorithm (a generated key) and mint ``count`` tokens each, of
    distinct subjects; return them by algorithm."""
    tokens = {}
    for alg in algs:
        tenants.create_tenant(svc, tenant_id(alg), f"bench {alg}", alg=alg)
        with svc.storage.transaction() as tx:
            tenant = tx.get_tenant(tenant_id(alg))
        tokens[alg] = [
            mint_token(
                svc.keyring,
                svc.tokens,
                svc.clock,
                TokenRequest(tenant_id(alg), f"user-{n}", ttl=TOKEN_TTL),
                tenant,
                subject_version=0,
                subject_status=None,
            ).access_token
            for n in range(count)
        ]
    return tokens


@contextmanager
def served_app(pg_url: str, redis_url: str, tmp: Path) -> Iterator[Services]:
    """The Services of the app ``tenantauth serve`` builds (metrics, INFO JSON log lines,
    verifying from memory), the schema migrated; closed after. (Verifying writes no line:
    the request lines are the HTTP layer's.)"""
    settings = make_settings(
        Backend("postgres", pg_url, redis_url),
        tmp,
        log_level="INFO",
        log_format="json",
        verify_memory=True,
    )
    svc: Services = create_app(settings).extensions["tenantauth"]["services"]
    try:
        yield svc
    finally:
        svc.close()


def hold(svc: Services, tenant: str, token: str) -> None:
    """Verify ``token`` until this process holds ``tenant`` in memory (what is measured is
    that path). Raises AssertionError after 10 s."""
    deadline = time.monotonic() + 10
    while not svc.keys.held(tenant):
        assert time.monotonic() < deadline, f"{tenant} never reached memory"
        svc.verifier.verify(token)
        time.sleep(0.01)


def per_call(loop: Callable[[], int]) -> tuple[float, float]:
    """Run ``loop`` (it returns how many calls it made); return (wall µs, CPU µs) per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    calls = loop()
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        (time.process_time() - cpu) / calls * 1e6,
    )


def loops(svc: Services, tokens: list[str], calls: int) -> dict[str, Callable[[], int]]:
    """The three timed loops of one algorithm's tokens: warm (``tokens[0]``, ``calls``
    times), first sight (each token once), signature alone (each token, parsed before)."""
    verify, check = svc.verifier.verify, jwt.check_signature
    parsed = [jwt.parse_compact(token) for token in tokens]
    key = svc.keys.verification_key(parsed[0].tenant_id)
    assert key is not None

    def warm() -> int:
        for _ in range(calls):
            verify(tokens[0])
        return calls

    def first() -> int:
        for token in tokens:
            verify(token)
        return len(tokens)

    def signature() -> int:
        for one in parsed:
            check(one, key)
        return len(parsed)

    return {"warm": warm, "first sight": first, "signature": signature}


def signature_checks(loop: Callable[[], int]) -> tuple[int, int]:
    """Run ``loop`` once with ``jwt.check_signature`` counted; return (checks, calls)."""
    original, counted = jwt.check_signature, [0]

    def counting(parsed: jwt.CompactToken, key: jwt.VerificationKey) -> None:
        counted[0] += 1
        original(parsed, key)

    jwt.check_signature = counting  # type: ignore[assignment]  # tokens.py looks it up per call
    try:
        calls = loop()
    finally:
        jwt.check_signature = original
    return counted[0], calls


def in_process(svc: Services, tokens: dict[str, list[str]], cfg: Config) -> dict[str, Any]:
    """Measure the three kinds for every algorithm (see the module docstring); return the
    per-run (wall, CPU) µs by kind and algorithm, and the signature checks counted."""
    timed = {}
    for alg in cfg.algs:
        hold(svc, tenant_id(alg), tokens[alg][0])
        timed[alg] = loops(svc, tokens[alg][: cfg.first_sight], cfg.calls)
        timed[alg]["first sight"]()  # every token seen once: the runs measure the steady state
    checks = {}
    for alg in cfg.algs:
        first = signature_checks(timed[alg]["first sight"])
        svc.verifier.verify(tokens[alg][0])  # in the memo again: the warm runs' steady state
        checks[alg] = {"warm": signature_checks(timed[alg]["warm"]), "first sight": first}
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {
        kind: {alg: [] for alg in cfg.algs} for kind in KINDS
    }
    for run in range(cfg.in_process_runs):
        shift = run % len(cfg.algs)
        order = cfg.algs[shift:] + cfg.algs[:shift]
        for kind in KINDS:
            for alg in order:
                runs[kind][alg].append(per_call(timed[alg][kind]))
    for alg in cfg.algs:
        assert svc.keys.held(tenant_id(alg)), f"{alg}'s tenant left memory while measuring"
    return {"runs": runs, "checks": checks}


def forged(token: str) -> str:
    """``token`` with the first character of its signature changed (still canonical)."""
    head, signature = token.rsplit(".", 1)
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def scripts(cfg: Config, tokens: dict[str, list[str]]) -> dict[tuple[str, str], Path]:
    """The wrk Lua script of each (algorithm, workload): one token, or ``cfg.distinct`` in
    turn with the threads ``distinct / threads`` tokens apart."""
    found = {}
    for alg in cfg.algs:
        many = tokens[alg][: cfg.distinct]
        path = cfg.tmp / f"{alg}-warm.lua"
        found[alg, "warm"] = rotating_script(path, many[:1])
        path = cfg.tmp / f"{alg}-first-sight.lua"
        found[alg, "first sight"] = rotating_script(
            path, many, stride=max(1, len(many) // cfg.threads)
        )
    return found


def over_http(
    cfg: Config, pg_url: str, redis_url: str, tokens: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Start ``tenantauth serve`` on the seeded database, check its verdicts, then warm and
    measure every (algorithm, workload) in rotating rounds; return one summary each."""
    server = start_server(
        cfg.tmp, "algorithms", tenantauth_environ(pg_url, redis_url), workers=cfg.workers
    )
    try:
        wait_ready(server, timeout=READY_SECONDS)
        for alg in cfg.algs:
            for token in (tokens[alg][0], tokens[alg][cfg.distinct - 1]):
                assert call(server.port, "GET", "/v1/verify", token=token).status == 200, alg
            bad = call(server.port, "GET", "/v1/verify", token=forged(tokens[alg][0]))
            assert bad.status == 401, (alg, bad)
        return measure_http(cfg, server, scripts(cfg, tokens))
    finally:
        server.stop()


def measure_http(
    cfg: Config, server: Server, found: dict[tuple[str, str], Path]
) -> list[dict[str, Any]]:
    """Warm each contender, then ``cfg.runs`` rounds of one wrk run each, the order rotating
    by round; return per contender the medians (min, max) and the totals of errors."""
    names = list(found)
    workers = sorted(server.pids)
    url = f"http://{HOST}:{server.port}/v1/verify"

    def run(name: tuple[str, str], seconds: float) -> dict[str, Any]:
        got = wrk(
            url,
            seconds,
            threads=cfg.threads,
            connections=cfg.connections,
            script=found[name],
            workers=workers,
        )
        got["cpu_us"] = sum(got["split"]) / got["requests"] * 1e6 if got["requests"] else 0.0
        got["load"] = os.getloadavg()[0]
        return got

    if cfg.warm_seconds:
        for name in names:
            run(name, cfg.warm_seconds)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(cfg.runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(run(name, cfg.duration))
    keys = ("rps", "p50_ms", "p99_ms", "cpu_us")
    return [
        {
            "alg": alg,
            "workload": workload,
            **{key: stats([r[key] for r in got]) for key in keys},
            "non_2xx": sum(r["non_2xx"] for r in got),
            "socket_errors": sum(r["socket_errors"] for r in got),
            "requests": sum(r["requests"] for r in got),
            "lopsided": sum(r["lopsided"] for r in got),
            "runs": got,
        }
        for (alg, workload), got in runs.items()
    ]


def measure(cfg: Config, pg_url: str, redis_url: str) -> dict[str, Any]:
    """Seed, measure in process, then over HTTP (on the same database and Redis)."""
    started = time.monotonic()
    with served_app(pg_url, redis_url, cfg.tmp) as svc:
        tokens = seed(svc, cfg.algs, max(cfg.distinct, cfg.first_sight))
        seeded = time.monotonic() - started
        inside = in_process(svc, tokens, cfg)
    http = over_http(cfg, pg_url, redis_url, tokens)
    return {"seed_seconds": seeded, "in_process": inside, "http": http}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="wrk rounds, every contender once each (3)")
    parser.add_argument("--duration", type=float, help="seconds of one wrk run (8)")
    parser.add_argument("--in-process-runs", type=int, help="in-process runs (7)")
    parser.add_argument("--distinct", type=int, help="tokens per algorithm over HTTP (10000)")
    parser.add_argument("--quick", action="store_true", help="short runs (a check, no result)")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--report", type=Path, help="only write the doc from an --out file")
    args = parser.parse_args(argv)
    defaults = (1, 3.0, 3, 10_000) if args.quick else (3, 8.0, 7, 10_000)
    names = ("runs", "duration", "in_process_runs", "distinct")
    for name, value in zip(names, defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure; print the doc; write docs/performance-algorithms.md (unless --no-write)."""
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        write(algorithms_report.document(saved, saved["meta"]), args.no_write)
        return
    meta = algorithms_report.meta_start(shown(sys.argv[1:] if argv is None else argv))
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as pg_url,
        claimed_redis() as redis_url,
    ):
        cfg = Config(Path(tmp), runs=args.runs, duration=args.duration, distinct=args.distinct)
        cfg.in_process_runs = args.in_process_runs
        cfg.warm_seconds = 1.0 if args.quick else cfg.warm_seconds
        results = measure(cfg, pg_url, redis_url)
    meta = algorithms_report.meta_end(meta, {k: v for k, v in vars(cfg).items() if k != "tmp"})
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, **results}, indent=2, default=str))
    if sum(row["non_2xx"] for row in results["http"]):
        print("\n" + algorithms_report.document(results, meta))
        raise SystemExit("non-2xx responses: the figures are void, not written")
    write(algorithms_report.document(results, meta), args.no_write)


def shown(argv: Sequence[str]) -> str:
    """The arguments that shaped the figures (not where the output went), for the doc."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg == "--no-write":
            skip = False
            continue
        if arg in ("--out", "--report"):
            skip = True
            continue
        if not arg.startswith(("--out=", "--report=")):
            kept.append(arg)
    return " ".join(kept)


def write(text: str, dry: bool) -> None:
    """Print the doc; write it to docs/performance-algorithms.md unless ``dry``."""
    print("\n" + text)
    if not dry:
        (DOCS / "performance-algorithms.md").write_text(text, encoding="utf-8")
        print(f"wrote {DOCS / 'performance-algorithms.md'}")


if __name__ == "__main__":
    main()
