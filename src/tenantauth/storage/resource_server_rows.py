"""Resource servers inside a transaction (``tx.resource_servers``), shared by both SQL
adapters through the same ``Dialect`` as the other repositories.

A server's row holds its name, audience and secret hash; the tenants it may introspect for
are rows of ``resource_server_tenants`` keyed by tenant first, so a deleted tenant leaves
every server in one statement (``delete_all``, the base class's). Grants are deleted
explicitly with their server: SQLite enforces no foreign keys here.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.errors import NotFoundError
from tenantauth.storage.accounts import Rows

SERVER_COLUMNS = "id, name, audience, secret_hash, created_at, updated_at, secret_rotated_at"
_SELECT = f"SELECT {SERVER_COLUMNS} FROM resource_servers"  # noqa: S608 - constant
_TENANTS_OF = (
    "SELECT resource_server_id, tenant_id FROM resource_server_tenants "
    "WHERE resource_server_id >= {} AND resource_server_id <= {}"
)


def _utc(value: datetime | str) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.astimezone(UTC)


class ResourceServerRows(Rows):
    """Resource servers and their tenant grants."""

    _table = "resource_server_tenants"  # delete_all(tenant_id): the grants of that tenant

    def insert(self, server: ResourceServer) -> None:
        """Insert a server and its grants. Raises ``ConflictError`` if the id exists."""
        text = f"INSERT INTO resource_servers ({SERVER_COLUMNS}) VALUES ({', '.join(['{}'] * 7)})"  # noqa: S608
        self._insert(text, self._params(server), f"resource server {server.id!r}")
        self._grant(server)

    def get(self, server_id: str, *, for_update: bool = False) -> ResourceServer | None:
        """Return the server with its tenants (sorted), or None; ``for_update`` locks its row
        until the transaction ends (concurrent changes of one server then serialise)."""
        lock = self._d.row_lock if for_update else ""
        row = self._one(f"{_SELECT} WHERE id = {{}}{lock}", (server_id,))
        return self._with_tenants([row])[0] if row else None

    def list(self, after: str | None, limit: int) -> list[ResourceServer]:
        """Return up to ``limit`` servers with id > ``after``, ordered by id, with tenants."""
        rows = self._all(f"{_SELECT} WHERE id > {{}} ORDER BY id LIMIT {{}}", (after or "", limit))
        return self._with_tenants(rows)

    def update(self, server: ResourceServer) -> None:
        """Overwrite a server and replace its grants. Raises ``NotFoundError`` if missing."""
        text = (
            "UPDATE resource_servers SET name = {}, audience = {}, secret_hash = {}, "
            "created_at = {}, updated_at = {}, secret_rotated_at = {} WHERE id = {}"
        )
        params = self._params(server)
        if self._count(text, (*params[1:], params[0])) != 1:
            raise NotFoundError(f"resource server {server.id!r} does not exist")
        self._revoke_grants(server.id)
        self._grant(server)

    def delete(self, server_id: str) -> bool:
        """Delete a server and its grants; return whether it existed."""
        self._revoke_grants(server_id)
        return self._count("DELETE FROM resource_servers WHERE id = {}", (server_id,)) == 1

    def rehash(self, server_id: str, old_hash: bytes, new_hash: bytes) -> bool:
        """Replace the stored hash if it is still ``old_hash``; return whether it did."""
        text = "UPDATE resource_servers SET secret_hash = {} WHERE id = {} AND secret_hash = {}"
        return self._count(text, (new_hash, server_id, old_hash)) == 1

    def _grant(self, server: ResourceServer) -> None:
        text = "INSERT INTO resource_server_tenants (tenant_id, resource_server_id) VALUES ({}, {})"
        for tenant_id in server.tenants:
            self._conn.execute(self._d.sql(text), (tenant_id, server.id))

    def _revoke_grants(self, server_id: str) -> None:
        text = "DELETE FROM resource_server_tenants WHERE resource_server_id = {}"
        self._count(text, (server_id,))

    def _with_tenants(self, rows: Sequence[Any]) -> builtins.list[ResourceServer]:
        """Build servers from rows ordered by id, reading the grants of all in one query (the
        id range of the page: ids in between belong to the page or do not exist)."""
        if not rows:
            return []
        grants: dict[str, builtins.list[str]] = defaultdict(builtins.list)
        for server_id, tenant_id in self._all(_TENANTS_OF, (rows[0][0], rows[-1][0])):
            grants[server_id].append(tenant_id)
        return [self._server(row, grants[row[0]]) for row in rows]

    def _params(self, s: ResourceServer) -> tuple[Any, ...]:
        times = (s.created_at, s.updated_at, s.secret_rotated_at)
        return (s.id, s.name, s.audience, s.secret_hash, *(self._time(t) for t in times))

    @staticmethod
    def _server(row: Any, tenants: Sequence[str]) -> ResourceServer:
        server_id, name, audience, secret_hash, created, updated, rotated = row
        return ResourceServer(
            server_id,
            name,
            tuple(sorted(tenants)),  # in Python: the database's collation may order otherwise
            audience,
            bytes(secret_hash),
            _utc(created),
            _utc(updated),
            _utc(rotated),
        )
