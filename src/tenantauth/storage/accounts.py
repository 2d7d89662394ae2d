"""Row repositories for users, clients and refresh tokens, shared by both SQL adapters.

Each adapter's transaction exposes them as ``tx.users``, ``tx.clients`` and
``tx.refresh_tokens`` (the Tx split by aggregate). The SQL is written once; a ``Dialect``
carries what differs: the placeholder, how a unique violation looks, how to fence a statement
that may violate one (PostgreSQL aborts the whole transaction otherwise), and time columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from tenantauth.domain.models import Client, RefreshToken, User, UserStatus
from tenantauth.errors import ConflictError, NotFoundError


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL adapters."""

    placeholder: str
    conflict: tuple[type[BaseException], ...]
    savepoint: Callable[[Any], AbstractContextManager[Any]]
    iso_times: bool
    #: Appended to a SELECT that must lock its row until the transaction ends ("" where the
    #: adapter's transactions are serialised anyway, as SQLite's BEGIN IMMEDIATE are).
    row_lock: str = ""
    #: The expression for ``rows.OTHER_KEYS``: a tenant's ``tenant_keys`` rows aggregated
    #: into ``models.encode_keys`` text (NULL for none), for a query on ``tenants t``.
    other_keys: str = "NULL"
    #: The rows a cursor's last statement touched (PostgreSQL's pipelined transactions know it
    #: only once the server has answered: ``postgres.settled_rowcount``).
    rowcount: Callable[[Any], int] = lambda cur: int(cur.rowcount)

    def sql(self, text: str) -> str:
        """Return ``text`` with ``{}`` placeholders in this dialect's style (and
        ``rows.OTHER_KEYS`` as this dialect aggregates it)."""
        return text.replace("{}", self.placeholder).replace("<<OTHER_KEYS>>", self.other_keys)


USER_COLUMNS = "tenant_id, username, password_hash, status, claims, created_at, updated_at"
CLIENT_COLUMNS = (
    "tenant_id, client_id, name, secret_hash, scopes, grant_types, created_at, updated_at, "
    "secret_rotated_at"
)
REFRESH_COLUMNS = (
    "tenant_id, token_hash, family_id, client_id, username, scope, key_version, "
    "subject_version, issued_at, expires_at, used_at, replaced_by, revoked_at"
)


def _marks(columns: str) -> str:
    return ", ".join("{}" for _ in columns.split(", "))


def _assignments(columns: str, skip: int) -> str:
    return ", ".join(f"{c} = {{}}" for c in columns.split(", ")[skip:])


class Rows:
    """Base of the row repositories: one connection, one dialect, one table."""

    _table = ""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._d = dialect

    def delete_all(self, tenant_id: str) -> int:
        """Delete every row of the tenant (the tenant itself is being deleted); return how many."""
        return self._count(f"DELETE FROM {self._table} WHERE tenant_id = {{}}", (tenant_id,))  # noqa: S608

    def _one(self, text: str, params: tuple[Any, ...]) -> Any:
        return self._conn.execute(self._d.sql(text), params).fetchone()

    def _all(self, text: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self._conn.execute(self._d.sql(text), params).fetchall())

    def _count(self, text: str, params: tuple[Any, ...]) -> int:
        return self._d.rowcount(self._conn.execute(self._d.sql(text), params))

    def _insert(
        self, text: str, params: tuple[Any, ...], what: str, *, savepoint: bool = True
    ) -> None:
        """Insert; a conflict raises ``ConflictError`` ("``what`` already exists"). In a
        savepoint, so that the transaction survives the conflict; ``savepoint=False`` for an
        insert its transaction ends with (two round trips fewer on PostgreSQL)."""
        guard = self._d.savepoint(self._conn) if savepoint else nullcontext()
        try:
            with guard:
                self._conn.execute(self._d.sql(text), params)
        except self._d.conflict as exc:
            raise ConflictError(f"{what} already exists") from exc

    def _time(self, value: datetime) -> Any:
        return value.isoformat() if self._d.iso_times else value


def _dt(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class UserRows(Rows):
    """Users of tenants; every method takes ``tenant_id`` first."""

    _table = "users"

    def get(self, tenant_id: str, username: str) -> User | None:
        """Return the user or None."""
        row = self._one(
            f"SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {{}} AND username = {{}}",  # noqa: S608
            (tenant_id, username),
        )
        return self._user(row) if row else None

    def insert(self, user: User) -> None:
        """Insert a user. Raises ``ConflictError`` if the username is taken in the tenant."""
        text = f"INSERT INTO users ({USER_COLUMNS}) VALUES ({_marks(USER_COLUMNS)})"  # noqa: S608
        self._insert(text, self._params(user), f"user {user.username!r}")

    def update(self, user: User) -> None:
        """Overwrite a user. Raises ``NotFoundError`` if it does not exist."""
        text = (
            f"UPDATE users SET {_assignments(USER_COLUMNS, 2)} "  # noqa: S608
            "WHERE tenant_id = {} AND username = {}"
        )
        params = self._params(user)
        if self._count(text, (*params[2:], *params[:2])) != 1:
            raise NotFoundError(f"user {user.username!r} does not exist")

    def delete(self, tenant_id: str, username: str) -> bool:
        """Delete a user; return whether it existed."""
        text = "DELETE FROM users WHERE tenant_id = {} AND username = {}"
        return self._count(text, (tenant_id, username)) == 1

    def list(self, tenant_id: str, after: str | None, limit: int) -> list[User]:
        """Return up to ``limit`` users with username > ``after``, ordered by username."""
        text = (
            f"SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {{}} AND username > {{}} "  # noqa: S608
            "ORDER BY username LIMIT {}"
        )
        return [self._user(r) for r in self._all(text, (tenant_id, after or "", limit))]

    def _params(self, u: User) -> tuple[Any, ...]:
        claims = json.dumps(u.claims, separators=(",", ":"), sort_keys=True)
        return (
            u.tenant_id,
            u.username,
            u.password_hash,
            u.status.value,
            claims,
            self._time(u.created_at),
            self._time(u.updated_at),
        )

    @staticmethod
    def _user(row: Any) -> User:
        tid, username, pw_hash, status, claims, created, updated = row
        return User(
            tid,
            username,
            pw_hash,
            UserStatus(status),
            json.loads(claims),
            _dt(created),
            _dt(updated),
        )


class ClientRows(Rows):
    """OAuth clients of tenants; every method takes ``tenant_id`` first."""

    _table = "clients"

    def get(self, tenant_id: str, client_id: str) -> Client | None:
        """Return the client or None."""
        row = self._one(
            f"SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = {{}} AND client_id = {{}}",  # noqa: S608
            (tenant_id, client_id),
        )
        return self.client_from_row(row) if row else None

    def insert(self, client: Client) -> None:
        """Insert a client. Raises ``ConflictError`` if the id is taken in the tenant."""
        text = f"INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ({_marks(CLIENT_COLUMNS)})"  # noqa: S608
        self._insert(text, self._params(client), f"client {client.client_id!r}")

    def update(self, client: Client) -> None:
        """Overwrite a client. Raises ``NotFoundError`` if it does not exist."""
        text = (
            f"UPDATE clients SET {_assignments(CLIENT_COLUMNS, 2)} "  # noqa: S608
            "WHERE tenant_id = {} AND client_id = {}"
        )
        params = self._params(client)
        if self._count(text, (*params[2:], *params[:2])) != 1:
            raise NotFoundError(f"client {client.client_id!r} does not exist")

    def delete(self, tenant_id: str, client_id: str) -> bool:
        """Delete a client; return whether it existed."""
        text = "DELETE FROM clients WHERE tenant_id = {} AND client_id = {}"
        return self._count(text, (tenant_id, client_id)) == 1

    def list(self, tenant_id: str, after: str | None, limit: int) -> list[Client]:
        """Return up to ``limit`` clients with client_id > ``after``, ordered by client_id."""
        text = (
            f"SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = {{}} AND client_id > {{}} "  # noqa: S608
            "ORDER BY client_id LIMIT {}"
        )
        return [self.client_from_row(r) for r in self._all(text, (tenant_id, after or "", limit))]

    def _params(self, c: Client) -> tuple[Any, ...]:
        return (
            c.tenant_id,
            c.client_id,
            c.name,
            c.secret_hash,
            " ".join(c.scopes),
            " ".join(c.grant_types),
            self._time(c.created_at),
            self._time(c.updated_at),
            self._time(c.secret_rotated_at),
        )

    @staticmethod
    def client_from_row(row: Any) -> Client:
        """Build a Client from the values of ``CLIENT_COLUMNS``, in order."""
        tid, cid, name, secret_hash, scopes, grants, created, updated, rotated = row
        return Client(
            tid,
            cid,
            name,
            bytes(secret_hash),
            tuple(scopes.split()),
            tuple(grants.split()),
            _dt(created),
            _dt(updated),
            _dt(rotated),
        )


class RefreshTokenRows(Rows):
    """Refresh tokens (keyed hashes only); every method takes ``tenant_id`` first."""

    _table = "refresh_tokens"

    def get(self, tenant_id: str, token_hash: bytes) -> RefreshToken | None:
        """Return the stored token with this hash, or None."""
        row = self._one(
            f"SELECT {REFRESH_COLUMNS} FROM refresh_tokens "  # noqa: S608
            "WHERE tenant_id = {} AND token_hash = {}",
            (tenant_id, token_hash),
        )
        return self._token(row) if row else None

    def insert(self, token: RefreshToken) -> None:
        """Store a new token. Raises ``ConflictError`` on a (astronomically unlikely) clash."""
        text = f"INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ({_marks(REFRESH_COLUMNS)})"  # noqa: S608
        self._insert(text, astuple(token), "refresh token")

    def mark_used(
        self, tenant_id: str, token_hash: bytes, used_at: int, replaced_by: bytes
    ) -> bool:
        """Record that the token was exchanged for ``replaced_by``; return False if it was
        already used or revoked (so two racing exchanges cannot both win)."""
        text = (
            "UPDATE refresh_tokens SET used_at = {}, replaced_by = {} WHERE tenant_id = {} "
            "AND token_hash = {} AND used_at IS NULL AND revoked_at IS NULL"
        )
        return self._count(text, (used_at, replaced_by, tenant_id, token_hash)) == 1

    def revoke(self, tenant_id: str, token_hash: bytes, at: int) -> bool:
        """Revoke one token; return whether it was live."""
        text = (
            "UPDATE refresh_tokens SET revoked_at = {} WHERE tenant_id = {} AND token_hash = {} "
            "AND revoked_at IS NULL"
        )
        return self._count(text, (at, tenant_id, token_hash)) == 1

    def revoke_family(self, tenant_id: str, family_id: str, at: int) -> int:
        """Revoke every token of a family (reuse detected, RFC 9700 §4.14.2); return how many."""
        text = (
            "UPDATE refresh_tokens SET revoked_at = {} WHERE tenant_id = {} AND family_id = {} "
            "AND revoked_at IS NULL"
        )
        return self._count(text, (at, tenant_id, family_id))

    def revoke_user(self, tenant_id: str, username: str, at: int) -> int:
        """Revoke every refresh token of a user; return how many."""
        text = (
            "UPDATE refresh_tokens SET revoked_at = {} WHERE tenant_id = {} AND username = {} "
            "AND revoked_at IS NULL"
        )
        return self._count(text, (at, tenant_id, username))

    @staticmethod
    def _token(row: Any) -> RefreshToken:
        values = list(row)
        values[1] = bytes(values[1])
        values[11] = bytes(values[11]) if values[11] is not None else None
        return RefreshToken(*values)
