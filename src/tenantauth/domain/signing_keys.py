"""A tenant's signing key: choosing its algorithm, making or importing its material.

The rules of docs/design.md, "Key lifecycle (issue 15)": a tenant signs with one key, whose
algorithm it chooses at creation and may change only by rotation. ``HS256`` keys are 32 random
bytes or an imported base64url secret; key pairs (``EdDSA``, ``ES256``, ``RS256``) are
generated or imported from PEM or a private JWK (``crypto/keypairs.py`` holds the key rules).
Every new key gets a fresh name, so a token names the exact key that signed it
(``kid = <tenant id>.<key name>``) and a token of an earlier key never meets a later one.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from dataclasses import dataclass

from tenantauth.crypto import keypairs
from tenantauth.crypto.jwt import ALGORITHM, ALGORITHMS
from tenantauth.crypto.secrets import decode_imported_secret, generate_secret
from tenantauth.errors import InvalidRequestError

__all__ = ["ALGORITHMS", "NewKey", "new_key"]


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key about to be sealed: its name, algorithm and plaintext material (the HS256
    secret, or the private key as PKCS#8 DER). Never logged (``repr`` hides the material)."""

    name: str
    alg: str
    material: bytes

    def __repr__(self) -> str:
        """Name and algorithm only."""
        return f"NewKey(name={self.name!r}, alg={self.alg!r})"

    def same_material(self, other: bytes) -> bool:
        """Whether ``other`` is this very key (constant time): a rotation to it would revoke
        nothing."""
        return hmac.compare_digest(self.material, other)


def new_key(
    alg: str | None,
    *,
    secret: str | None = None,
    private_key: str | None = None,
    default_alg: str = ALGORITHM,
    avoid: Collection[str] = (),
) -> NewKey:
    """Return the tenant's next signing key.

    ``alg`` (default ``default_alg``: HS256 for a new tenant, the current one for a rotation)
    is one of ``ALGORITHMS``. ``secret`` (base64url) imports an HS256 key and ``private_key``
    (PEM or private JWK) a key pair; with neither, a key is generated. The name is fresh and
    is none of ``avoid`` (the names of the tenant's keys).

    Raises ``InvalidRequestError`` for an unknown algorithm, material of the wrong kind for
    it, or material the rules refuse (``decode_imported_secret``,
    ``keypairs.import_private_key``).
    """
    alg = default_alg if alg is None else alg
    if alg not in ALGORITHMS:
        raise InvalidRequestError(f"alg must be one of {', '.join(ALGORITHMS)}")
    if secret is not None and private_key is not None:
        raise InvalidRequestError("give secret (HS256) or private_key (key pairs), not both")
    if alg == ALGORITHM:
        if private_key is not None:
            raise InvalidRequestError("private_key needs a key-pair alg (EdDSA, ES256, RS256)")
        material = decode_imported_secret(secret) if secret is not None else generate_secret()
    else:
        if secret is not None:
            raise InvalidRequestError(f"secret is for HS256; an {alg} key is a private_key")
        material = (
            keypairs.import_private_key(alg, private_key)
            if private_key is not None
            else keypairs.generate(alg)
        )
    name = keypairs.new_key_id()
    while name in avoid:  # 1 in 2^40 each: a key's name must never name another of its keys
        name = keypairs.new_key_id()
    return NewKey(name, alg, material)
