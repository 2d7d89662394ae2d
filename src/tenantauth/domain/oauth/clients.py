"""OAuth client use cases: create, show, list, update, rotate the secret, delete.

Clients are confidential (RFC 6749 §2.1): each has a 256-bit random secret that is returned
once, by ``create_client`` and ``rotate_client_secret``, and stored only as a keyed hash
(``ClientSecretHasher``; docs/design.md, "Client secrets and passwords"). Every write locks
the tenant row, so a PATCH racing a rotation cannot write the old secret hash back.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tenantauth.crypto.client_secrets import generate_client_id, generate_client_secret
from tenantauth.domain import paging
from tenantauth.domain.models import Client
from tenantauth.domain.paging import DEFAULT_PAGE_SIZE
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import (
    MAX_NAME_LENGTH,
    require_live,
    require_tenant_id,
)
from tenantauth.domain.tokens import CONTROL_CHARACTERS, MAX_SCOPE_LENGTH
from tenantauth.errors import InvalidRequestError, NotFoundError

#: The grants the token endpoint implements (RFC 6749 §4.4, §4.3, §6).
GRANT_TYPES = ("client_credentials", "password", "refresh_token")
MAX_SCOPES = 50
MAX_CLIENT_NAME_LENGTH = MAX_NAME_LENGTH
# RFC 6749 §3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E.
SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Generated ids are "tac_" + base64url; anything else cannot exist, so it is 404 unread.
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ClientPage:
    """One page of clients ordered by client_id; ``next_cursor`` is None on the last page."""

    items: list[Client]
    next_cursor: str | None


def create_client(
    svc: Services,
    tenant_id: str,
    name: str,
    scopes: Sequence[str],
    grant_types: Sequence[str],
) -> tuple[Client, str]:
    """Register a confidential client with a new id and secret.

    Returns the client and its plaintext secret, which is not stored and cannot be shown
    again. Raises ``NotFoundError`` for an unknown tenant, ``InvalidRequestError`` saying what
    is wrong with the name, scopes or grant types.
    """
    require_tenant_id(tenant_id)
    name, scopes, grants = _name(name), check_scopes(scopes), check_grant_types(grant_types)
    secret = generate_client_secret()
    now = _now(svc)
    client = Client(
        tenant_id=tenant_id,
        client_id=generate_client_id(),
        name=name,
        secret_hash=svc.client_secrets.hash(secret),
        scopes=scopes,
        grant_types=grants,
        created_at=now,
        updated_at=now,
        secret_rotated_at=now,
    )
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        tx.clients.insert(client)
    return client, secret


def get_client(svc: Services, tenant_id: str, client_id: str) -> Client:
    """Return one client. Raises ``NotFoundError`` for an unknown tenant or client."""
    require_tenant_id(tenant_id)
    _require_possible(client_id)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        return _require_client(tx.clients.get(tenant_id, client_id), client_id)


def list_clients(
    svc: Services, tenant_id: str, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> ClientPage:
    """Return one page of the tenant's clients ordered by client_id.

    Raises ``NotFoundError`` for an unknown tenant, ``InvalidRequestError`` for a malformed
    cursor or a limit outside 1..500.
    """
    require_tenant_id(tenant_id)
    after = paging.start_after(cursor, limit)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        rows = tx.clients.list(tenant_id, after, limit + 1)
    return ClientPage(*paging.cut(rows, limit, lambda r: r.client_id))


def update_client(
    svc: Services,
    tenant_id: str,
    client_id: str,
    *,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    grant_types: Sequence[str] | None = None,
) -> Client:
    """Rename a client or replace its scopes or grant types (None leaves a field as it is).

    Tokens already issued keep the scopes they were issued with. Returns the client. Raises
    ``NotFoundError``, ``InvalidRequestError``.
    """
    require_tenant_id(tenant_id)
    _require_possible(client_id)
    new_name = _name(name) if name is not None else None
    new_scopes = check_scopes(scopes) if scopes is not None else None
    new_grants = check_grant_types(grant_types) if grant_types is not None else None

    def change(client: Client) -> Client:
        return replace(
            client,
            name=new_name if new_name is not None else client.name,
            scopes=new_scopes if new_scopes is not None else client.scopes,
            grant_types=new_grants if new_grants is not None else client.grant_types,
            updated_at=_now(svc),
        )

    return _change(svc, tenant_id, client_id, change)


def rotate_client_secret(svc: Services, tenant_id: str, client_id: str) -> tuple[Client, str]:
    """Replace a client's secret; the old one stops authenticating when this returns.

    Returns the client and its new plaintext secret, shown once. Tokens issued before stay
    valid until they expire (revoke them separately if the secret leaked). Raises
    ``NotFoundError``.
    """
    require_tenant_id(tenant_id)
    _require_possible(client_id)
    secret = generate_client_secret()
    secret_hash = svc.client_secrets.hash(secret)

    def change(client: Client) -> Client:
        now = _now(svc)
        return replace(client, secret_hash=secret_hash, secret_rotated_at=now, updated_at=now)

    return _change(svc, tenant_id, client_id, change), secret


def delete_client(svc: Services, tenant_id: str, client_id: str) -> None:
    """Delete a client: it can no longer authenticate, so it can obtain and refresh nothing.

    Raises ``NotFoundError`` for an unknown tenant or client.
    """
    require_tenant_id(tenant_id)
    _require_possible(client_id)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        if not tx.clients.delete(tenant_id, client_id):
            raise NotFoundError(f"client {client_id!r} does not exist")


def upgrade_secret_hash(svc: Services, client: Client, secret: str) -> Client:
    """Store ``secret``'s hash under the current master key if ``client`` holds an older one.

    Call only after ``secret`` verified against ``client.secret_hash``. A keyed hash cannot be
    re-wrapped like a tenant secret (we never keep the plaintext), so a master-key rotation
    moves each client to the new key the next time it authenticates (docs/design.md,
    "Master-key rotation"). The write is conditional, under the tenant row lock that every
    client change takes: if the secret was rotated, or the client deleted, since it was read,
    nothing is written (an old secret is never written back). Returns the client.
    Raises ``DependencyUnavailableError``.
    """
    current = svc.client_secrets.hash(secret)
    if hmac.compare_digest(current, client.secret_hash):
        return client  # the common case: no write, no lock
    with svc.storage.transaction() as tx:
        tx.get_tenant(client.tenant_id, for_update=True)
        stored = tx.clients.get(client.tenant_id, client.client_id)
        if stored is None or not hmac.compare_digest(stored.secret_hash, client.secret_hash):
            return client  # changed meanwhile: authenticated as read, nothing to upgrade
        upgraded = replace(stored, secret_hash=current)
        tx.clients.update(upgraded)
    return upgraded


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """Return the scopes a client may request, after checking them.

    Raises ``InvalidRequestError`` unless each is an RFC 6749 §3.3 scope-token (printable
    ASCII without space, '"' or '\\'), there are at most 50 with no duplicates, and together
    they fit in one token's ``scope`` claim.
    """
    if isinstance(scopes, str):
        raise InvalidRequestError("scopes must be a list of scope tokens, not a string")
    if len(scopes) > MAX_SCOPES:
        raise InvalidRequestError(f"a client may have at most {MAX_SCOPES} scopes")
    bad = [s for s in scopes if not isinstance(s, str) or not SCOPE_TOKEN_RE.fullmatch(s)]
    if bad:
        raise InvalidRequestError(
            f"scope {bad[0]!r} is not a scope token: use printable ASCII without spaces, "
            "'\"' or '\\' (RFC 6749 §3.3)"
        )
    _no_duplicates("scopes", scopes)
    if len(" ".join(scopes)) > MAX_SCOPE_LENGTH:
        raise InvalidRequestError(
            f"the scopes joined by spaces must be at most {MAX_SCOPE_LENGTH} characters"
        )
    return tuple(scopes)


def check_grant_types(grant_types: Sequence[str]) -> tuple[str, ...]:
    """Return the grant types after checking them.

    Raises ``InvalidRequestError`` unless they are a non-empty list, without duplicates, of
    ``client_credentials``, ``password`` and ``refresh_token``.
    """
    if isinstance(grant_types, str) or not grant_types:
        raise InvalidRequestError(f"grant_types must be a non-empty list of {_GRANT_LIST}")
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise InvalidRequestError(f"grant type {unknown[0]!r} is not one of {_GRANT_LIST}")
    _no_duplicates("grant_types", grant_types)
    return tuple(grant_types)


_GRANT_LIST = ", ".join(GRANT_TYPES)


def _no_duplicates(field: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise InvalidRequestError(f"{field} lists {value!r} twice")
        seen.add(value)


def _name(name: str) -> str:
    if not name.strip() or len(name) > MAX_CLIENT_NAME_LENGTH:
        raise InvalidRequestError(f"name must be 1 to {MAX_CLIENT_NAME_LENGTH} characters")
    if CONTROL_CHARACTERS.search(name):
        raise InvalidRequestError("name must not contain control characters")
    return name


def _change(
    svc: Services, tenant_id: str, client_id: str, change: Callable[[Client], Client]
) -> Client:
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id, for_update=True), tenant_id)
        client = change(_require_client(tx.clients.get(tenant_id, client_id), client_id))
        tx.clients.update(client)
    return client


def _require_possible(client_id: str) -> None:
    """Raise ``NotFoundError`` for ids no client can have, before any lookup."""
    if _CLIENT_ID_RE.fullmatch(client_id) is None:
        raise NotFoundError("no client has that id")


def _require_client(client: Client | None, client_id: str) -> Client:
    if client is None:
        raise NotFoundError(f"client {client_id!r} does not exist")
    return client


def _now(svc: Services) -> datetime:
    return datetime.fromtimestamp(svc.clock.now(), UTC)
