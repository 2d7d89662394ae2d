"""The revocation guarantee, end to end (issue 2, "The cache (Redis) and what rotation must
guarantee"): once rotate / suspend / delete has returned, no verifier process of any replica
accepts a token signed with the old secret, and new tokens verify at once everywhere.

Several client processes loop GET /v1/verify while the test process changes the tenant over
the admin API. Every request records when its send started (``time.monotonic_ns``: one
CLOCK_MONOTONIC for all processes, checked below) and its status; the servers' access logs
record which worker answered each labelled request, so "every worker" is checked, not hoped.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Admin,
    Fleet,
    Launch,
    Record,
    Server,
    Window,
    call,
    combined,
    production_environ,
    served_by,
    server_errors,
    statuses,
    wait_ready,
    wait_served,
    window,
)
from tests.support import ADMIN_TOKEN, HTTP_SERVER

pytestmark = pytest.mark.e2e

CLIENTS = 4
ROTATIONS = 5
#: How long the clients keep sending the revoked token after the first rotation (and after
#: suspend and delete) returned; later rotations use a shorter window to bound the runtime.
AFTER_SECONDS = 2.0
AFTER_LATER_ROTATIONS_SECONDS = 1.0
#: Bound on one whole scenario (warm-ups, rotations, checks), so a hang fails fast. A hang
#: detector, not a latency check: ~12-20 s alone; one run beside the whole integration suite
#: and a benchmarking helper (load 8) went past 40 s at its last rotation, with every check
#: green, so the bound leaves room for a loaded CI machine.
SCENARIO_SECONDS = 60.0
#: Quick rotations after the careful ones: more chances to catch the fill race, little time.
RAPID_ROTATIONS = 15
RAPID_AFTER_SECONDS = 0.25
FRESH_MAX_REQUESTS = 300
#: How long the tenant stays resumed before it is deleted.
RESUMED_SECONDS = 0.5


#: (server, verify from memory): both paths under the default server (granian). Under
#: gunicorn, the other supported server, the production default and the rotation race on
#: every worker only, to keep `make test` under its budget (``TEST_HTTP_SERVER=gunicorn``
#: runs every race and both paths there).
VARIANTS = [(None, True), (None, False)]
VARIANT_IDS = ["memory", "exact"]
WITH_GUNICORN = {
    "argvalues": [*VARIANTS, ("gunicorn", True)],
    "ids": [*VARIANT_IDS, "gunicorn"],
}


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def variant(request: pytest.FixtureRequest) -> tuple[str | None, bool]:
    """Every race here runs against servers verifying from memory and on the exact path
    (and the rotation race on every worker once more under gunicorn)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def verify_memory(variant: tuple[str | None, bool]) -> bool:
    """Whether this variant's servers verify from memory."""
    return variant[1]


@pytest.fixture
def http_server(variant: tuple[str | None, bool]) -> str:
    """This variant's HTTP server (None: the harness default, granian or TEST_HTTP_SERVER)."""
    return variant[0] or HTTP_SERVER


def _sleep_until(monotonic_ns: int) -> None:
    time.sleep(max(0.0, (monotonic_ns - time.monotonic_ns()) / 1e9))


def _fresh_token_everywhere(
    servers: list[Server], jwt: str, probe: str, problems: list[str]
) -> Counter[int]:
    """Verify ``jwt`` on new connections, round-robin over ``servers``, until every worker
    has answered it with 200. Returns the statuses seen (the caller asserts all are 200)."""
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


def _check_windows(
    windows: list[Window],
    records: list[Record],
    servers: list[Server],
    fresh: Counter[int],
    problems: list[str],
    *,
    show: bool = True,
) -> None:
    """The assertions every scenario shares: revoked means revoked, new tokens work at once,
    and nothing broke."""
    if show:
        for w in windows:
            print(w.summary())
        print(f"fresh tokens on new connections right after each call: {dict(fresh)}")
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


def _bystander_unharmed(records: list[Record]) -> None:
    seen = statuses(records, "bystander")
    print(f"bystander tenant: {seen.total()} requests, statuses {dict(seen)}")
    assert seen.total() > 0
    assert set(seen) == {200}, f"another tenant's changes hurt the bystander: {seen}"


def _rotation_race(
    servers: list[Server],
    tmp_path: Path,
    alg: str | None = None,
    *,
    through: list[Server] | None = None,
) -> None:
    """Rotate tenant acme (signing with ``alg``, HS256 by default) while CLIENTS processes
    verify its current token on ``servers``: ROTATIONS careful cycles (every worker accepted
    the token before, every worker refused it after), then RAPID_ROTATIONS quick ones, each
    another chance for a stale cache fill to slip through. The admin calls go to ``through``
    (default: ``servers`` themselves), round-robin."""
    begun = time.monotonic()
    changers = through or servers
    admins = [Admin(s.port) for s in changers]
    admins[0].create_tenant("acme", alg=alg)
    admins[-1].create_tenant("bystander")
    bystander = admins[0].issue("bystander")
    old = admins[-1].issue("acme")
    events: list[tuple[str, str, int]] = []
    fresh: Counter[int] = Counter()
    problems: list[str] = []
    took: list[float] = []  # ms per rotate call, printed: a slow run shows where time went
    with Fleet(tmp_path, [s.port for s in servers], CLIENTS) as fleet:
        fleet.bystander("bystander", bystander)
        for cycle in range(1, ROTATIONS + RAPID_ROTATIONS + 1):
            careful = cycle <= ROTATIONS
            label = f"acme-v{cycle}"  # a token signed with key version `cycle`
            fleet.token(label, old)
            problems += wait_served(servers, label, 200, everywhere=careful)  # warm
            via = cycle % len(changers)
            _, sent, returned = admins[via].rotate("acme")
            took.append((returned - sent) / 1e6)
            events.append((label, f"rotate #{cycle} via {changers[via].name}", returned))
            old = admins[(via + 1) % len(admins)].issue("acme")
            probe = f"acme-v{cycle + 1}-fresh"
            if careful:
                fresh += _fresh_token_everywhere(servers, old, probe, problems)
            else:
                fresh += Counter(
                    call(s.port, "GET", "/v1/verify", token=old, probe=probe).status
                    for s in servers * 2
                )
            after = AFTER_SECONDS if cycle == 1 else AFTER_LATER_ROTATIONS_SECONDS
            _sleep_until(returned + int((after if careful else RAPID_AFTER_SECONDS) * 1e9))
            if careful:  # every worker refused the old token
                problems += wait_served(servers, label, 401, timeout=3.0)
            if time.monotonic() - begun > SCENARIO_SECONDS:
                problems.append(f"stopped after {cycle} rotations: over {SCENARIO_SECONDS} s")
                break
        records = fleet.stop()
    windows = [window(records, label, event, returned) for label, event, returned in events]
    print(
        f"{len(servers)} server(s) x {servers[0].workers} workers, {CLIENTS} clients: "
        f"{len(records)} requests in {time.monotonic() - begun:.1f} s; rotate took (ms) "
        f"median {statistics.median(took):.0f}, max {max(took):.0f}"
    )
    _check_windows(windows[:ROTATIONS], records, servers, fresh, problems)
    rapid = windows[ROTATIONS:]
    print(combined(rapid).summary())
    _check_windows(rapid, records, servers, fresh, problems, show=False)
    _bystander_unharmed(records)


def test_monotonic_clock_is_shared_across_processes() -> None:
    """time.monotonic_ns read in another process falls between two reads in this one."""
    before = time.monotonic_ns()
    child = subprocess.run(
        [sys.executable, "-c", "import time; print(time.monotonic_ns())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    after = time.monotonic_ns()
    assert before < int(child.stdout) < after


@pytest.mark.parametrize("variant", indirect=True, **WITH_GUNICORN)  # type: ignore[arg-type]
def test_rotation_revokes_old_token_on_every_worker(server: Server, tmp_path: Path) -> None:
    """After rotate returns, no worker accepts the old token; new tokens verify everywhere."""
    _rotation_race([server], tmp_path)


def test_rotation_revokes_old_token_on_every_replica(
    replicas: list[Server], tmp_path: Path
) -> None:
    """Rotating through one replica revokes the old token on every worker of both replicas."""
    _rotation_race(replicas, tmp_path)


@pytest.mark.parametrize("variant", [(None, True)], ids=["memory"], indirect=True)
def test_rotation_revokes_a_key_pair_token_on_every_replica(
    replicas: list[Server], tmp_path: Path
) -> None:
    """The same race for a key-pair tenant (issue 15: ES256 here; EdDSA in the fault
    suite's S1-S4): its tokens are held in memory and memoised with the key object that
    checked them, and rotation must still revoke them on every worker of both replicas."""
    _rotation_race(replicas, tmp_path, alg="ES256")


@pytest.mark.parametrize("variant", [(None, True)], ids=["memory"], indirect=True)
def test_rotation_through_an_admin_server_revokes_on_every_public_worker(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """TENANTAUTH_ROLE: two public replicas verify from memory; every admin call goes to
    an admin server beside them, which the public replicas never hear from but through the
    database and Redis. Once its rotate returns, no public worker accepts the old token."""

    def environ(name: str, role: str) -> dict[str, str]:
        env = production_environ(pg_url, redis_url, tmp_path / f"{name}.access.log")
        return {**env, "TENANTAUTH_ROLE": role, "TENANTAUTH_VERIFY_MEMORY": "true"}

    public = [launch(n, environ(n, "public"), ready=False) for n in ("public0", "public1")]
    admin = launch("admin", environ("admin", "admin"), workers=1, ready=False)
    for server in [*public, admin]:
        wait_ready(server)
    assert call(public[0].port, "GET", "/v1/admin/tenants", token=ADMIN_TOKEN).status == 404
    assert "public API only" in public[0].stdout.read_text()  # the start-up line says so
    assert "admin API only" in admin.stdout.read_text()
    _rotation_race(public, tmp_path, through=[admin])


#: A rollover's grace in the race below: long enough to see the old token keep verifying
#: after the call returns (the grace starts when the change commits, and the call then waits
#: for every worker's acknowledgement), short enough to see the clock retire the key.
ROLLOVER_GRACE = 5
#: Margin around the retirement instant for requests in flight across it.
RETIRE_MARGIN_NS = 200_000_000


def _monotonic_of(iso: str) -> int:
    """The ``time.monotonic_ns`` reading of wall-clock instant ``iso`` (the records' clock)."""
    wall = datetime.fromisoformat(iso).timestamp()
    return int((wall - time.time()) * 1e9) + time.monotonic_ns()


@pytest.mark.parametrize("variant", [(None, True)], ids=["memory"], indirect=True)
@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
def test_rollover_keeps_the_old_key_until_grace_and_the_new_one_works_at_once(
    replicas: list[Server], tmp_path: Path, alg: str
) -> None:
    """Issue 15, rollover across both replicas while clients verify the old key's token:
    it is never refused before the grace ends (a rollover revokes nothing); a token of the
    new key verifies on every worker as soon as the call returns; once the grace has passed
    every worker refuses the old token (the clock retires the key, no message)."""
    admins = [Admin(s.port) for s in replicas]
    admins[0].create_tenant("acme", alg=alg)
    old = admins[1].issue("acme")
    problems: list[str] = []
    with Fleet(tmp_path, [s.port for s in replicas], CLIENTS) as fleet:
        fleet.token("old", old)
        problems += wait_served(replicas, "old", 200)  # every worker holds the first key
        answer, _, returned = admins[0].rollover("acme", ROLLOVER_GRACE)
        retiring = [k for k in answer["keys"] if k["state"] == "retiring"]
        retires = _monotonic_of(retiring[0]["verifies_until"])
        fresh = _fresh_token_everywhere(replicas, admins[1].issue("acme"), "new", problems)
        _sleep_until(retires + int(1.2e9))
        problems += wait_served(replicas, "old", 401, timeout=3.0)
        records = fleet.stop()
    olds = [r for r in records if r.label == "old"]
    early = Counter(r.status for r in olds if r.done < retires - RETIRE_MARGIN_NS)
    after_call = sum(1 for r in olds if returned < r.start and r.done < retires - RETIRE_MARGIN_NS)
    late = Counter(r.status for r in olds if r.start > retires + RETIRE_MARGIN_NS)
    print(
        f"{alg}: old token before its key retired {dict(early)} ({after_call} sent after the "
        f"call returned, {(retires - returned) / 1e9:.1f} s before it retired), after "
        f"{dict(late)}; new token {dict(fresh)}"
    )
    assert set(early) == {200}, f"the old key's token was refused within the grace: {early}"
    assert after_call > 0, "nothing was sent within the grace after the call: proves nothing"
    assert set(late) == {401} and late[401] > 0, f"the old key outlived its grace: {late}"
    assert set(fresh) == {200}, f"a token of the new key was refused after the call: {fresh}"
    assert not problems, "\n".join(problems)
    assert not server_errors(replicas), f"5xx answers: {server_errors(replicas)}"


def test_suspend_and_delete_revoke_at_once(server: Server, tmp_path: Path) -> None:
    """After suspend or delete returns, no worker accepts the tenant's tokens; resume and
    re-create take effect at once; another tenant is untouched throughout."""
    admin = Admin(server.port)
    admin.create_tenant("globex")
    admin.create_tenant("bystander")
    token, bystander = admin.issue("globex"), admin.issue("bystander")
    after = int(AFTER_SECONDS * 1e9)
    problems: list[str] = []
    with Fleet(tmp_path, [server.port], CLIENTS) as fleet:
        fleet.bystander("bystander", bystander)
        fleet.token("until-suspend", token)
        problems += wait_served([server], "until-suspend", 200)
        _, _, suspended = admin.set_status("globex", "suspended")
        _sleep_until(suspended + after)
        problems += wait_served([server], "until-suspend", 401, timeout=3.0)
        fleet.token("until-delete", token)  # the same token, counted apart from here on
        _, resume_sent, resumed = admin.set_status("globex", "active")
        problems += wait_served([server], "until-delete", 200)  # the token works again
        _sleep_until(resumed + int(RESUMED_SECONDS * 1e9))  # requests sent after resume returned
        delete_sent, deleted = admin.delete("globex")[1:]
        _sleep_until(deleted + after)
        problems += wait_served([server], "until-delete", 401, timeout=3.0)
        admin.create_tenant("globex")  # the id may be reused; old tokens stay dead
        fresh = _fresh_token_everywhere(
            [server], admin.issue("globex"), "globex-recreated", problems
        )
        time.sleep(0.5)
        records = fleet.stop()
    resumed_phase = statuses(
        r
        for r in records
        if r.label == "until-delete" and resumed < r.start and r.done < delete_sent
    )
    windows = [
        window(records, "until-suspend", "suspend (PATCH)", suspended, until=resume_sent),
        window(records, "until-delete", "delete, then re-create", deleted),
    ]
    print(f"after resume: {dict(resumed_phase)}")
    _check_windows(windows, records, [server], fresh, problems)
    assert resumed_phase.total() > 0, "no request was sent between resume and delete"
    assert set(resumed_phase) == {200}, f"resume did not take effect at once: {resumed_phase}"
    _bystander_unharmed(records)
