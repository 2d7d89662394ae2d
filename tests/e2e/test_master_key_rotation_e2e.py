"""Master-key rotation with real servers: `tenantauth master-key rotate` runs as its own process
while a replica holding both keys keeps verifying, and a replica that lacks the old key fails
closed until the re-wrap reaches the tenant (README, "Master-key rotation")."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections import Counter
from pathlib import Path

from tests.e2e.harness import TENANTAUTH, Admin, Launch, call, production_environ
from tests.support import MASTER_KEY_B64

NEW_B64 = base64.b64encode(bytes(range(32, 64))).decode()
TENANT_IDS = [f"t{n:02d}" for n in range(12)]
WORKERS = 2


def verify(port: int, token: str) -> int:
    """Return the status of GET /v1/verify for ``token`` on a fresh connection."""
    return call(port, "GET", "/v1/verify", token=token).status


def test_rotate_while_serving_and_a_replica_without_the_old_key_fails_closed(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """Before the re-wrap, the new-key-only replica answers 503 (never 200/500) on every
    worker; during it, the both-keys replica answers 200 throughout; after it, every token
    issued under the old key verifies on the new-key-only replica."""
    base = production_environ(pg_url, redis_url, tmp_path / "access.log")
    old = launch("old", base, workers=WORKERS)
    admin = Admin(old.port)
    for tenant_id in TENANT_IDS:
        admin.create_tenant(tenant_id)
    tokens = [admin.issue(t) for t in TENANT_IDS]
    both_env = base | {
        "TENANTAUTH_MASTER_KEY": NEW_B64,
        "TENANTAUTH_MASTER_KEYS_OLD": MASTER_KEY_B64,
    }
    both = launch("both", both_env, workers=WORKERS)
    only_new = launch("only-new", base | {"TENANTAUTH_MASTER_KEY": NEW_B64}, workers=WORKERS)

    refused = Counter(verify(only_new.port, t) for t in tokens * 2)
    assert refused == Counter({503: len(tokens) * 2})
    body = call(only_new.port, "GET", "/v1/verify", token=tokens[0]).json()
    assert body["code"] == "secret_decryption_failed"

    during: Counter[int] = Counter()
    stop = threading.Event()

    def keep_verifying() -> None:
        while not stop.is_set():
            during.update(verify(both.port, t) for t in tokens)

    reader = threading.Thread(target=keep_verifying)
    reader.start()
    try:
        rotated = subprocess.run(
            [str(TENANTAUTH), "master-key", "rotate", "--batch", "5", "--json"],
            env=both_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop.set()
        reader.join()
    assert rotated.returncode == 0, rotated.stderr
    summary = json.loads(rotated.stdout)
    assert (summary["rewrapped"], summary["failed"]) == (len(TENANT_IDS), [])
    assert during.keys() == {200} and during[200] >= len(tokens)

    assert Counter(verify(only_new.port, t) for t in tokens * 2) == Counter({200: len(tokens) * 2})
