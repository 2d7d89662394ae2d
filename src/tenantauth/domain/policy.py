"""Policies the composition root builds from settings and hands to the domain."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What every token must satisfy (RFC 7519 §4.1, RFC 8725 §3.8–3.10).

    ``issuer`` is the service's base URL (``TENANTAUTH_ISSUER``); each tenant is an issuer of
    its own under it (``issuer_for``).
    """

    issuer: str
    default_audience: str
    default_ttl: int = 900
    max_lifetime: int = 86_400
    leeway: int = 30

    def issuer_for(self, tenant_id: str) -> str:
        """The tenant's issuer identifier: its tokens' ``iss`` and its RFC 8414 metadata's
        ``issuer`` (which §3.3 requires to be the same), ``<issuer>/v1/tenants/<id>``."""
        return f"{self.issuer.rstrip('/')}/v1/tenants/{tenant_id}"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long cache entries live; jitter spreads expiries so tenants don't expire together."""

    ttl: float = 300.0
    negative_ttl: float = 10.0
    jitter: float = 0.1
    #: The longest a request waits for another request's storage read of the same tenant.
    load_wait: float = 5.0
    #: The tenant directory (domain/verifying/directory.py): re-read at least this often,
    #: even when no creation ended its incarnation; at most this often, even when creations
    #: keep ending it (in between, ids take the usual way); not kept at all beyond this many
    #: tenants.
    directory_max_age: float = 300.0
    directory_min_interval: float = 1.0
    directory_limit: int = 100_000


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Rules for users' passwords and refresh tokens (issue 3)."""

    password_min_length: int = 12
    password_max_length: int = 256
    refresh_token_ttl: int = 2_592_000
    refresh_reuse_grace: int = 10


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """Verifying from memory (docs/design.md, "Verifying from memory").

    ``lease_seconds``: L, how long a worker trusts its memory after a renewal it sent (a
    wedged worker delays a change by at most this); ``capacity``: tenants held per worker;
    ``max_revocations``: tenants with more live revocations than this are not held (their
    snapshot would be large and change often); ``fills_per_second``: tenants a worker loads
    whole for memory per second at most (each costs a database read); ``warm``: load every
    tenant (up to ``capacity``) right after each registration, ``warm_page`` tenants per
    read with ``warm_pause`` seconds between reads (domain/verifying/warming.py); ``skip``: protocol
    steps left out (tests only).
    """

    lease_seconds: float = 2.0
    capacity: int = 100_000
    max_revocations: int = 10_000
    fills_per_second: float = 50.0
    warm: bool = True
    warm_page: int = 1_000
    warm_pause: float = 0.01
    skip: frozenset[str] = frozenset()
