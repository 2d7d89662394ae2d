"""Reading Redis's ``maxmemory-policy`` (docs/design.md, "Readiness"): the design requires
``noeviction``, since an evicted revocation mark could let a revoked token through.

Managed Redis (Memorystore, ElastiCache) may rename or disable ``CONFIG``: then ``INFO memory``
(which reports ``maxmemory_policy``) is asked instead, and "" means neither would say.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions


def read_policy(connection: Any) -> str:
    """Return the server's ``maxmemory-policy`` ("" when CONFIG and INFO are both refused).

    Raises only what the connection raises for transport errors (the caller's breaker
    handles them); refused commands (``ResponseError``: unknown, renamed, NOPERM) are not
    errors here.
    """
    try:
        reply = _command(connection, "CONFIG", "GET", "maxmemory-policy")
        if isinstance(reply, list) and len(reply) == 2:  # [name, value]
            return _text(reply[1])
    except redis.exceptions.ResponseError:
        pass
    try:
        info = _text(_command(connection, "INFO", "memory"))
    except redis.exceptions.ResponseError:
        return ""
    for line in info.splitlines():
        if line.startswith("maxmemory_policy:"):
            return line.removeprefix("maxmemory_policy:").strip()
    return ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _command(connection: Any, *args: Any) -> Any:
    connection.send_command(*args)
    return connection.read_response()
