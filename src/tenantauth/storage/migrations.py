"""A small migration runner: numbered SQL files, one directory per dialect.

``migrations/<dialect>/NNNN_<slug>.sql`` carry the same numbers in every dialect; applied
versions are recorded in ``schema_migrations``. Each adapter applies pending files inside one
transaction of its own (PostgreSQL also takes an advisory lock so replicas can race safely).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tenantauth.errors import ConfigurationError

_FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str


def migrations_root() -> Path:
    """Return the ``migrations`` directory: packaged in a wheel, or the repository's own.

    Raises ``ConfigurationError`` if neither exists.
    """
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "_migrations", here.parents[3] / "migrations"):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError(["migrations directory not found (broken install?)"])


def load(dialect: str) -> list[Migration]:
    """Return every migration of ``dialect`` ordered by version."""
    found = []
    for path in sorted((migrations_root() / dialect).glob("*.sql")):
        match = _FILE_RE.fullmatch(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    return found
