"""Envelope encryption of tenant secrets under the master key (AES-256-GCM)."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from tenantauth.crypto.envelope import (
    MasterKeyring,
    SealedSecret,
    SecretDecryptionError,
    master_key_id,
)
from tenantauth.errors import ConfigurationError, DependencyUnavailableError

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
SECRET = b"s" * 32


def test_seal_open_round_trip() -> None:
    """A sealed secret opens to the same bytes for the same tenant."""
    ring = MasterKeyring(NEW_KEY)
    sealed = ring.seal("acme", SECRET)
    assert ring.open("acme", sealed) == SECRET


def test_sealed_blob_hides_secret_and_is_fresh() -> None:
    """The blob never contains the plaintext, and sealing twice uses a fresh nonce."""
    ring = MasterKeyring(NEW_KEY)
    first, second = ring.seal("acme", SECRET), ring.seal("acme", SECRET)
    assert SECRET not in first.blob
    assert first.blob != second.blob
    assert len(first.blob) == 12 + len(SECRET) + 16  # nonce || ciphertext || tag


def test_sealed_secret_repr_hides_blob() -> None:
    """repr(SealedSecret) shows the key id but not the blob."""
    sealed = MasterKeyring(NEW_KEY).seal("acme", SECRET)
    assert sealed.key_id in repr(sealed)
    assert repr(sealed.blob) not in repr(sealed)


def test_wrong_tenant_fails() -> None:
    """A blob sealed for one tenant does not open as another's (tenant id is the AAD)."""
    ring = MasterKeyring(NEW_KEY)
    sealed = ring.seal("acme", SECRET)
    with pytest.raises(SecretDecryptionError):
        ring.open("other", sealed)


@pytest.mark.parametrize(
    "position",
    [0, 11, 12, -17, -1],
    ids=["nonce-first", "nonce-last", "ct-first", "ct-last", "tag"],
)
def test_tampered_blob_fails(position: int) -> None:
    """Flipping any bit of nonce, ciphertext or tag makes opening fail."""
    ring = MasterKeyring(NEW_KEY)
    sealed = ring.seal("acme", SECRET)
    blob = bytearray(sealed.blob)
    blob[position] ^= 0x01
    with pytest.raises(SecretDecryptionError):
        ring.open("acme", replace(sealed, blob=bytes(blob)))


@pytest.mark.parametrize("length", [0, 5, 11, 12, 27], ids=lambda n: f"{n}-bytes")
def test_truncated_blob_fails_as_decryption_error(length: int) -> None:
    """A blob too short for nonce and tag fails as SecretDecryptionError (503), not a crash."""
    ring = MasterKeyring(NEW_KEY)
    sealed = ring.seal("acme", SECRET)
    with pytest.raises(SecretDecryptionError):
        ring.open("acme", replace(sealed, blob=sealed.blob[:length]))


def test_decryption_error_is_a_dependency_error() -> None:
    """SecretDecryptionError is a DependencyUnavailableError: the service fails closed (503)."""
    assert issubclass(SecretDecryptionError, DependencyUnavailableError)


def test_unknown_key_id_fails() -> None:
    """A blob naming a master key the keyring does not hold fails."""
    sealed = MasterKeyring(OLD_KEY).seal("acme", SECRET)
    with pytest.raises(SecretDecryptionError):
        MasterKeyring(NEW_KEY).open("acme", sealed)


def test_relabelled_key_id_fails() -> None:
    """A blob sealed under the old key but labelled with the new key's id fails."""
    sealed = MasterKeyring(OLD_KEY).seal("acme", SECRET)
    ring = MasterKeyring(NEW_KEY, {"old": OLD_KEY})
    with pytest.raises(SecretDecryptionError):
        ring.open("acme", SealedSecret(master_key_id(NEW_KEY), sealed.blob))


def test_master_key_id_is_stable_and_not_the_key() -> None:
    """The key id is a fixed 12-hex-digit function of the key that reveals none of it."""
    key_id = master_key_id(NEW_KEY)
    assert key_id == master_key_id(bytes(NEW_KEY))
    assert key_id != master_key_id(OLD_KEY)
    assert len(key_id) == 12
    assert int(key_id, 16) >= 0
    for spelling in (NEW_KEY.hex(), base64.b64encode(NEW_KEY).decode()):
        assert key_id not in spelling
        assert spelling[:12] != key_id
    assert MasterKeyring(NEW_KEY).current_id == key_id


def test_seal_uses_current_key_id() -> None:
    """Seal labels the blob with the current key's id, even when older keys are held."""
    sealed = MasterKeyring(NEW_KEY, {"old": OLD_KEY}).seal("acme", SECRET)
    assert sealed.key_id == master_key_id(NEW_KEY)


def test_keyring_with_older_key_opens_old_blobs() -> None:
    """After a master-key rotation, a keyring holding the old key still opens old blobs."""
    old_blob = MasterKeyring(OLD_KEY).seal("acme", SECRET)
    ring = MasterKeyring(NEW_KEY, {master_key_id(OLD_KEY): OLD_KEY})
    assert ring.open("acme", old_blob) == SECRET
    assert ring.open("acme", ring.seal("acme", SECRET)) == SECRET


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_current_key_of_wrong_length_rejected(length: int) -> None:
    """A current master key that is not exactly 32 bytes is a configuration error."""
    with pytest.raises(ConfigurationError):
        MasterKeyring(b"k" * length)


@pytest.mark.parametrize("length", [31, 33])
def test_older_key_of_wrong_length_rejected(length: int) -> None:
    """An older master key that is not exactly 32 bytes is a configuration error too."""
    with pytest.raises(ConfigurationError):
        MasterKeyring(NEW_KEY, {"old": b"k" * length})
