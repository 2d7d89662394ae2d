"""The bundle of dependencies the composition root builds once per process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tenantauth.crypto.client_secrets import ClientSecretHasher
from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.crypto.passwords import PasswordHasher
from tenantauth.domain.admin.admins import AdminAuthenticator
from tenantauth.domain.limits import FailureLimiter
from tenantauth.domain.policy import AuthPolicy, CachePolicy, MemoryPolicy, TokenPolicy
from tenantauth.domain.ports import Cache, Clock, LeaseRegistry, Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.domain.tokens import TokenVerifier
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.domain.verifying.leases import Invalidator, LeaseListener
from tenantauth.domain.verifying.memory import VerifyMemory


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
    passwords: PasswordHasher
    client_secrets: ClientSecretHasher
    refresh_hasher: ClientSecretHasher
    limiter: FailureLimiter
    auth: AuthPolicy
    telemetry: Telemetry
    invalidator: Invalidator
    listener: LeaseListener | None

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
        limiter: FailureLimiter,
        passwords: PasswordHasher | None = None,
        auth: AuthPolicy | None = None,
        telemetry: Telemetry = NULL_TELEMETRY,
        leases: LeaseRegistry | None = None,
        memory: MemoryPolicy | None = None,
        retain: Callable[[], None] | None = None,
    ) -> Services:
        """Wire the resolver and verifier around the given adapters and policies.

        Client secrets and refresh tokens are hashed with subkeys of the master key, so they
        survive restarts and replicas; the defaults of the optional parts suit tests.
        ``leases`` (production mode) makes every change wait for the workers that verify
        from memory, if any ever did; ``memory`` makes this process's workers do so;
        ``retain`` is called after each page of tenants warmed into memory (``MemoryWarmer``).
        """
        policy = memory or MemoryPolicy()
        listener = None
        held = None
        if leases is not None and memory is not None:
            store = VerifyMemory(memory.lease_seconds, capacity=memory.capacity, skip=memory.skip)
            listener = LeaseListener(
                leases, store, storage, lease_seconds=memory.lease_seconds, telemetry=telemetry
            )
            held = (store, listener, memory)
        keys = KeyResolver(
            storage,
            cache,
            keyring,
            caching,
            clock=clock,
            tokens=tokens,
            telemetry=telemetry,
            memory=held,
            retain=retain,
        )
        verifier = TokenVerifier(keys, tokens, clock, storage.legacy_issuer_until)
        secrets_key, older_secrets = keyring.derive(b"tenantauth/client-secret/v1")
        refresh_key, older_refresh = keyring.derive(b"tenantauth/refresh-token/v1")
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
            passwords or PasswordHasher(),
            ClientSecretHasher(secrets_key, older_keys=older_secrets),
            ClientSecretHasher(refresh_key, older_keys=older_refresh),
            limiter,
            auth or AuthPolicy(),
            telemetry,
            Invalidator(
                leases,
                storage,
                lease_seconds=policy.lease_seconds,
                skip=policy.skip,
                telemetry=telemetry,
            ),
            listener,
        )

    def close(self) -> None:
        """Leave the lease registry, then release the adapters' connections."""
        if self.listener is not None:
            self.listener.stop()
        self.cache.close()
        self.storage.close()


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()
