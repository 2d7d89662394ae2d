"""A load client for the e2e tests: loops ``GET /v1/verify`` and records every request.

Run as a script (``python verify_client.py CONFIG_JSON``) by ``tests/e2e/harness.py``; it
imports only the standard library so it starts fast and shares nothing with the server.

Commands arrive on stdin, one per line:
  ``token LABEL JWT``  verify JWT from now on, recording each request under LABEL
  ``extra LABEL JWT``  also verify JWT on every ``extra_every``-th request (a bystander token)
  ``stop``             finish the current request, write the records and exit
End of input also stops the client, so it never outlives the test that started it; so does
``max_seconds``. Each record is ``label send_start_ns done_ns status`` with
``time.monotonic_ns`` (CLOCK_MONOTONIC, one clock for every process on Linux); status 0 is a
connection error. Every ``reconnect_every`` requests the client opens a new connection, so
over time its requests reach every gunicorn worker (each keep-alive connection is served by
one worker).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path


class Commands:
    """The latest instructions from stdin, updated by a reader thread."""

    def __init__(self) -> None:
        """Start with no token and not stopped."""
        self.main: tuple[str, str] | None = None
        self.extra: tuple[str, str] | None = None
        self.stopped = threading.Event()

    def read(self) -> None:
        """Apply stdin lines until ``stop`` or end of input."""
        for line in sys.stdin:
            parts = line.split()
            if parts[:1] == ["token"] and len(parts) == 3:
                self.main = (parts[1], parts[2])
            elif parts[:1] == ["extra"] and len(parts) == 3:
                self.extra = (parts[1], parts[2])
            elif parts[:1] == ["stop"]:
                break
        self.stopped.set()


def run(config: dict[str, object]) -> None:
    """Verify tokens until told to stop; write the records to ``config['out']``."""
    host = str(config["host"])
    port = int(str(config["port"]))
    reconnect_every = int(str(config["reconnect_every"]))
    extra_every = int(str(config["extra_every"]))
    deadline = time.monotonic() + float(str(config["max_seconds"]))
    commands = Commands()
    threading.Thread(target=commands.read, daemon=True).start()
    records: list[tuple[str, int, int, int]] = []
    conn: http.client.HTTPConnection | None = None
    on_conn = 0
    n = 0
    while not commands.stopped.is_set() and time.monotonic() < deadline:
        main, extra = commands.main, commands.extra
        if main is None:
            time.sleep(0.005)
            continue
        n += 1
        label, token = extra if extra is not None and n % extra_every == 0 else main
        if conn is None or on_conn >= reconnect_every:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            on_conn = 0
        on_conn += 1
        headers = {"Authorization": f"Bearer {token}", "X-Probe": label}
        start = time.monotonic_ns()
        try:
            conn.request("GET", "/v1/verify", headers=headers)
            with conn.getresponse() as response:
                response.read()
                status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = None
        records.append((label, start, time.monotonic_ns(), status))
    if conn is not None:
        conn.close()
    lines = (f"{label} {start} {done} {status}\n" for label, start, done, status in records)
    Path(str(config["out"])).write_text("".join(lines), encoding="ascii")


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
