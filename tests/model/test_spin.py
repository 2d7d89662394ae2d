"""model/leases.pml: issue 14's lease protocol holds its promise under spin, and fails it with
any one step removed (docs/design.md, "The model check").

Each run builds spin's verifier (pan) in its own temporary directory and searches the whole
state space (-DSAFETY: assertions; the model has no liveness claims). A missing spin or gcc
fails the test with the fix, never skips it. Run with ``-s`` to see states and seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "model" / "leases.pml"
#: Per step (spin, gcc, pan); the largest run below takes about 3 s alone.
TIMEOUT = 120
#: pan's memory ceiling in MB: the largest run stores ~2.3 M states in ~330 MB.
MEMLIM = 1024
#: The bounds every run shares unless it says otherwise (see the model's header).
BOUNDS = ("-DTMAX=4",)

#: The model as checked: one worker in full plus "Others", a Redis restart, a trimming stream,
#: one change of A and one of B; two changes of A; two full workers without faults.
INTACT = {
    "faults": (),
    "two-changes": ("-DNCHANGE=2", "-DNOTHER=0"),
    "two-workers": ("-DNW=2", "-DMAXRESTART=0", "-DNOTHER=0"),
}

#: Each step of the protocol, removed: spin must find a stale use of memory.
MUTATIONS = (
    "NO_FLOOR",
    "NO_ACK_WAIT",
    "NO_REGISTRY_AGE_WAIT",
    "NO_DEADLINE_CHECK",
    "ACK_BEFORE_DROP",
    "NO_GAP_CHECK",
    "NO_REG_CHECK",
    "NO_REG_EPOCH",
    "NO_REG_REVOKE",
    "DEADLINE_FROM_REPLY",
    "RENEW_EXPIRED",
    "DROP_BEFORE_FLOOR",
    "SPLIT_INSERT",
    "NOTE_AFTER_READ",
    # Registration worded as design.md words it (NO_REG_EPOCH and NO_REG_REVOKE together).
    "REGISTER_AS_WRITTEN",
)


@dataclass(frozen=True)
class Run:
    """What one pan search reported."""

    errors: int
    states: int
    depth: int
    seconds: float
    output: str


def tool(name: str) -> str:
    """Return the path of ``name``; fail (never skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run `make spin`")
    return path


def step(argv: list[str], cwd: Path) -> str:
    """Run one step; return its stdout, or fail the test with its exit status and output."""
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{argv[0]} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done.stdout


def number(pattern: str, out: str) -> float:
    """Return the number ``pattern`` captures in pan's report; fail when it is absent."""
    match = re.search(pattern, out)
    assert match is not None, f"pan's report lacks {pattern!r}:\n{out}"
    return float(match.group(1))


def check(defines: tuple[str, ...], cwd: Path) -> Run:
    """Generate, compile and run spin's verifier for the model with ``defines``."""
    step([tool("spin"), "-a", *BOUNDS, *defines, str(MODEL)], cwd)
    cflags = ["-O2", "-w", "-DSAFETY", f"-DMEMLIM={MEMLIM}"]
    step([tool("gcc"), *cflags, "-o", "pan", "pan.c"], cwd)
    out = step([str(cwd / "pan"), "-m100000"], cwd)
    for trouble in ("max search depth too small", "out of memory", "search not completed"):
        assert trouble not in out, f"pan: {trouble}\n{out}"
    run = Run(
        errors=int(number(r"errors: (\d+)", out)),
        states=int(number(r"(\d+) states, stored", out)),
        depth=int(number(r"depth reached (\d+)", out)),
        seconds=number(r"elapsed time ([\d.e+]+) seconds", out),
        output=out,
    )
    print(
        f"{' '.join(defines) or 'intact'}: {run.states} states, depth {run.depth}, "
        f"{run.seconds} s, errors {run.errors}"
    )
    return run


@pytest.mark.parametrize("defines", INTACT.values(), ids=INTACT.keys())
def test_the_protocol_never_serves_older_state_after_a_change_returned(
    defines: tuple[str, ...], tmp_path: Path
) -> None:
    """With every step present spin finds no verify that uses older state after a change."""
    run = check(defines, tmp_path)
    assert run.errors == 0, run.output


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_removing_any_one_step_lets_a_verify_use_older_state(mutation: str, tmp_path: Path) -> None:
    """With this one step removed spin finds a verify that uses older state (a trail)."""
    run = check((f"-D{mutation}",), tmp_path)
    assert run.errors >= 1, f"-D{mutation} still verifies: the step is not needed?\n{run.output}"
    assert "assertion violated" in run.output, run.output
    assert (tmp_path / "leases.pml.trail").is_file()
