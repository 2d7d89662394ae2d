"""Storage adapters; ``open_storage(url)`` picks one by URL scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tenantauth.domain.ports import Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.errors import ConfigurationError


class MigratableStorage(Storage, Protocol):
    """A storage that can apply its schema migrations."""

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        ...

    def pending_migrations(self) -> list[int]:
        """Return the versions not yet applied."""
        ...


def open_storage(
    url: str,
    *,
    pool_min: int = 1,
    pool_max: int = 10,
    timeout: float = 5.0,
    telemetry: Telemetry = NULL_TELEMETRY,
) -> MigratableStorage:
    """Return the adapter for ``url`` (``postgresql://`` or ``sqlite:///path``), unopened;
    PostgreSQL reports its calls and pool to ``telemetry`` (SQLite, embedded, does not).

    Raises ``ConfigurationError`` for any other scheme.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from tenantauth.storage.postgres import PostgresStorage  # noqa: PLC0415 - optional driver

        return PostgresStorage(
            url,
            min_size=pool_min,
            max_size=pool_max,
            timeout=timeout,
            statement_timeout_ms=int(timeout * 1000),  # DB_TIMEOUT bounds statements too
            telemetry=telemetry,
        )
    if url.startswith("sqlite:///"):
        from tenantauth.storage.sqlite import SqliteStorage  # noqa: PLC0415

        path = Path(url.removeprefix("sqlite:///"))
        return SqliteStorage(path, timeout=timeout)
    raise ConfigurationError(
        ["TENANTAUTH_DATABASE_URL must start with postgresql:// or sqlite:///"]
    )
