"""The hung-worker watchdog's rules on real heartbeat files (tenantauth.granian_watchdog);
the servers themselves are in tests/e2e/test_servers_e2e.py."""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantauth import granian_watchdog
from tenantauth.granian_watchdog import Watchdog, age, beat, interval_for


@dataclass
class Process:
    pid: int | None


@dataclass
class Worker:
    idx: int
    inner: Process


def stamp(directory: Path, pid: int, seconds_ago: float) -> None:
    """Give ``pid`` a beat ``seconds_ago`` on the monotonic clock."""
    then = time.monotonic_ns() - int(seconds_ago * 1e9)
    path = directory / str(pid)
    path.touch()
    os.utime(path, ns=(then, then))


def watchdog_for(
    directory: Path, workers: list[Worker], timeout: float = 10
) -> tuple[Watchdog, list[tuple[int, int]], list[int]]:
    kills: list[tuple[int, int]] = []
    booted: list[int] = []
    dog = Watchdog(
        directory,
        timeout,
        workers=lambda: workers,
        booted=booted.append,
        kill=lambda pid, sig: kills.append((pid, sig)),
    )
    return dog, kills, booted


def test_the_interval_is_a_quarter_of_the_timeout_at_most_a_second() -> None:
    assert interval_for(2) == 0.5
    assert interval_for(30) == 1.0


def test_a_beat_is_stamped_on_the_monotonic_clock(tmp_path: Path) -> None:
    path = tmp_path / "123"
    assert age(path, time.monotonic_ns()) is None
    beat(path)
    assert 0 <= age(path, time.monotonic_ns()) < 1  # type: ignore[operator]
    assert age(path, time.monotonic_ns() + 5 * 10**9) == pytest.approx(5, abs=1)


def test_a_worker_silent_past_the_timeout_is_killed_once(tmp_path: Path) -> None:
    workers = [Worker(0, Process(101)), Worker(1, Process(102))]
    stamp(tmp_path, 101, seconds_ago=11)
    stamp(tmp_path, 102, seconds_ago=9)
    dog, kills, booted = watchdog_for(tmp_path, workers)
    dog.check()
    dog.check()  # still silent (killed, not yet reaped): not signalled twice
    assert kills == [(101, signal.SIGKILL)]
    assert sorted(set(booted)) == [0, 1]


def test_a_worker_that_never_beat_is_booting_and_not_timed(tmp_path: Path) -> None:
    dog, kills, booted = watchdog_for(tmp_path, [Worker(0, Process(101))])
    dog.check(now_ns=time.monotonic_ns() + 3600 * 10**9)
    assert kills == []
    assert booted == []  # stays under granian's crash-loop rule (a failed boot stops it)


def test_stamps_of_processes_that_are_no_longer_workers_are_removed(tmp_path: Path) -> None:
    workers = [Worker(0, Process(101))]
    stamp(tmp_path, 101, seconds_ago=0)
    stamp(tmp_path, 99, seconds_ago=60)  # a worker that was replaced
    (tmp_path / "101.connections").write_text("3 0")  # granian_balance's, beside the stamps
    (tmp_path / "99.connections").write_text("3 0")
    dog, kills, _ = watchdog_for(tmp_path, workers)
    dog.check()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["101", "101.connections"]
    assert kills == []


def test_a_replaced_pid_is_timed_again(tmp_path: Path) -> None:
    """A killed pid leaves the list once it is no longer a worker, so a later worker that
    happens to get the same pid is watched like any other."""
    workers = [Worker(0, Process(101))]
    stamp(tmp_path, 101, seconds_ago=11)
    dog, kills, _ = watchdog_for(tmp_path, workers)
    dog.check()
    workers[:] = [Worker(0, Process(None))]  # respawning: no pid yet
    dog.check()
    workers[:] = [Worker(0, Process(101))]
    stamp(tmp_path, 101, seconds_ago=11)
    dog.check()
    assert kills == [(101, signal.SIGKILL)] * 2


def test_the_heartbeat_thread_keeps_the_stamp_fresh(tmp_path: Path) -> None:
    thread = granian_watchdog.start_heartbeat(tmp_path, interval=0.05)
    path = tmp_path / str(os.getpid())
    first = path.stat().st_mtime_ns
    deadline = time.monotonic() + 5
    while path.stat().st_mtime_ns == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_mtime_ns > first
    assert thread.daemon and thread.is_alive()
    while tmp_path.exists():  # the main process removes the directory: the thread ends
        shutil.rmtree(tmp_path, ignore_errors=True)  # (a beat may land between two steps)
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_directory_is_on_tmpfs_when_there_is_one() -> None:
    directory = granian_watchdog.make_directory()
    try:
        assert directory.is_dir() and not any(directory.iterdir())
        if Path("/dev/shm").is_dir():  # noqa: S108
            assert directory.parent == Path("/dev/shm")  # noqa: S108
    finally:
        directory.rmdir()
