"""Envelope encryption of tenant secrets under a master key (AES-256-GCM).

Each sealed secret records the id of the master key that sealed it, so the master key can be
rotated later: a keyring holds the current key plus older ones that are still readable.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantauth.crypto.client_secrets import derive_key
from tenantauth.crypto.jwt import LEGACY_KEY_NAME
from tenantauth.errors import ConfigurationError, DependencyUnavailableError

MASTER_KEY_BYTES = 32
_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces
_AAD_PREFIX = b"tenantauth/tenant-secret/v1:"


class SecretDecryptionError(DependencyUnavailableError):
    """A sealed secret could not be opened (wrong master key, tampered row, unknown key id).

    A 503, not a 401: the fault is ours (configuration or storage), and we fail closed.
    """

    code = "secret_decryption_failed"
    title = "Stored secret could not be decrypted"


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A tenant secret encrypted at rest: ``blob`` is nonce || ciphertext || tag."""

    key_id: str
    blob: bytes = field(repr=False)


def master_key_id(key: bytes) -> str:
    """Return a short, stable, non-secret id for a master key (a domain-separated hash)."""
    return hashlib.sha256(b"tenantauth/master-key-id:" + key).hexdigest()[:12]


class MasterKeyring:
    """Seals with the current master key; opens with any key it holds."""

    def __init__(self, current: bytes, older: Mapping[str, bytes] | None = None) -> None:
        """Build a keyring. Raises ``ConfigurationError`` if a key is not 32 bytes, or an
        older key is the current one (a rotation that would change nothing)."""
        keys = [current, *(older or {}).values()]
        if any(len(k) != MASTER_KEY_BYTES for k in keys):
            raise ConfigurationError([f"master keys must be exactly {MASTER_KEY_BYTES} bytes"])
        self.current_id = master_key_id(current)
        if any(master_key_id(k) == self.current_id for k in keys[1:]):
            raise ConfigurationError(["an older master key must not be the current master key"])
        self._aeads = {master_key_id(k): AESGCM(k) for k in keys}
        self._current = current
        self._older = list(keys[1:])

    @classmethod
    def from_keys(cls, current: bytes, older: Sequence[bytes] = ()) -> MasterKeyring:
        """Build a keyring from raw keys (as settings hold them), naming each by its id.

        Raises ``ConfigurationError`` as the constructor does.
        """
        return cls(current, {master_key_id(k): k for k in older})

    @property
    def older_ids(self) -> list[str]:
        """Return the ids of the older keys, which still open and verify but never seal."""
        return [master_key_id(k) for k in self._older]

    def derive(self, purpose: bytes) -> tuple[bytes, list[bytes]]:
        """Return a subkey for ``purpose`` from the current master key, and the same subkey of
        every older master key (so what was keyed before a master-key rotation still checks).
        """
        return derive_key(self._current, purpose), [derive_key(k, purpose) for k in self._older]

    def seal(self, tenant_id: str, secret: bytes) -> SealedSecret:
        """Encrypt ``secret`` bound to ``tenant_id`` (associated data; for a tenant key, its
        ``key_binding``) with the current key."""
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aeads[self.current_id].encrypt(nonce, secret, _aad(tenant_id))
        return SealedSecret(self.current_id, nonce + ciphertext)

    def open(self, tenant_id: str, sealed: SealedSecret) -> bytes:
        """Decrypt a sealed secret of ``tenant_id``.

        Raises ``SecretDecryptionError`` for an unknown key id, a tampered blob, or a blob
        sealed for another tenant (the tenant id is authenticated as associated data).
        """
        aead = self._aeads.get(sealed.key_id)
        if aead is None:
            raise SecretDecryptionError(f"no master key with id {sealed.key_id!r} is configured")
        nonce, ciphertext = sealed.blob[:_NONCE_BYTES], sealed.blob[_NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, ciphertext, _aad(tenant_id))
        except (InvalidTag, ValueError) as exc:  # ValueError: blob too short to hold a nonce
            raise SecretDecryptionError("sealed secret failed authentication") from exc


def key_binding(tenant_id: str, key_name: str, alg: str) -> str:
    """The identity a tenant key is sealed to (its associated data): the tenant id alone for
    ``k0``, the secret every tenant had before key pairs (sealed so then), and otherwise
    ``tenant id.key name.alg`` — so a sealed key copied to another tenant, another key slot,
    or relabelled with another algorithm fails to open (``.`` is in no tenant id or key name).
    """
    return tenant_id if key_name == LEGACY_KEY_NAME else f"{tenant_id}.{key_name}.{alg}"


def generate_master_key() -> str:
    """Return a new master key as settings read it: base64 of 32 CSPRNG bytes."""
    return base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode("ascii")


def _aad(tenant_id: str) -> bytes:
    return _AAD_PREFIX + tenant_id.encode()
