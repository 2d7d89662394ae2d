"""OAuth client credentials: generation and keyed hashing of client secrets.

Client secrets are 256-bit random values we generate ourselves, so a guess is hopeless and a
slow password hash buys nothing: we store HMAC-SHA256 under a server key and compare in
constant time (OWASP Password Storage Cheat Sheet — slow hashing is for low-entropy secrets;
RFC 6749 §10.10 requires credentials to be unguessable, RFC 6819 §5.1.4.1.3 that they are not
stored in cleartext). The key is derived from the master key with HKDF (RFC 5869), so a
stolen database alone cannot even test guesses, and the key serves only this purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantauth.errors import ConfigurationError

#: Prefixes make leaked credentials recognisable to secret scanners and to humans.
CLIENT_SECRET_PREFIX = "tas_"  # noqa: S105 - a public prefix, not a secret
CLIENT_ID_PREFIX = "tac_"
#: Resource servers (introspection only): their own prefixes, so neither is ever taken for a
#: client's (the OAuth endpoints tell the two apart by the id's prefix).
RESOURCE_SERVER_ID_PREFIX = "tar_"
RESOURCE_SERVER_SECRET_PREFIX = "tars_"  # noqa: S105 - a public prefix, not a secret
#: 256 bits of entropy (RFC 6749 §10.10; RFC 6819 §5.1.4.2.2).
CLIENT_SECRET_BYTES = 32
#: 128 bits: ids are public, but must not collide or be enumerable.
CLIENT_ID_BYTES = 16
#: HMAC keys shorter than the hash output weaken it (RFC 2104 §3).
MIN_KEY_BYTES = 32
#: The HKDF ``info`` for the client-secret hashing key (RFC 5869 §3.2: domain separation).
CLIENT_SECRET_PURPOSE = b"tenantauth/client-secret-hmac/v1"
DIGEST_BYTES = hashlib.sha256().digest_size


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_client_secret() -> str:
    """Return a new client secret: ``tas_`` + base64url of 32 CSPRNG bytes (47 characters)."""
    return CLIENT_SECRET_PREFIX + _b64url(secrets.token_bytes(CLIENT_SECRET_BYTES))


def generate_client_id() -> str:
    """Return a new client id: ``tac_`` + base64url of 16 CSPRNG bytes (26 characters).

    The alphabet is URL- and form-safe, so the id needs no escaping in HTTP Basic
    (RFC 6749 §2.3.1) or in ``client_id`` form fields.
    """
    return CLIENT_ID_PREFIX + _b64url(secrets.token_bytes(CLIENT_ID_BYTES))


def generate_resource_server_id() -> str:
    """Return a new resource server id: ``tar_`` + base64url of 16 CSPRNG bytes (26 characters),
    safe in HTTP Basic and form fields like a client id."""
    return RESOURCE_SERVER_ID_PREFIX + _b64url(secrets.token_bytes(CLIENT_ID_BYTES))


def generate_resource_server_secret() -> str:
    """Return a new resource server secret: ``tars_`` + base64url of 32 CSPRNG bytes."""
    return RESOURCE_SERVER_SECRET_PREFIX + _b64url(secrets.token_bytes(CLIENT_SECRET_BYTES))


def derive_key(master_key: bytes, purpose: bytes) -> bytes:
    """Return a 32-byte key for ``purpose`` derived from ``master_key`` with HKDF-SHA256.

    ``purpose`` is the HKDF ``info`` (RFC 5869 §3.2), so keys for different purposes are
    independent; no salt, as the master key is already uniformly random (RFC 5869 §3.1).
    Raises ``ConfigurationError`` if the master key is shorter than 32 bytes or the purpose
    is empty.
    """
    if len(master_key) < MIN_KEY_BYTES:
        raise ConfigurationError([f"the master key must be at least {MIN_KEY_BYTES} bytes"])
    if not purpose:
        raise ConfigurationError(["a derived key needs a non-empty purpose"])
    hkdf = HKDF(algorithm=hashes.SHA256(), length=MIN_KEY_BYTES, salt=None, info=purpose)
    return hkdf.derive(master_key)


class ClientSecretHasher:
    """HMAC-SHA256 of client secrets under a server key; constant-time verification.

    ``older_keys`` keep secrets hashed before a master-key rotation verifiable: ``hash``
    always uses ``key``; a caller that sees ``verify`` succeed while ``hash(secret)`` differs
    from the stored value may store the new hash.
    """

    def __init__(self, key: bytes, *, older_keys: Sequence[bytes] = ()) -> None:
        """Hold the keys. Raises ``ConfigurationError`` if any key is shorter than 32 bytes."""
        keys = [key, *older_keys]
        if any(len(k) < MIN_KEY_BYTES for k in keys):
            raise ConfigurationError([f"client secret keys must be at least {MIN_KEY_BYTES} bytes"])
        self._keys = keys

    def hash(self, secret: str) -> bytes:
        """Return the 32-byte HMAC-SHA256 of ``secret`` (UTF-8) under the current key."""
        return _mac(self._keys[0], secret)

    def hashes(self, secret: str) -> list[bytes]:
        """Return the HMAC of ``secret`` under every key, the current key's first.

        For lookups by hash (refresh tokens): a value stored before a master-key rotation is
        found under an older key's hash until it is re-hashed or expires.
        """
        return [_mac(key, secret) for key in self._keys]

    def verify(self, secret: str, stored: bytes) -> bool:
        """Return whether ``secret`` hashes to ``stored`` under any of the keys.

        Each comparison is ``hmac.compare_digest`` (constant time); every key is tried
        whatever the outcome, so the time does not depend on which key matched. Raises
        nothing: a stored value of the wrong length is simply False.
        """
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(_mac(key, secret), stored)
        return matched


def _mac(key: bytes, secret: str) -> bytes:
    return hmac.new(key, secret.encode("utf-8"), hashlib.sha256).digest()
