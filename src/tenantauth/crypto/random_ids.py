"""Fresh random ids (request ids) without a system call per id.

``uuid.uuid4()`` reads 16 bytes from the OS on every call, and the read releases the GIL: in a
server whose request threads queue for the GIL, each release hands it to another thread and the
caller then waits to get it back (docs/design.md, "Hot-path calls that release the GIL").
``RandomIds`` reads the OS CSPRNG once per ``BATCH`` ids and hands out slices of what it read,
so an id is as unpredictable as ``uuid4``'s (128 random bits where it has 122) and the read is
paid once per 256 requests.
"""

from __future__ import annotations

import os
import threading

#: Bytes per id (128 bits, written as 32 hex digits).
ID_BYTES = 16
#: Ids per read of the OS CSPRNG.
BATCH = 256
_HEX_PER_ID = 2 * ID_BYTES


class RandomIds:
    """Hands out ids of ``ID_BYTES`` random bytes as lower-case hex; thread-safe.

    A forked child forgets what its parent had read (``os.register_at_fork``), so two worker
    processes never hand out the same id."""

    _lock: threading.Lock
    _hex: str  # hex digits read, of which those from ``_at`` on are not handed out yet
    _at: int

    def __init__(self) -> None:
        """Start with nothing read: the first id reads a batch."""
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def new(self) -> str:
        """Return a fresh id: 32 hex digits from the OS CSPRNG, never handed out before."""
        with self._lock:
            at = self._at
            if at >= len(self._hex):
                self._hex = os.urandom(ID_BYTES * BATCH).hex()
                at = 0
            self._at = at + _HEX_PER_ID
            return self._hex[at : at + _HEX_PER_ID]

    def _forget(self) -> None:
        # A new lock too: a thread of the parent may have held the old one across the fork.
        self._lock = threading.Lock()
        self._hex = ""
        self._at = 0


#: This process's request ids (a batch lasts 256 requests; one reader is enough).
REQUEST_IDS = RandomIds()
