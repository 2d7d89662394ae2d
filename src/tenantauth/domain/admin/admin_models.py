"""Frozen value objects of the admin plane: admin API keys, principals, audit entries, and
the resource servers global admins register."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: The actor name of the bootstrap ``TENANTAUTH_ADMIN_TOKEN`` (a global admin).
BOOTSTRAP_ACTOR = "bootstrap"
#: The actor name of admin commands run on the server (``tenantauth ...``).
CLI_ACTOR = "cli"


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who is calling the admin API. ``tenant_id`` None means a global admin."""

    actor: str
    tenant_id: str | None = None

    @property
    def is_global(self) -> bool:
        """Return whether this admin may act on every tenant and on the admin plane itself."""
        return self.tenant_id is None


@dataclass(frozen=True)
class AdminKey:
    """A stored admin API key: only the keyed hash of its secret is kept."""

    id: str
    name: str
    tenant_id: str | None
    key_hash: bytes = field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """Return the recognisable, non-secret start of the key (``ta_adm_<id>_``)."""
        return f"ta_adm_{self.id}_"

    @property
    def scope(self) -> str:
        """Return ``global`` or ``tenant``."""
        return "global" if self.tenant_id is None else "tenant"

    def usable_at(self, when: datetime) -> bool:
        """Return whether the key is neither revoked nor expired at ``when``."""
        expired = self.expires_at is not None and self.expires_at <= when
        return self.revoked_at is None and not expired


@dataclass(frozen=True)
class ResourceServer:
    """A stored resource server: a credential that may introspect tokens (RFC 7662) of the
    ``tenants`` it is allowed for and nothing else. Only the keyed hash of its secret is kept.

    ``audience``, when set, must be in a token's ``aud`` for introspection to call it active.
    """

    id: str
    name: str
    tenants: tuple[str, ...]
    audience: str | None
    secret_hash: bytes = field(repr=False)
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before it is placed in the chain."""

    actor: str
    tenant_id: str | None
    action: str
    target: str | None
    request_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the audit chain as stored (``seq`` 1, 2, 3, ... without gaps)."""

    seq: int
    occurred_at: datetime
    event: AuditEvent
    prev_hash: bytes = field(repr=False)
    entry_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an audit listing; None means "any". Times are inclusive bounds."""

    tenant_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
