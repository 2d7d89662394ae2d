"""The optional positive verify cache: off by default (revocation seen at once), and when on,
a revoked token accepted for at most ``cache_ttl`` seconds — the documented delay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tenantauth_client import Claims, InvalidToken, TenantAuthClient
from tenantauth_client.cache import VerifyCache
from tests.client.conftest import Tenant, base_url
from tests.e2e.harness import Server

TTL = 3.0  # long enough for a loaded machine to rotate and re-verify inside it


@pytest.fixture
def cached(live: Server) -> Iterator[TenantAuthClient]:
    """A verifying client of ``live`` with the cache on (``cache_ttl`` = TTL)."""
    with TenantAuthClient(base_url(live), cache_ttl=TTL) as client:
        yield client


@pytest.mark.e2e
def test_cache_is_off_by_default(
    admin: TenantAuthClient, verifier: TenantAuthClient, tenant: Tenant
) -> None:
    """A default client has no cache: a token revoked right after a successful verify is
    rejected by the very next verify."""
    assert verifier.cache is None and "cache_ttl=0" in repr(verifier)
    token = admin.issue_token(tenant.id, "alice")
    assert verifier.verify(token).subject == "alice"
    admin.revoke_user(tenant.id, "alice")
    with pytest.raises(InvalidToken):
        verifier.verify(token)


@pytest.mark.e2e
def test_cached_client_accepts_a_revoked_token_for_at_most_the_ttl(
    admin: TenantAuthClient, verifier: TenantAuthClient, cached: TenantAuthClient, tenant: Tenant
) -> None:
    """With cache_ttl on, a token verified just before its tenant was rotated is still
    accepted by that client (the server already rejects it) until cache_ttl has passed."""
    token = admin.issue_token(tenant.id, "alice")
    asked_at = time.monotonic()
    assert cached.verify(token).subject == "alice"
    cached_at = time.monotonic()  # the entry was stored between asked_at and now
    admin.rotate_tenant(tenant.id)
    with pytest.raises(InvalidToken):
        verifier.verify(token)  # the server rejects it at once
    assert cached.verify(token).subject == "alice"  # the cache still answers
    assert time.monotonic() - asked_at < TTL
    time.sleep(max(0.0, cached_at + TTL + 0.05 - time.monotonic()))
    with pytest.raises(InvalidToken):
        cached.verify(token)  # the entry expired: asked again, rejected


@pytest.mark.e2e
def test_cache_never_caches_rejections(
    admin: TenantAuthClient, cached: TenantAuthClient, tenant: Tenant
) -> None:
    """A rejected token is asked again every time (only successes are cached), and the cache
    is keyed by audience (a success for one audience is not one for another)."""
    token = admin.issue_token(tenant.id, "alice", aud="billing")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            cached.verify(token, audience="reports")
    assert cached.verify(token, audience="billing").subject == "alice"
    with pytest.raises(InvalidToken):
        cached.verify(token, audience="reports")
    assert cached.cache is not None and len(cached.cache) == 1


class Clocks:
    """A monotonic and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        """Start at wall time 1,800,000,000."""
        self.now = 1_800_000_000.0

    def monotonic(self) -> float:
        """Return the current time."""
        return self.now

    def wall(self) -> float:
        """Return the current time."""
        return self.now


def claims(exp: float, **extra: Any) -> Claims:
    """Return Claims expiring at ``exp``."""
    return Claims.from_json({"tid": "acme", "sub": "alice", "exp": int(exp), "iat": 0, **extra})


def test_entries_live_for_the_ttl_but_never_past_exp() -> None:
    """An entry lasts ttl seconds, or until the token's exp if sooner; an expired token is
    never stored."""
    clocks = Clocks()
    cache = VerifyCache(10, monotonic=clocks.monotonic, wall=clocks.wall)
    cache.put("long", None, claims(clocks.now + 3600))
    cache.put("short", None, claims(clocks.now + 4))
    cache.put("gone", None, claims(clocks.now - 1))
    assert cache.get("long", None) and cache.get("short", None)
    assert cache.get("gone", None) is None
    clocks.now += 4
    assert cache.get("short", None) is None and cache.get("long", None)
    clocks.now += 6
    assert cache.get("long", None) is None


def test_cache_is_bounded_and_drops_the_oldest() -> None:
    """Beyond max_entries the oldest entry goes; keys are hashes, never the token."""
    clocks = Clocks()
    cache = VerifyCache(60, max_entries=3, monotonic=clocks.monotonic, wall=clocks.wall)
    for i in range(5):
        cache.put(f"token-{i}", None, claims(clocks.now + 600))
    assert len(cache) == 3
    assert cache.get("token-0", None) is None and cache.get("token-1", None) is None
    assert cache.get("token-4", None) is not None
    assert not any(b"token-" in key for key in cache._entries)
    with pytest.raises(ValueError, match="positive"):
        VerifyCache(0)


def test_audience_is_part_of_the_key() -> None:
    """(token, None), (token, "") and (token, "a") are three different entries."""
    clocks = Clocks()
    cache = VerifyCache(60, monotonic=clocks.monotonic, wall=clocks.wall)
    cache.put("t", "a", claims(clocks.now + 600))
    assert cache.get("t", None) is None and cache.get("t", "") is None
    assert cache.get("t", "a") is not None
