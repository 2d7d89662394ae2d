"""Resource server use cases: create, list, show, update, rotate the secret, delete.

A resource server is a credential that may introspect tokens (RFC 7662 §2.1: "the protected
resource" authenticates to the introspection endpoint) of the tenants it is allowed for, and
do nothing else: it is no client of any tenant, so the token and revocation endpoints refuse
it (docs/design.md, "Resource servers"). Only global admins manage them (api/auth.py).

Its secret is 256 random bits, returned once (by ``create_resource_server`` and
``rotate_resource_server_secret``) and stored as HMAC-SHA256 under a subkey of the master key
of its own (``RESOURCE_SERVER_PURPOSE``), as client secrets are. Writes that name tenants lock
their rows, in id order, so a tenant deleted meanwhile is never granted (tenant deletion takes
the same lock and removes the tenant from every server).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from tenantauth.crypto.client_secrets import (
    ClientSecretHasher,
    generate_resource_server_id,
    generate_resource_server_secret,
)
from tenantauth.domain import paging
from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.domain.models import is_tenant_id
from tenantauth.domain.paging import DEFAULT_PAGE_SIZE
from tenantauth.domain.ports import Tx
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import MAX_NAME_LENGTH, require_live
from tenantauth.domain.tokens import CONTROL_CHARACTERS, MAX_AUDIENCE_LENGTH
from tenantauth.errors import InvalidRequestError, NotFoundError

#: At most this many tenants per server: a full list still fits the 64 KiB body limit.
MAX_TENANTS = 500
MAX_SERVER_NAME_LENGTH = MAX_NAME_LENGTH
#: HKDF ``info`` of the secret-hashing key (RFC 5869 §3.2: one key per purpose).
RESOURCE_SERVER_PURPOSE = b"tenantauth/resource-server-secret-hmac/v1"
#: Generated ids: "tar_" + base64url of 16 bytes. Anything else cannot exist (404 unread).
SERVER_ID_RE = re.compile(r"tar_[A-Za-z0-9_-]{22}")
# Lone surrogates are not Unicode text (RFC 8259 §8.2): no storage could hold them.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class Keep(Enum):
    """The value of an update argument that leaves the field as it is (None clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ResourceServerPage:
    """One page of resource servers ordered by id; ``next_cursor`` is None on the last page."""

    items: list[ResourceServer]
    next_cursor: str | None


def secret_hasher(svc: Services) -> ClientSecretHasher:
    """Return the keyed hash of resource server secrets (current master key first; secrets
    hashed under an older one still verify and are re-hashed on use)."""
    current, older = svc.keyring.derive(RESOURCE_SERVER_PURPOSE)
    return ClientSecretHasher(current, older_keys=older)


def create_resource_server(
    svc: Services, name: str, tenants: Sequence[str], audience: str | None = None
) -> tuple[ResourceServer, str]:
    """Register a resource server allowed to introspect tokens of ``tenants``.

    Returns the server and its plaintext secret, which is not kept and cannot be shown again.
    Raises ``InvalidRequestError`` for a bad name, tenant list or audience, ``NotFoundError``
    for a tenant that does not exist (or was deleted).
    """
    allowed, wanted = check_tenants(tenants), check_audience(audience)
    secret, now = generate_resource_server_secret(), _now(svc)
    server = ResourceServer(
        id=generate_resource_server_id(),
        name=_name(name),
        tenants=allowed,
        audience=wanted,
        secret_hash=secret_hasher(svc).hash(secret),
        created_at=now,
        updated_at=now,
        secret_rotated_at=now,
    )
    with svc.storage.transaction() as tx:
        _lock_live(tx, allowed)
        tx.resource_servers.insert(server)
    return server, secret


def list_resource_servers(
    svc: Services, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> ResourceServerPage:
    """Return one page of resource servers ordered by id, each with its tenants.

    Raises ``InvalidRequestError`` for a malformed cursor or a limit outside 1..500.
    """
    after = paging.start_after(cursor, limit)
    with svc.storage.transaction() as tx:
        rows = tx.resource_servers.list(after, limit + 1)
    return ResourceServerPage(*paging.cut(rows, limit, lambda s: s.id))


def get_resource_server(svc: Services, server_id: str) -> ResourceServer:
    """Return one resource server. Raises ``NotFoundError`` if there is none with this id."""
    require_possible(server_id)
    with svc.storage.transaction() as tx:
        return _require(tx.resource_servers.get(server_id), server_id)


def update_resource_server(
    svc: Services,
    server_id: str,
    *,
    name: str | None = None,
    tenants: Sequence[str] | None = None,
    audience: str | Keep | None = KEEP,
) -> ResourceServer:
    """Rename a server, replace its tenants, or set or clear (None) its audience.

    A tenant taken off the list can no longer be introspected by it once this returns.
    Returns the server. Raises ``NotFoundError`` (the server or a listed tenant),
    ``InvalidRequestError``.
    """
    require_possible(server_id)
    new_name = _name(name) if name is not None else None
    new_tenants = check_tenants(tenants) if tenants is not None else None
    new_audience = audience if audience is KEEP else check_audience(audience)

    def change(tx: Tx, server: ResourceServer) -> ResourceServer:
        if new_tenants is not None:
            _lock_live(tx, new_tenants)
        return replace(
            server,
            name=new_name if new_name is not None else server.name,
            tenants=new_tenants if new_tenants is not None else server.tenants,
            audience=server.audience if isinstance(new_audience, Keep) else new_audience,
            updated_at=_now(svc),
        )

    return _change(svc, server_id, change)


def rotate_resource_server_secret(svc: Services, server_id: str) -> tuple[ResourceServer, str]:
    """Give a server a new secret; the old one stops authenticating when this returns.

    Returns the server and its new plaintext secret, shown once. Raises ``NotFoundError``.
    """
    require_possible(server_id)
    secret = generate_resource_server_secret()
    secret_hash = secret_hasher(svc).hash(secret)

    def change(tx: Tx, server: ResourceServer) -> ResourceServer:
        now = _now(svc)
        return replace(server, secret_hash=secret_hash, secret_rotated_at=now, updated_at=now)

    return _change(svc, server_id, change), secret


def delete_resource_server(svc: Services, server_id: str) -> None:
    """Delete a server: its secret authenticates nothing from now on.

    Raises ``NotFoundError`` if there is none with this id.
    """
    require_possible(server_id)
    with svc.storage.transaction() as tx:
        if not tx.resource_servers.delete(server_id):
            raise NotFoundError(f"resource server {server_id!r} does not exist")


def check_tenants(tenants: Sequence[str]) -> tuple[str, ...]:
    """Return the tenant ids sorted, after checking them.

    Raises ``InvalidRequestError`` unless they are a list of at most ``MAX_TENANTS`` tenant
    ids without duplicates.
    """
    if isinstance(tenants, str):
        raise InvalidRequestError("tenants must be a list of tenant ids, not a string")
    if len(tenants) > MAX_TENANTS:
        raise InvalidRequestError(f"a resource server may list at most {MAX_TENANTS} tenants")
    bad = [t for t in tenants if not isinstance(t, str) or not is_tenant_id(t)]
    if bad:
        raise InvalidRequestError(f"{bad[0]!r} is not a tenant id")
    if len(set(tenants)) != len(tenants):
        raise InvalidRequestError("tenants lists a tenant twice")
    return tuple(sorted(tenants))


def check_audience(audience: str | None) -> str | None:
    """Return the audience (None: none required) after checking it.

    Raises ``InvalidRequestError`` unless it is 1 to 255 characters of Unicode text without
    control characters (an ``aud`` value, RFC 7519 §4.1.3).
    """
    if audience is None:
        return None
    if not 1 <= len(audience) <= MAX_AUDIENCE_LENGTH or not _printable(audience):
        raise InvalidRequestError(
            f"audience must be 1 to {MAX_AUDIENCE_LENGTH} characters without control characters"
        )
    return audience


def require_possible(server_id: str) -> None:
    """Raise ``NotFoundError`` for ids no resource server can have, before any lookup."""
    if SERVER_ID_RE.fullmatch(server_id) is None:
        raise NotFoundError("no resource server has that id")


def _lock_live(tx: Tx, tenants: Sequence[str]) -> None:
    # In id order, so two writers naming the same tenants cannot deadlock.
    for tenant_id in sorted(tenants):
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)


def _change(
    svc: Services, server_id: str, change: Callable[[Tx, ResourceServer], ResourceServer]
) -> ResourceServer:
    with svc.storage.transaction() as tx:
        # Locked: a rename racing a rotation must not write the old secret hash back.
        locked = tx.resource_servers.get(server_id, for_update=True)
        server = change(tx, _require(locked, server_id))
        tx.resource_servers.update(server)
    return server


def _require(server: ResourceServer | None, server_id: str) -> ResourceServer:
    if server is None:
        raise NotFoundError(f"resource server {server_id!r} does not exist")
    return server


def _name(name: str) -> str:
    if not name.strip() or len(name) > MAX_SERVER_NAME_LENGTH:
        raise InvalidRequestError(f"name must be 1 to {MAX_SERVER_NAME_LENGTH} characters")
    if not _printable(name):
        raise InvalidRequestError("name must not contain control characters or lone surrogates")
    return name


def _printable(text: str) -> bool:
    return not (CONTROL_CHARACTERS.search(text) or _LONE_SURROGATE.search(text))


def _now(svc: Services) -> datetime:
    return datetime.fromtimestamp(svc.clock.now(), UTC)
