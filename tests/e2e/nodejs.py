"""Node.js for the e2e suites that run an example under examples/: find node and npm (a
missing or too old one fails the test with the fix, it is never skipped), and `npm ci` once
per package-lock.json (a stamp in node_modules records which).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

MIN_NODE_MAJOR = 20
NPM_CI_SECONDS = 300
FIX = "install Node.js >= 20 with npm (Debian/Ubuntu: apt-get install -y nodejs npm)"
STAMP_NAME = ".tenantauth-npm-ci"


def tool(name: str) -> str:
    """Return the path of ``name`` on PATH; fail the test (never skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found on PATH: {FIX}", pytrace=False)
    return path


def check_node_version(node: str) -> None:
    """Fail unless ``node`` is at least MIN_NODE_MAJOR (the test runner and APIs we use)."""
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        pytest.fail(f"node {version} is too old: {FIX}", pytrace=False)


def install_dependencies(npm: str, example: Path) -> None:
    """Run `npm ci` in ``example`` unless its node_modules already matches its package-lock.json.

    Holds a lock on package-lock.json meanwhile, so two runs in one checkout install one at a
    time. Fails with npm's output if it fails; raises TimeoutExpired after NPM_CI_SECONDS.
    """
    lock = example / "package-lock.json"
    stamp = example / "node_modules" / STAMP_NAME
    with lock.open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        digest = hashlib.sha256(handle.read()).hexdigest()
        if stamp.is_file() and stamp.read_text() == digest:
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=example,
            capture_output=True,
            text=True,
            timeout=NPM_CI_SECONDS,
            check=False,  # a failure is asserted below, with npm's output
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
        stamp.write_text(digest)
