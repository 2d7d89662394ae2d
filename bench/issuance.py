"""Issue 14: token issuance per second at POST /v1/tenants/{id}/token (tenantauth only).

One tenant, one confidential client allowed ``client_credentials`` and ``password``, one user,
all created through the admin API. wrk POSTs the same form over and over: the
``client_credentials`` grant (HTTP Basic, the client secret checked by keyed HMAC) and the
``password`` grant (the same client, plus the user's password checked against its argon2id
hash with the parameters tenantauth ships). ``client_credentials`` runs with the verify runs'
wrk settings; the password grant with ``-t1 -c4 --timeout 30s``: argon2 is CPU-bound, so more
connections than workers x cores only queue, and wrk's default 2 s timeout would drop them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import stats, wrk
from tests.e2e.harness import HOST, call
from tests.support import ADMIN_TOKEN

TENANT = "bench-issuance"
GRANTS = ("client_credentials", "password")
PASSWORD_WRK = {"threads": 1, "connections": 4, "timeout": 30.0}


def seed(port: int) -> dict[str, str]:
    """Create the tenant, its client and user; return the Basic credential and the forms."""

    def admin(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = call(port, "POST", path, token=ADMIN_TOKEN, body=body)
        assert reply.status == 201, reply
        return dict(reply.json())

    admin("/v1/admin/tenants", {"id": TENANT, "name": TENANT})
    base = f"/v1/admin/tenants/{TENANT}"
    client = admin(
        f"{base}/clients", {"name": "bench", "scopes": ["read"], "grant_types": list(GRANTS)}
    )
    password = secrets.token_urlsafe(18)
    admin(f"{base}/users", {"username": "bench-user", "password": password})
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    return {
        "authorization": f"Basic {basic}",
        "client_credentials": "grant_type=client_credentials&scope=read",
        "password": f"grant_type=password&username=bench-user&password={password}&scope=read",
    }


def post_script(path: Path, body: str, authorization: str) -> Path:
    """Write a wrk Lua script POSTing ``body`` as a form with ``authorization``; return it."""
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Authorization"] = "{authorization}"\n',
        encoding="ascii",
    )
    return path


def measure(cfg: Any, port: int, workers: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Seed, then for each grant a warm-up and ``cfg.runs`` wrk runs (alternating grants);
    return one summary per grant, as verify_http.measure does (``workers``: the server's
    worker pids, to mark lopsided runs)."""
    forms = seed(port)
    url = f"http://{HOST}:{port}/v1/tenants/{TENANT}/token"
    scripts = {
        grant: post_script(cfg.tmp / f"{grant}.lua", forms[grant], forms["authorization"])
        for grant in GRANTS
    }

    def run(grant: str, seconds: float) -> dict[str, float]:
        kw: dict[str, Any] = {"threads": cfg.threads, "connections": cfg.connections}
        if grant == "password":
            kw = PASSWORD_WRK
        return wrk(url, seconds, script=scripts[grant], workers=workers, **kw)

    runs: dict[str, list[dict[str, float]]] = {grant: [] for grant in GRANTS}
    for grant in GRANTS:
        run(grant, cfg.warm_seconds)
    for round_ in range(cfg.runs):
        for grant in GRANTS[round_ % 2 :] + GRANTS[: round_ % 2]:
            runs[grant].append(run(grant, cfg.seconds))
    return [
        {
            "name": grant,
            **{key: stats([r[key] for r in got]) for key in ("rps", "p50_ms", "p99_ms")},
            "non_2xx": sum(r["non_2xx"] for r in got),
            "socket_errors": sum(r["socket_errors"] for r in got),
            "requests": sum(r["requests"] for r in got),
            "lopsided": sum(r.get("lopsided", 0) for r in got),
            "runs": got,
        }
        for grant, got in runs.items()
    ]
