"""A recording upstream: the service a gateway protects, on loopback, in a thread.

It answers every request 200 with a JSON echo of what it received and keeps each request's
method, path and raw header list, so a test can check which identity headers reached it and
that a rejected request never did.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Seen:
    """One request the upstream received."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> list[str]:
        """Return every value of ``name`` (case-insensitive; also its underscore spellings,
        which CGI-style servers would fold into the same variable)."""
        wanted = name.lower().replace("_", "-")
        return [v for k, v in self.headers if k.lower().replace("_", "-") == wanted]


@dataclass
class Upstream:
    """The recording server; use as a context manager."""

    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        return int(self._server.server_address[1])

    def requests_to(self, path: str) -> list[Seen]:
        """Return the requests received for ``path`` (query excluded)."""
        with self._lock:
            return [s for s in self.seen if s.path.split("?")[0] == path]

    def __enter__(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; without this, Nagle's algorithm and the
            # peer's delayed ACK hold the body ~40 ms on a kept-alive connection.
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen(self.command, self.path, tuple(self.headers.items()))
                with upstream._lock:
                    upstream.seen.append(seen)
                body = json.dumps({"path": self.path, "headers": seen.headers}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                return  # quiet: pytest shows failures, not every request

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
