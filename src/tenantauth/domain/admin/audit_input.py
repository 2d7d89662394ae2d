"""What the audit log takes from outside, made safe to store and to query.

Kept apart from ``domain.admin.audit`` (the chain itself): the escaping of entry text
(``storable``), applied before an entry is hashed, and the time range a query can name
(``representable``), checked for the API and the CLI alike.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import overload

from tenantauth.domain.admin.admin_models import AuditEvent

#: What an entry's text never holds as such (``escape``): control characters (PostgreSQL
#: text cannot hold NUL; a newline would forge lines in a listing), surrogates (not UTF-8)
#: and "%", the escape character itself.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f%\ud800-\udfff]")
#: The times an audit query can name: those that have a UTC equivalent.
TIME_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


def storable(event: AuditEvent) -> AuditEvent:
    """Return ``event`` with the text that came from outside (actor, tenant, target) escaped.

    Each character of ``_UNSAFE`` becomes the percent-encoding of its UTF-8 bytes (RFC 3986
    §2.1; a lone surrogate its ``surrogatepass`` bytes), so every value can be stored in both
    databases and percent-decoding a stored value gives back exactly what was sent: a stored
    value holds "%" only as an escape. Values without such characters are unchanged.
    """
    return replace(
        event,
        actor=escape(event.actor),
        tenant_id=escape(event.tenant_id),
        target=escape(event.target),
    )


@overload
def escape(value: str) -> str: ...
@overload
def escape(value: None) -> None: ...
def escape(value: str | None) -> str | None:
    """Return ``value`` with the characters of ``_UNSAFE`` percent-encoded (None stays None)."""
    if value is None or _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in _utf8(m[0])), value)


def _utf8(char: str) -> bytes:
    return char.encode("utf-8", "surrogatepass")


def representable(when: datetime) -> bool:
    """Return whether ``when`` has a UTC equivalent a query can use (``TIME_RANGE``): an offset
    can push a time near year 1 or 9999 outside what ``datetime`` holds."""
    try:
        when.astimezone(UTC)
    except OverflowError:
        return False
    return True
