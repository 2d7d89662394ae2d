"""Building hostile tokens for the security suite (pure functions, no I/O).

Every builder starts from the token tenantauth itself would accept for tenant ``acme`` at
``tests.support.NOW`` and changes exactly one thing, so a rejection can only come from that
thing. The low-level pieces (``forge``, ``claims``, ``header``…) are the unit tests' own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.unit.helpers import (
    ACME_SECRET,
    DROP,
    OTHER_SECRET,
    b64url,
    b64url_padded,
    claims,
    forge,
    header,
    json_bytes,
    raw_json,
    sign,
    signed,
    with_stray_bits,
)

__all__ = [
    "ACME_SECRET",
    "DROP",
    "OTHER_SECRET",
    "Case",
    "b64url",
    "b64url_padded",
    "case_ids",
    "claims",
    "forge",
    "header",
    "json_bytes",
    "raw_json",
    "sign",
    "signed",
    "with_stray_bits",
]

#: The RFC 6750 §2.1 ``b64token`` grammar, written out independently of ``api/auth.py``:
#: only such a string can be sent as ``Authorization: Bearer <token>``.
B64TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")


@dataclass(frozen=True)
class Case:
    """One adversarial token: a readable id, the token, and where the attack comes from."""

    id: str
    token: str
    source: str = ""


def case_ids(cases: list[Case]) -> list[str]:
    """Return the ids of ``cases`` (for ``pytest.mark.parametrize(ids=...)``)."""
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return ids


def is_b64token(token: str) -> bool:
    """Return whether ``token`` fits RFC 6750 §2.1 ``b64token`` (``=`` only at the end)."""
    body = token.rstrip("=")
    return bool(body) and set(body) <= B64TOKEN_CHARS


def hs(head: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: bytes) -> str:
    """Return a token of ``head`` and ``payload`` signed HMAC-SHA256 with ``key``."""
    return forge(head, payload, key)


def with_signature(token: str, signature: str) -> str:
    """Return ``token`` with its signature segment replaced by ``signature``."""
    return token.rsplit(".", 1)[0] + "." + signature


def hmac_b64(key: bytes, signing_input: str, digest: Any = hashlib.sha256) -> str:
    """Return the base64url HMAC of ``signing_input`` under ``key`` with ``digest``."""
    return b64url(hmac.new(key, signing_input.encode("ascii"), digest).digest())


def segments_signed(head_seg: str, payload_seg: str, key: bytes = ACME_SECRET) -> str:
    """Join two already encoded (possibly non-canonical) segments and sign their text."""
    return signed(head_seg, payload_seg, key)


def flip_bit(segment: str, index: int) -> str:
    """Return ``segment`` with the lowest bit of the byte at ``index`` flipped (canonical)."""
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[index] ^= 1
    return b64url(bytes(raw))


def public_key_texts() -> dict[str, bytes]:
    """Return public keys in the formats confused-algorithm attacks use as HMAC secrets.

    PyJWT CVE-2022-29217, python-jose CVE-2024-33663, authlib CVE-2024-37568 and
    node-jsonwebtoken CVE-2022-23541: a verifier that takes ``alg`` from the header ends up
    keying HMAC with the text of a public key the attacker also has.
    """
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ed_key = ed25519.Ed25519PrivateKey.generate().public_key()
    pem = ec_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = ec_key.public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    openssh = serialization.Encoding.OpenSSH
    ssh_format = serialization.PublicFormat.OpenSSH
    return {
        "ec-pem": pem,
        "ec-jwk": json.dumps(jwk).encode(),
        "ecdsa-ssh": ec_key.public_bytes(openssh, ssh_format),
        "ed25519-ssh": ed_key.public_bytes(openssh, ssh_format),
        "oct-jwk-of-secret": json.dumps({"kty": "oct", "k": b64url(ACME_SECRET)}).encode(),
    }
