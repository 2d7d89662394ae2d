"""Issue 14: ``client_credentials`` issuance over HTTP, two source trees side by side.

Usage: ``python bench/token_http.py BEFORE_SRC AFTER_SRC [--runs N] [--seconds S]`` with the
test services' environment. Starts ``tenantauth serve`` (2 workers of the default server, production mode
as bench/verify_http.py starts it) once with ``PYTHONPATH=BEFORE_SRC`` and once with
``AFTER_SRC``, on one database and Redis DB, each with its own tenant and client (seeded as
bench/issuance.py seeds its own); then warms both and runs wrk with ``make bench``'s settings
(``-t2 -c32``) ``N`` rounds, alternating which server goes first. Prints tokens/s per run,
the server's CPU per token (main process and workers, from /proc: what a shared machine
distorts least), the medians, non-2xx counts and the load average before and after. Only one
server is under load at a time; the idle one costs next to nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import claimed_redis, worker_split, wrk  # bench/common.py
from issuance import post_script  # bench/issuance.py
from run import postgres_database  # bench/run.py
from tests.e2e.harness import HOST, Server, call, children_of, start_server, wait_ready
from tests.support import ADMIN_TOKEN
from verify_http import tenantauth_environ  # bench/verify_http.py

FORM = "grant_type=client_credentials&scope=read"


def seed(port: int, tenant: str) -> str:
    """Create ``tenant`` and a client_credentials client; return its Basic credential."""

    def admin(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = call(port, "POST", path, token=ADMIN_TOKEN, body=body)
        assert reply.status == 201, reply
        return dict(reply.json())

    admin("/v1/admin/tenants", {"id": tenant, "name": tenant})
    body = {"name": "bench", "scopes": ["read"], "grant_types": ["client_credentials"]}
    client = admin(f"/v1/admin/tenants/{tenant}/clients", body)
    pair = f"{client['client_id']}:{client['client_secret']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def main() -> None:
    """Start both servers, measure alternately, print the runs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as pg, claimed_redis() as rd:
        servers: dict[str, Server] = {}
        urls, scripts = {}, {}
        try:
            for name, src in (("before", args.before), ("after", args.after)):
                env = {**tenantauth_environ(pg, rd), "PYTHONPATH": f"{src.resolve()}"}
                server = start_server(Path(tmp), name, env, workers=2)
                servers[name] = server
                try:
                    wait_ready(server, timeout=90)
                except BaseException:  # pytest's Failed: say why before giving up
                    print(server.stderr.read_text(errors="replace")[-3000:], file=sys.stderr)
                    raise
                basic = seed(server.port, f"bench-{name}")
                urls[name] = f"http://{HOST}:{server.port}/v1/tenants/bench-{name}/token"
                scripts[name] = post_script(Path(tmp) / f"{name}.lua", FORM, basic)
            runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for name in runs:
                wrk(urls[name], 2, script=scripts[name])
            for round_ in range(args.runs):
                order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
                for name in order:
                    server = servers[name]
                    # The main process first, then each worker (it and the split: their CPU).
                    pids = [server.proc.pid, *sorted(children_of(server.proc.pid))]
                    with worker_split(pids) as moved:
                        run = wrk(urls[name], args.seconds, script=scripts[name])
                    run["cpu_us"] = sum(moved["split"]) / run["requests"] * 1e6
                    run["split"] = moved["split"][1:]  # each worker's CPU seconds
                    runs[name].append(run)
        finally:
            for server in servers.values():
                server.stop()
    print(f"load average at start {load_start}, at end {os.getloadavg()}")
    print(f"wrk -t2 -c32 -d{args.seconds:g}s, {args.runs} alternating rounds; tokens/s per run")
    for name, got in runs.items():
        rps = [round(r["rps"]) for r in got]
        bad = sum(r["non_2xx"] + r["socket_errors"] for r in got)
        cpu = [round(r["cpu_us"]) for r in got]
        split = ["/".join(f"{x:.1f}" for x in r["split"]) for r in got]
        print(
            f"{name:7} {rps} median {statistics.median(rps):.0f}  server CPU µs/token {cpu} "
            f"median {statistics.median(cpu):.0f}  errors {bad:.0f}\n"
            f"        each worker's CPU seconds per run: {split}"
        )


if __name__ == "__main__":
    main()
