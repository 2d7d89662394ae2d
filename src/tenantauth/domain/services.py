"""The bundle of dependencies the composition root builds once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.admins import AdminAuthenticator
from tenantauth.domain.keys import KeyResolver
from tenantauth.domain.policy import CachePolicy, TokenPolicy
from tenantauth.domain.ports import Cache, Clock, Storage
from tenantauth.domain.tokens import TokenVerifier


@dataclass(frozen=True)
class Services:
    """Everything a use case may touch. Built by ``create_app`` (or the CLI), never at import."""

    storage: Storage
    cache: Cache
    clock: Clock
    keyring: MasterKeyring
    tokens: TokenPolicy
    caching: CachePolicy
    keys: KeyResolver
    verifier: TokenVerifier
    admins: AdminAuthenticator

    @classmethod
    def build(
        cls,
        *,
        storage: Storage,
        cache: Cache,
        clock: Clock,
        keyring: MasterKeyring,
        tokens: TokenPolicy,
        caching: CachePolicy,
        admin_token: str,
    ) -> Services:
        """Wire the resolver and verifier around the given adapters and policies."""
        keys = KeyResolver(storage, cache, keyring, caching, clock=clock, tokens=tokens)
        verifier = TokenVerifier(keys, tokens, clock)
        return cls(
            storage,
            cache,
            clock,
            keyring,
            tokens,
            caching,
            keys,
            verifier,
            AdminAuthenticator(admin_token),
        )

    def close(self) -> None:
        """Release the adapters' connections."""
        self.cache.close()
        self.storage.close()


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()
