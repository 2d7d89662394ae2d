"""Cursor pagination shared by every listing (tenants, users, clients).

A cursor is the base64url of the last key of the previous page; listings fetch one row more
than asked to know whether a next page exists.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from tenantauth.errors import InvalidRequestError

T = TypeVar("T")
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def start_after(cursor: str | None, limit: int) -> str | None:
    """Check ``limit`` and decode ``cursor``; return the key to list after (None: from start).

    Raises ``InvalidRequestError`` for a limit outside 1..500 or a cursor we did not issue.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    return decode_cursor(cursor) if cursor else None


def cut(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """Return the page (``limit`` of the ``limit + 1`` rows fetched) and the next cursor."""
    items = list(rows[:limit])
    return items, encode_cursor(key(items[-1])) if len(rows) > limit else None


def encode_cursor(key: str) -> str:
    """Return the opaque cursor that resumes after ``key``."""
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> str:
    """Return the key a cursor resumes after. Raises ``InvalidRequestError`` if malformed."""
    error = InvalidRequestError("cursor is malformed; use next_cursor from a listing")
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise error from exc
    # urlsafe_b64decode skips characters outside the alphabet ("!!!" decodes to ""), so only
    # a cursor we could have produced is accepted.
    if not after or encode_cursor(after) != cursor:
        raise error
    return after
