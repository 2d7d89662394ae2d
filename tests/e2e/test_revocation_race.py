"""The user and jti revocation guarantee, end to end: once POST …/users/{username}/revoke or
POST …/tokens/revoke has returned, no verifier process of any replica accepts the revoked
token, other tokens (another user's; for a jti, the same user's other token) are unaffected,
and a token issued to the same user afterwards verifies at once on every worker.

Same method as test_rotation_race.py (tests/e2e/harness.py): client processes loop
GET /v1/verify and record when each request's send started (CLOCK_MONOTONIC, shared by all
processes); the servers' access logs say which worker answered each labelled request.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    Admin,
    Fleet,
    Record,
    Server,
    Window,
    call,
    combined,
    served_by,
    server_errors,
    statuses,
    wait_served,
    window,
)
from tests.support import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

CLIENTS = 4
#: Revocations per scenario: the first is careful (every worker accepted the token before,
#: every worker refused it after), the rest are quick, more chances to catch a race.
REVOCATIONS = 6
AFTER_SECONDS = 1.5
RAPID_AFTER_SECONDS = 0.25
FRESH_MAX_REQUESTS = 300
SCENARIO_SECONDS = 20.0


@pytest.fixture(params=[True, False], ids=["memory", "exact"])
def verify_memory(request: pytest.FixtureRequest) -> bool:
    """Every race here runs against servers verifying from memory and on the exact path."""
    return bool(request.param)


def _sleep_until(monotonic_ns: int) -> None:
    time.sleep(max(0.0, (monotonic_ns - time.monotonic_ns()) / 1e9))


def _revoke(port: int, path: str, body: Any = None) -> tuple[dict[str, Any], int]:
    """POST an admin revoke; return its JSON and monotonic_ns when the reply was complete."""
    reply = call(port, "POST", path, token=ADMIN_TOKEN, body=body, probe="admin")
    returned = time.monotonic_ns()
    assert reply.status == 200, reply
    return reply.json(), returned  # type: ignore[no-any-return]


def _fresh_everywhere(
    servers: list[Server], jwt: str, probe: str, problems: list[str]
) -> Counter[int]:
    """Verify ``jwt`` on new connections, round-robin over ``servers``, until every worker
    answered it with 200; return the statuses seen (the caller asserts all are 200)."""
    want = set().union(*(s.pids for s in servers))
    logs = [s.access_log for s in servers if s.access_log]
    seen: Counter[int] = Counter()
    for sent in range(1, FRESH_MAX_REQUESTS + 1):
        server = servers[sent % len(servers)]
        seen[call(server.port, "GET", "/v1/verify", token=jwt, probe=probe).status] += 1
        if sent % 10 == 0 and want <= served_by(logs, probe, 200):
            return seen
    problems += wait_served(servers, probe, 200, timeout=2.0)  # the log may lag
    return seen


def _revocation_race(servers: list[Server], tmp_path: Path, kind: str) -> None:
    """Revoke alice's current token REVOCATIONS times while CLIENTS processes verify it.

    ``kind`` "user": log alice out everywhere (bystander: bob's token). "jti": revoke just that
    token (bystander: another token of alice, issued before and never revoked).
    """
    assert kind in {"user", "jti"}
    begun = time.monotonic()
    admins = [Admin(s.port) for s in servers]
    admins[0].create_tenant("acme")
    current = admins[-1].issue("acme", "alice")
    bystander = admins[0].issue("acme", "bob" if kind == "user" else "alice")
    events: list[tuple[str, str, int]] = []
    fresh: Counter[int] = Counter()
    problems: list[str] = []
    with Fleet(tmp_path, [s.port for s in servers], CLIENTS) as fleet:
        fleet.bystander("bystander", bystander)
        for cycle in range(1, REVOCATIONS + 1):
            careful = cycle == 1
            label = f"alice-{kind}-{cycle}"
            fleet.token(label, current)
            problems += wait_served(servers, label, 200, everywhere=careful)  # warm, accepted
            via = cycle % len(servers)
            base = "/v1/admin/tenants/acme/{}/revoke"
            if kind == "user":
                body, returned = _revoke(servers[via].port, base.format("users/alice"))
                assert body["version"] == cycle, body
            else:
                body, returned = _revoke(
                    servers[via].port, base.format("tokens"), {"token": current}
                )
                assert body == {"revoked": True}
            events.append((label, f"{kind} revoke #{cycle} via {servers[via].name}", returned))
            current = admins[(via + 1) % len(admins)].issue("acme", "alice")
            probe = f"{label}-fresh"
            if careful:
                fresh += _fresh_everywhere(servers, current, probe, problems)
            else:
                fresh += Counter(
                    call(s.port, "GET", "/v1/verify", token=current, probe=probe).status
                    for s in servers * 2
                )
            _sleep_until(returned + int((AFTER_SECONDS if careful else RAPID_AFTER_SECONDS) * 1e9))
            if careful:  # every worker refused the revoked token
                problems += wait_served(servers, label, 401, timeout=3.0)
            if time.monotonic() - begun > SCENARIO_SECONDS:
                problems.append(f"stopped after {cycle} revocations: over {SCENARIO_SECONDS} s")
                break
        records = fleet.stop()
    windows = [window(records, label, event, returned) for label, event, returned in events]
    print(
        f"\n{kind} revoke: {len(servers)} server(s) x {servers[0].workers} workers, "
        f"{CLIENTS} clients: {len(records)} requests in {time.monotonic() - begun:.1f} s"
    )
    print(windows[0].summary())
    print(combined(windows[1:]).summary().replace("rotations", "quick revocations"))
    print(f"fresh tokens of alice right after each call: {dict(fresh)}")
    _check(windows, records, servers, fresh, problems)


def _check(
    windows: list[Window],
    records: list[Record],
    servers: list[Server],
    fresh: Counter[int],
    problems: list[str],
) -> None:
    """Revoked means revoked for every request sent after the call returned; the token was
    accepted before; a newer token works at once; the bystander never noticed; no 5xx."""
    for w in windows:
        assert w.accepted_after == 0, (
            f"{w.event}: the revoked token was accepted {w.accepted_after} time(s) by requests "
            f"sent after the call returned, e.g. {w.late_accepts[:3]}"
        )
        accepted = w.accepted_before + w.in_flight[200]
        assert accepted > 0, f"{w.event}: never accepted before: the test proves nothing"
        assert w.rejected_after > 0, f"{w.event}: nothing was sent after the call returned"
    assert set(fresh) == {200}, f"a token issued after the call was refused: {fresh}"
    assert not problems, "\n".join(problems)
    seen = statuses(records)
    assert set(seen) <= {200, 401}, f"unexpected statuses (0 = connection error): {seen}"
    assert not server_errors(servers), f"5xx answers: {server_errors(servers)}"
    bystander = statuses(records, "bystander")
    print(f"bystander token: {bystander.total()} requests, statuses {dict(bystander)}")
    assert bystander.total() > 0
    assert set(bystander) == {200}, f"the revocation hurt another token: {bystander}"


def test_user_revoke_rejects_at_once_on_every_worker(server: Server, tmp_path: Path) -> None:
    """After a user revoke returns no worker accepts the old token; bob's and new ones verify."""
    _revocation_race([server], tmp_path, "user")


def test_token_revoke_rejects_at_once_on_every_worker(server: Server, tmp_path: Path) -> None:
    """After a jti revoke returns no worker accepts it; the user's other and new tokens verify."""
    _revocation_race([server], tmp_path, "jti")


def test_user_revoke_rejects_at_once_on_every_replica(
    replicas: list[Server], tmp_path: Path
) -> None:
    """A user revoke through one replica is honoured by every worker of both replicas."""
    _revocation_race(replicas, tmp_path, "user")
