"""A loopback HTTP/1.1 proxy in front of one real server, for the retry tests.

It counts the TCP connections it accepts and the requests it sees, forwards each request to
the server (one upstream connection per request), and can answer ``503`` itself to the next
N requests (optionally with ``Retry-After``) — the way tenantauth answers when PostgreSQL or
Redis is down — without touching the shared PostgreSQL or Redis. With ``forward=True`` it
forwards the request first and answers 503 instead of the server's answer: a change that
was made but whose answer was lost (tenantauth's ``change_unconfirmed``).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from tests.e2e.harness import HOST

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class FaultProxy:
    """Counts connections and requests; forwards to ``upstream_port`` unless told to fail."""

    def __init__(self, upstream_port: int) -> None:
        """Listen on a free loopback port (``port``) once entered."""
        self.upstream_port = upstream_port
        self.connections = 0
        self.requests: Counter[tuple[str, str]] = Counter()
        self._failures: list[tuple[str | None, bool, int]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(
        self,
        count: int,
        retry_after: str | None = None,
        *,
        forward: bool = False,
        status: int = 503,
    ) -> None:
        """Answer ``status`` (problem+json, ``Retry-After`` if given) to the next ``count``
        requests, after forwarding them if ``forward``."""
        with self._lock:
            self._failures = [(retry_after, forward, status)] * count

    def total(self, method: str | None = None, path: str | None = None) -> int:
        """Return how many requests matched ``method`` and ``path`` (None: any)."""
        with self._lock:
            return sum(
                n
                for (m, p), n in self.requests.items()
                if method in (None, m) and path in (None, p)
            )

    def __enter__(self) -> FaultProxy:
        """Start serving."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _record(self, method: str, path: str) -> tuple[str | None, bool, int] | None:
        """Count one request; return how to fail it (Retry-After, forward) or None."""
        with self._lock:
            self.requests[(method, path)] += 1
            return self._failures.pop() if self._failures else None

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be counted

        def setup(self) -> None:
            super().setup()
            proxy._connected()

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet (the default writes every request to stderr)."""

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            failure = proxy._record(self.command, self.path)
            if failure is not None and not failure[1]:
                self._fail(failure[0], failure[2])
                return
            status, headers, data = self._forward(body)
            if failure is not None:
                self._fail(failure[0], failure[2])
                return
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=10)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                with upstream.getresponse() as response:
                    return response.status, response.getheaders(), response.read()
            finally:
                upstream.close()

        def _fail(self, retry_after: str | None, status: int) -> None:
            code = "storage_unavailable" if status == 503 else "rate_limited"
            data = json.dumps({"status": status, "code": code, "title": "x"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json")
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

    return Handler
