"""What the main process prepares for its workers (src/tenantauth/worker_boot.py): the app's
modules imported once before the fork, after the metrics directory is named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

#: Run in a fresh interpreter (this one imported the app long ago): the server's main-process
#: set-up, then what the workers it forks would inherit.
_CHECK = """
import sys
assert "tenantauth.app" not in sys.modules, "imported before the main process's set-up"
{setup}
assert "tenantauth.app" in sys.modules, "the workers would each import the app again"
import gc
assert gc.get_freeze_count() > 10_000, "the imported modules were not frozen"
import prometheus_client.values
print(prometheus_client.values.ValueClass.__name__)
"""
#: Then the metrics directory the set-up created (under /dev/shm) is removed.
_CLEANUP = """
import os, shutil
shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/nonexistent"), ignore_errors=True)
"""

_SETUPS = {
    "granian": """
from tenantauth import granian_conf
granian_conf.build_server("127.0.0.1", 8000, 3, threads=4)
""",
    "gunicorn": """
from tenantauth import gunicorn_conf
gunicorn_conf.on_starting(None)
""",
}


@pytest.mark.parametrize("server", sorted(_SETUPS))
@pytest.mark.parametrize("metrics", [True, False])
def test_the_main_process_imports_the_app_for_its_workers(server: str, metrics: bool) -> None:
    """Each server's main process imports ``tenantauth.app`` before forking (a worker then
    boots ~1 s sooner on a busy machine: docs/design.md, "Worker boot"), and only once the
    metrics directory is named, so the workers' prometheus_client is in multiprocess mode
    (``MmapedValue``); with metrics off it is the single-process kind. What it imported is
    frozen, so that the workers' collections leave those pages shared."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTAUTH_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # A port is only named, never bound, here; 0 turns metrics off.
    env["TENANTAUTH_METRICS_PORT"] = "9" if metrics else "0"
    script = _CHECK.format(setup=textwrap.dedent(_SETUPS[server])) + _CLEANUP
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == ("MmapedValue" if metrics else "MutexValue")
