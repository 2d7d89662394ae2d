"""Ports of the admin plane: the admin API key, resource server and audit-chain repositories
of a ``Tx`` (split from domain/ports.py to keep each module small)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tenantauth.domain.admin.admin_models import AdminKey, AuditEntry, AuditQuery, ResourceServer


class AdminKeyRepo(Protocol):
    """Admin API keys inside a transaction (``tx.admin_keys``); only keyed hashes are stored."""

    def insert(self, key: AdminKey) -> None:
        """Insert. Raises ``ConflictError`` if the id exists."""
        ...

    def get(self, key_id: str) -> AdminKey | None:
        """Return the key (revoked and expired ones too) or None."""
        ...

    def list(self, after: str | None, limit: int) -> list[AdminKey]:
        """Return up to ``limit`` keys with id > ``after``, ordered by id."""
        ...

    def revoke(self, key_id: str, at: datetime) -> bool:
        """Set ``revoked_at`` unless already set; return whether it changed."""
        ...

    def touch(self, key_id: str, at: datetime, unless_since: datetime) -> bool:
        """Set ``last_used_at`` unless it is ``unless_since`` or later; return whether it did."""
        ...

    def rehash(self, key_id: str, old_hash: bytes, new_hash: bytes) -> bool:
        """Replace the key's hash if it is still ``old_hash`` (a master-key rotation moves it
        to the current key's hash on use); return whether it changed."""
        ...


class ResourceServerRepo(Protocol):
    """Resource servers and the tenants each may introspect for (``tx.resource_servers``);
    only keyed hashes of their secrets are stored."""

    def insert(self, server: ResourceServer) -> None:
        """Insert the server with its tenants. Raises ``ConflictError`` if the id exists."""
        ...

    def get(self, server_id: str, *, for_update: bool = False) -> ResourceServer | None:
        """Return the server, its tenants sorted, or None; ``for_update`` locks it until the
        transaction ends, which serialises changes of one server."""
        ...

    def list(self, after: str | None, limit: int) -> list[ResourceServer]:
        """Return up to ``limit`` servers with id > ``after``, ordered by id, with tenants."""
        ...

    def update(self, server: ResourceServer) -> None:
        """Overwrite the server and replace its tenants. Raises ``NotFoundError`` if missing."""
        ...

    def delete(self, server_id: str) -> bool:
        """Delete the server and its tenant grants; return whether it existed."""
        ...

    def rehash(self, server_id: str, old_hash: bytes, new_hash: bytes) -> bool:
        """Replace the secret's hash if it is still ``old_hash`` (moved to the current master
        key on use); return whether it changed."""
        ...

    def delete_all(self, tenant_id: str) -> int:
        """Remove a tenant that is being deleted from every server; return how many grants."""
        ...


class AuditRepo(Protocol):
    """The audit chain inside a transaction (``tx.audit``): append-only."""

    def lock_head(self) -> AuditEntry | None:
        """Serialise appenders until the transaction ends; return the last entry or None."""
        ...

    def append(self, entry: AuditEntry) -> None:
        """Insert the next entry. Raises ``ConflictError`` if its ``seq`` is taken; the
        transaction cannot go on after that (call it last: appenders commit right after)."""
        ...

    def search(self, query: AuditQuery, before: int | None, limit: int) -> list[AuditEntry]:
        """Return up to ``limit`` matching entries with seq < ``before``, newest first."""
        ...

    def walk(self, after: int, limit: int) -> list[AuditEntry]:
        """Return up to ``limit`` entries with seq > ``after``, in chain order."""
        ...
