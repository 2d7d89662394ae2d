"""Embedded mode's first-start bootstrap: the state directory and its generated secrets."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

MASTER_KEY_FILE = "master.key"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name


def ensure_state(state_dir: Path, *, admin_token_given: bool, master_key_given: bool) -> list[str]:
    """Create the state directory (0700) and any missing secret file (0600).

    Returns the names of the files generated now (empty on later starts). Secrets given in the
    environment are never written to disk.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_dir.chmod(0o700)
    made = []
    wanted = (
        (MASTER_KEY_FILE, master_key_given, _new_master_key),
        (ADMIN_TOKEN_FILE, admin_token_given, _new_admin_token),
    )
    for filename, given, make in wanted:
        path = state_dir / filename
        if given or path.exists():
            continue
        _write_private(path, make() + "\n")
        made.append(filename)
    database = state_dir / "tenantauth.db"
    if not database.exists():
        _write_private(database, "")  # SQLite fills an empty file; it keeps the 0600 mode
    return made


def read_admin_token(state_dir: Path) -> str:
    """Return the generated admin token (for printing once after it was created)."""
    return (state_dir / ADMIN_TOKEN_FILE).read_text(encoding="ascii").strip()


def _new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _new_admin_token() -> str:
    return "ta_admin_" + secrets.token_urlsafe(32)


def _write_private(path: Path, text: str) -> None:
    # O_EXCL: never clobber a secret another process just wrote; 0600 from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
