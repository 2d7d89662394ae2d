"""The server's own ceiling (bench/servers.py): a WSGI app that answers every request 200 "ok".

No Flask, no I/O: what is left per request is the server's parsing, dispatch and writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"active":true}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer 200 with a short JSON body, whatever the request."""
    start_response("200 OK", HEADERS)
    return [BODY]
