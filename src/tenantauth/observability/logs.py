"""Structured logs: one JSON object per line on stdout (or console lines for people).

Request threads never format or write a line. They put a plain dict on a queue; one writer
thread per process wakes every ``INTERVAL`` seconds, renders what has queued with structlog's
processors and writes it in batches with one ``write`` each, so no request holds a lock across
I/O and a line that is never emitted (level off, or an accepted verify not sampled) is never
formatted (issue 13). The writer polls rather than blocking on the queue: a blocked reader
would be woken by every ``put``, and that hand-off (a thread switch and the GIL back and forth
per line) cost 100-200 µs of CPU per request, against ~6 µs to queue a line and ~10 µs to
render it (docs/design.md, "The cost of metrics and request logs (measured)"). The queue is
bounded: when the writer falls behind (stdout blocked), lines are dropped and counted
(``tenantauth_log_lines_dropped_total``) rather than growing memory or stalling requests.

Records of the standard ``logging`` module (warnings, errors, the audit head) go through the
same writer, so the stream has one format. Secrets never reach it: request lines are built
from a fixed set of fields (``observability.http``), none of which is a header, a body or a
path; and the code base never logs a token or a secret (tests/security/test_log_hygiene.py).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import structlog

#: Lines that may wait for the writer; beyond it new lines are dropped (and counted).
QUEUE_LIMIT = 20_000
#: Most lines written with one write call.
BATCH = 256
#: How long lines may wait before the writer wakes (seconds).
INTERVAL = 0.05


class LogWriter:
    """The per-process queue and writer thread (started on first use, again after a fork)."""

    def __init__(self, stream: TextIO, render: Callable[[dict[str, Any]], str]) -> None:
        """Write rendered lines to ``stream``; ``render`` turns an event dict into a line."""
        self._stream = stream
        self._render = render
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self.dropped = 0
        self.on_drop: Callable[[int], None] = lambda _count: None

    def put(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for writing; drop it (and count it) when the queue is full."""
        if self._pid != os.getpid():
            self._start()
        if self._queue.qsize() >= QUEUE_LIMIT:
            self.dropped += 1
            self.on_drop(1)
            return
        self._queue.put(event)

    def flush(self, timeout: float = 2.0) -> None:
        """Write what is queued, waiting at most ``timeout`` seconds (at exit)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._stop.set()
        thread.join(timeout)
        self._thread, self._pid = None, 0  # the next line starts a writer again

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.SimpleQueue()  # a forked copy may hold the parent's lines
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            stopping = self._stop.wait(INTERVAL)
            while batch := self._take(BATCH):
                self._write(batch)

    def _take(self, most: int) -> list[dict[str, Any]]:
        """Return up to ``most`` queued events (none waiting: empty)."""
        batch: list[dict[str, Any]] = []
        while len(batch) < most:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, events: list[dict[str, Any]]) -> None:
        lines = []
        for event in events:
            try:
                lines.append(self._render(event))
            except Exception:  # noqa: BLE001 - a bad field must not kill the writer
                lines.append(f"unrenderable log event {event.get('event')!r}")
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: nothing better to do
            self.dropped += len(lines)


#: Renders the events it knows to their JSON line, given the line's timestamp: exactly what
#: the generic renderer writes, or None for any other event (which the generic one renders).
FastJson = Callable[[str, dict[str, Any]], "str | None"]


def renderer(
    fmt: str, *, colors: bool, fast_json: FastJson | None = None
) -> Callable[[dict[str, Any]], str]:
    """Return the function that turns an event dict into one line: ``json`` or ``console``.

    ``fast_json`` (json only) is tried first: the request line's template
    (observability/http.py ``request_json``), a quarter of the generic encoder's cost."""
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    if fmt == "json":
        final: Any = _json_line
    else:
        final = structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False)
        fast_json = None
    stamped = _Stamper()

    def render(event: dict[str, Any]) -> str:
        # The event's own time (taken when it happened, not when the writer got to it).
        at = event.pop("_at", None)
        if at is not None and fast_json is not None:
            line = fast_json(stamped.text(at), event)
            if line is not None:
                return line
        event = dict(stamp(None, "", event)) if at is None else stamped(event, at)
        return str(final(None, event.get("level", "info"), event))

    return render


def _fallback(value: Any) -> Any:
    """A value JSON has no form for, as structlog's JSONRenderer writes it."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


_JSON = json.JSONEncoder(default=_fallback)


def _json_line(logger: Any, level: str, event: dict[str, Any]) -> str:
    """What structlog's JSONRenderer writes (``json.dumps`` with a ``repr`` fallback), with
    the encoder built once: ``json.dumps`` builds one per call when given ``default``."""
    return _JSON.encode(event)


class _Stamper:
    """Puts an ISO 8601 UTC ``timestamp`` (milliseconds) first in an event; formats the
    date and time once per second (one writer thread per process calls it)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, event: dict[str, Any], at: float) -> dict[str, Any]:
        """Return ``event`` with the timestamp of ``at`` (epoch seconds) put first."""
        return {"timestamp": self.text(at), **event}

    def text(self, at: float) -> str:
        """Return the timestamp of ``at`` (epoch seconds)."""
        second = int(at)
        if second != self._second:
            self._second, self._prefix = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        millis = int((at % 1) * 1000)
        return f"{self._prefix}.{millis:03d}Z"


class QueueHandler(logging.Handler):
    """Standard ``logging`` records into the writer's queue, as event dicts."""

    def __init__(self, writer: LogWriter) -> None:
        """Send records to ``writer``."""
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record (its message formatted now: its arguments may change later)."""
        try:
            event: dict[str, Any] = {
                "_at": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": record.getMessage(),
            }
            if record.exc_info:
                event["exception"] = logging.Formatter().formatException(record.exc_info)
            self._writer.put(event)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


_writer: LogWriter | None = None


def configure(
    level: str,
    fmt: str,
    *,
    stream: TextIO | None = None,
    fast_json: FastJson | None = None,
) -> LogWriter:
    """Send every ``logging`` record to one writer (on stdout unless ``stream``) in ``fmt``
    (``json`` or ``console``); return the writer, which request lines use too. ``fast_json``:
    see ``renderer``.

    Replaces only the handler an earlier call installed (tests build many apps; pytest's own
    capture handlers stay). ``level`` applies to tenantauth's loggers; others keep the root's.
    """
    global _writer  # noqa: PLW0603 - one writer per process: the stream is per process
    out = stream or sys.stdout
    flush()
    colors = fmt == "console" and _isatty(out)
    _writer = LogWriter(out, renderer(fmt, colors=colors, fast_json=fast_json))
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, QueueHandler):
            root.removeHandler(handler)
    root.addHandler(QueueHandler(_writer))
    logging.getLogger("tenantauth").setLevel(level)
    return _writer


def flush() -> None:
    """Write out this process's queued lines (gunicorn's worker_exit, and at exit)."""
    if _writer is not None:
        _writer.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


atexit.register(flush)
