"""OAuth client credentials: generation, HKDF key derivation and keyed hashing of secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from tenantauth.crypto import client_secrets
from tenantauth.crypto.client_secrets import (
    CLIENT_SECRET_PURPOSE,
    ClientSecretHasher,
    derive_key,
    generate_client_id,
    generate_client_secret,
)
from tenantauth.errors import ConfigurationError
from tests.support import MASTER_KEY

B64URL = re.compile(r"[A-Za-z0-9_-]+")
KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(200, 232))


def _decode(text: str) -> bytes:
    assert B64URL.fullmatch(text), text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_client_secret_is_prefixed_256_random_bits() -> None:
    """generate_client_secret is 'tas_' + unpadded base64url of 32 bytes, fresh each time."""
    first, second = generate_client_secret(), generate_client_secret()
    assert first.startswith("tas_")
    assert len(first) == 47
    assert len(_decode(first.removeprefix("tas_"))) == 32
    assert first != second


def test_client_id_is_prefixed_128_random_bits() -> None:
    """generate_client_id is 'tac_' + unpadded base64url of 16 bytes, fresh each time."""
    first, second = generate_client_id(), generate_client_id()
    assert first.startswith("tac_")
    assert len(first) == 26
    assert len(_decode(first.removeprefix("tac_"))) == 16
    assert first != second


def _hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 §2.2–2.3 written out with hmac, as an independent reference."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # no salt: HashLen zeros
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_derive_key_is_hkdf_sha256_with_purpose_as_info() -> None:
    """derive_key equals RFC 5869 HKDF-SHA256 (no salt, info = purpose), 32 bytes."""
    derived = derive_key(MASTER_KEY, CLIENT_SECRET_PURPOSE)
    assert len(derived) == 32
    assert derived == _hkdf_sha256(MASTER_KEY, CLIENT_SECRET_PURPOSE)


def test_derive_key_separates_purposes_and_master_keys() -> None:
    """Different purposes or master keys give unrelated keys; the master key is not reused."""
    keys = {
        derive_key(MASTER_KEY, b"tenantauth/client-secret-hmac/v1"),
        derive_key(MASTER_KEY, b"tenantauth/refresh-token-hmac/v1"),
        derive_key(KEY, b"tenantauth/client-secret-hmac/v1"),
        MASTER_KEY,
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("master", "purpose", "message"),
    [(b"k" * 31, b"p", "at least 32 bytes"), (MASTER_KEY, b"", "non-empty purpose")],
)
def test_derive_key_refuses_short_master_key_or_empty_purpose(
    master: bytes, purpose: bytes, message: str
) -> None:
    """A master key under 32 bytes or an empty purpose is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match=message):
        derive_key(master, purpose)


def test_hash_is_hmac_sha256_of_the_utf8_secret() -> None:
    """hash() is the 32-byte HMAC-SHA256 of the secret under the key (deterministic)."""
    secret = generate_client_secret()
    expected = hmac.new(KEY, secret.encode(), hashlib.sha256).digest()
    hasher = ClientSecretHasher(KEY)
    assert hasher.hash(secret) == expected
    assert hasher.hash(secret) == hasher.hash(secret)
    assert len(expected) == 32


def test_verify_accepts_the_secret_and_rejects_others() -> None:
    """verify is True for the stored secret and False for any other secret."""
    hasher = ClientSecretHasher(KEY)
    secret = generate_client_secret()
    stored = hasher.hash(secret)
    assert hasher.verify(secret, stored) is True
    assert hasher.verify(generate_client_secret(), stored) is False
    assert hasher.verify(secret[:-1], stored) is False
    assert hasher.verify("", stored) is False


def test_verify_depends_on_the_key() -> None:
    """A hash made under another key does not verify: the database alone cannot test guesses."""
    secret = generate_client_secret()
    assert (
        ClientSecretHasher(OTHER_KEY).verify(secret, ClientSecretHasher(KEY).hash(secret)) is False
    )


@pytest.mark.parametrize("stored", [b"", b"\x00" * 31, b"\x00" * 33], ids=["empty", "31", "33"])
def test_verify_is_false_for_stored_values_of_the_wrong_length(stored: bytes) -> None:
    """A stored value that is not 32 bytes is False, without raising."""
    assert ClientSecretHasher(KEY).verify(generate_client_secret(), stored) is False


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify decides through hmac.compare_digest, once per key."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(client_secrets.hmac, "compare_digest", spy)
    hasher = ClientSecretHasher(KEY, older_keys=[OTHER_KEY])
    secret = generate_client_secret()
    assert hasher.verify(secret, hasher.hash(secret)) is True
    assert len(calls) == 2


def test_older_keys_verify_but_hash_uses_the_current_key() -> None:
    """Hashes made before a key change verify through older_keys; new hashes use the new key."""
    secret = generate_client_secret()
    old_stored = ClientSecretHasher(OTHER_KEY).hash(secret)
    hasher = ClientSecretHasher(KEY, older_keys=[OTHER_KEY])
    assert hasher.verify(secret, old_stored) is True
    assert hasher.hash(secret) == ClientSecretHasher(KEY).hash(secret) != old_stored
    assert ClientSecretHasher(KEY).verify(secret, old_stored) is False


@pytest.mark.parametrize(
    ("key", "older"), [(b"k" * 31, []), (KEY, [b"k" * 16])], ids=["current", "older"]
)
def test_short_keys_are_a_configuration_error(key: bytes, older: list[bytes]) -> None:
    """Every HMAC key must be at least 32 bytes (RFC 2104 §3)."""
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        ClientSecretHasher(key, older_keys=older)
