"""The request log writer: lines rendered off the request thread, bounded, flushed at exit
(observability/logs.py)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from tenantauth.observability import logs
from tenantauth.observability.exposition import MULTIPROC_ENV, MetricsDirectory


def test_events_become_one_json_object_per_line() -> None:
    """Each queued event is written as one JSON line, in order, with its own timestamp."""
    out = io.StringIO()
    writer = logs.LogWriter(out, logs.renderer("json", colors=False))
    for n in range(3):
        writer.put({"_at": 1_700_000_000.25, "event": "request", "n": n})
    writer.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["n"] for line in lines] == [0, 1, 2]
    assert lines[0]["timestamp"] == "2023-11-14T22:13:20.250Z"


def test_a_full_queue_drops_and_counts_instead_of_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond QUEUE_LIMIT waiting lines, new lines are dropped and reported, never queued
    without bound."""
    monkeypatch.setattr(logs, "QUEUE_LIMIT", 0)
    dropped: list[int] = []
    writer = logs.LogWriter(io.StringIO(), logs.renderer("json", colors=False))
    writer.on_drop = dropped.append
    writer.put({"event": "request"})
    assert writer.dropped == 1
    assert dropped == [1]


def test_standard_logging_goes_through_the_same_writer() -> None:
    """Records of the logging module come out as JSON lines with logger and level, an
    exception as its formatted traceback."""
    out = io.StringIO()
    logs.configure("INFO", "json", stream=out)
    try:
        log = logging.getLogger("tenantauth.test")
        log.warning("cache %s", "down")
        try:
            raise ValueError("boom")  # noqa: TRY301 - a traceback to log
        except ValueError:
            log.exception("failed")
        logs.flush()
    finally:
        logs.configure("WARNING", "json", stream=io.StringIO())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {**lines[0], "level": "warning", "logger": "tenantauth.test"}
    assert lines[0]["event"] == "cache down"
    assert "ValueError: boom" in lines[1]["exception"]


def test_console_format_is_for_people() -> None:
    """The console renderer writes readable lines, not JSON, and no colour codes when the
    stream is not a terminal."""
    out = io.StringIO()
    writer = logs.LogWriter(out, logs.renderer("console", colors=False))
    writer.put({"event": "request", "route": "/v1/verify", "status": 200})
    writer.flush()
    line = out.getvalue()
    assert "request" in line and "route=/v1/verify" in line
    assert "\x1b[" not in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_writer_restarts_after_a_flush() -> None:
    """A flush stops the thread; the next line starts a new one (gunicorn may log after
    worker_exit)."""
    out = io.StringIO()
    writer = logs.LogWriter(out, logs.renderer("json", colors=False))
    writer.put({"event": "one"})
    writer.flush()
    writer.put({"event": "two"})
    writer.flush()
    assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["one", "two"]


def test_metrics_directory_is_private_emptied_and_removed(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR the master makes its own directory and names it in
    the environment, then removes it; a given one is emptied of stale files and kept."""
    environ: dict[str, str] = {}
    made = MetricsDirectory.prepare(environ)
    assert made.owned and made.path.is_dir() and environ[MULTIPROC_ENV] == str(made.path)
    made.remove()
    assert not made.path.exists()
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"")
    kept = MetricsDirectory.prepare({MULTIPROC_ENV: str(tmp_path)})
    assert not kept.owned and not stale.exists()
    kept.remove()
    assert tmp_path.is_dir()


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


class _Described:
    def __structlog__(self) -> dict[str, int]:
        return {"described": 1}


def test_json_lines_are_what_structlogs_renderer_writes() -> None:
    """The json renderer builds its encoder once and stamps the time once per second; its
    lines are byte for byte what structlog's TimeStamper and JSONRenderer would write, for
    every JSON type, text that needs escaping, and values JSON has no form for."""
    reference = structlog.processors.JSONRenderer(sort_keys=False)
    render = logs.renderer("json", colors=False)
    values: list[Any] = ['é\u2028"q"\n\x00', 0, -1.5, 1e300, None, True, [1, "2"], {"k": "v"}]
    at = 1_700_000_000.0
    for step, value in enumerate([*values, _Opaque(), _Described()]):
        at += 0.3137 * step  # within a second and across seconds
        event = {"event": "request", "value": value}
        expected = reference(None, "info", {"timestamp": iso_millis(at), **event})
        assert render({"_at": at, **event}) == expected
    assert json.loads(render({"event": "no time"}))["timestamp"].endswith("Z")


def iso_millis(at: float) -> str:
    """``at`` as the request lines stamp it: UTC, milliseconds, ``Z``."""
    whole = datetime.fromtimestamp(int(at), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int((at % 1) * 1000):03d}Z"
