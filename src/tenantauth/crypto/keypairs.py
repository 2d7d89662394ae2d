"""Tenant key pairs (issue 15): generation, import, the public JWK, signing and verifying.

docs/design.md, "Key lifecycle (issue 15)". It holds every rule about key material in one
place, each with its reason:

- ``EdDSA`` (Ed25519, RFC 8037), ``ES256`` (P-256 with SHA-256, RFC 7518 §3.4) and ``RS256``
  (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3, modulus of 2048 bits or more). All key
  operations are ``cryptography``'s; no curve or padding code of ours.
- Private keys travel as PKCS#8 DER (what gets sealed under the master key); imports take PEM
  (PKCS#8 or the traditional forms, never encrypted) or a private JWK (RFC 7517/7518/8037).
- An ES256 signature is the 64-byte ``r ‖ s`` (RFC 7518 §3.4), signed and accepted only in
  its low-S form (``s ≤ n/2``): ECDSA lets ``(r, n − s)`` verify too, and a token must have
  one spelling (VERIFIER-CHECKLIST #3). A DER signature has another length and is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from typing import Any, Final, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tenantauth.errors import InvalidRequestError

EDDSA: Final = "EdDSA"
ES256: Final = "ES256"
RS256: Final = "RS256"
#: The key-pair algorithms a tenant may choose (HS256 stays crypto/secrets.py's).
ALGORITHMS: Final = (EDDSA, ES256, RS256)
#: RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
MIN_RSA_BITS: Final = 2048
#: Larger moduli are refused: nothing needs them, and they bound an import's cost.
MAX_RSA_BITS: Final = 8192
#: Generated RSA keys: the smallest allowed size, the common choice of peers.
GENERATED_RSA_BITS: Final = 2048
#: An imported key's text (PEM or JWK) longer than this is refused (an 8192-bit private JWK
#: is about 6.5 KB).
MAX_IMPORT_CHARS: Final = 16_384
#: P-256's group order n (FIPS 186-4 D.1.2.3), for the low-S rule.
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ES256_HALF: Final = 32  # bytes of r, and of s
_KEY_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_LOADED_MAX: Final = 1024
_loaded: dict[tuple[str, bytes], PrivateKey] = {}


def new_key_id() -> str:
    """Return a fresh key id: 8 characters of ``[a-z2-7]`` (40 random bits). The caller
    checks it is unique within the tenant."""
    return "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(8))


def generate(alg: str) -> bytes:
    """Return a new private key for ``alg`` as PKCS#8 DER. Raises ``InvalidRequestError`` for
    an algorithm that is not one of ``ALGORITHMS``."""
    key: PrivateKey
    if alg == EDDSA:
        key = ed25519.Ed25519PrivateKey.generate()
    elif alg == ES256:
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == RS256:
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
    else:
        raise InvalidRequestError(f"alg must be one of {', '.join(ALGORITHMS)} for a key pair")
    return _pkcs8(key)


def import_private_key(alg: str, text: str) -> bytes:
    """Check an operator's private key for ``alg`` and return it as PKCS#8 DER.

    ``text`` is PEM (``-----BEGIN ...PRIVATE KEY-----``, unencrypted) or a private JWK as JSON.
    Raises ``InvalidRequestError`` saying what is wrong: not a private key, encrypted, of
    another type than ``alg`` needs, an EC key on another curve than P-256, an RSA modulus
    outside 2048–8192 bits, a JWK whose public members do not match its private ones.
    """
    if alg not in ALGORITHMS:
        raise InvalidRequestError(f"alg must be one of {', '.join(ALGORITHMS)} for a key pair")
    if len(text) > MAX_IMPORT_CHARS:
        raise InvalidRequestError(f"the key must be at most {MAX_IMPORT_CHARS} characters")
    stripped = text.strip()
    key = _from_jwk(stripped) if stripped.startswith("{") else _from_pem(stripped)
    _require_fits(alg, key)
    return _pkcs8(cast(PrivateKey, key))  # _require_fits checked the type


def public_jwk(alg: str, private_der: bytes, kid: str) -> dict[str, str]:
    """Return the public JWK of a private key (``public_key_jwk`` of its public key)."""
    return public_key_jwk(alg, load_private(alg, private_der).public_key(), kid)


def public_key_jwk(alg: str, public: PublicKey, kid: str) -> dict[str, str]:
    """Return the JWK of a public key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2), with ``kid``,
    ``alg`` and ``use: sig``: what the JWKS publishes. Never holds private members."""
    members: dict[str, str]
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        members = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
    else:
        rsa_numbers = public.public_numbers()
        members = {
            "kty": "RSA",
            "n": b64url(_uint(rsa_numbers.n)),
            "e": b64url(_uint(rsa_numbers.e)),
        }
    return {**members, "kid": kid, "alg": alg, "use": "sig"}


def load_private(alg: str, private_der: bytes) -> PrivateKey:
    """Return the private key object of PKCS#8 DER made by ``generate`` or
    ``import_private_key`` for ``alg``. Raises ``ValueError`` when it is not such a key (our
    own stored material: a bug or a corrupted row, never user input)."""
    key = serialization.load_der_private_key(private_der, password=None)
    if not _fits(alg, key):
        raise ValueError(f"stored key material is not an {alg} key")
    return cast(PrivateKey, key)  # _fits checked the type


def load_private_cached(alg: str, private_der: bytes) -> PrivateKey:
    """``load_private``, memoised per process by the DER bytes: loading checks the key
    (an RSA private key takes milliseconds), and an issuer signs with one key many times.
    Bounded: cleared when it holds ``_LOADED_MAX`` keys."""
    memo_key = (alg, private_der)
    key = _loaded.get(memo_key)
    if key is None:
        key = load_private(alg, private_der)
        if len(_loaded) >= _LOADED_MAX:
            _loaded.clear()
        _loaded[memo_key] = key
    return key


def public_key(alg: str, private_der: bytes) -> PublicKey:
    """The public key of PKCS#8 DER made for ``alg``: what a verifier holds.
    Raises ``ValueError`` as ``load_private`` does."""
    return load_private_cached(alg, private_der).public_key()


def sign(alg: str, key: PrivateKey, signing_input: bytes) -> bytes:
    """Return the JWS signature of ``signing_input`` (RFC 7515 §5.1) with ``key`` for
    ``alg``; an ES256 signature as 64-byte ``r ‖ s`` in its low-S form."""
    if alg == EDDSA and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(signing_input)
    if alg == ES256 and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        s = min(s, _P256_ORDER - s)  # low S: the one spelling we sign and accept
        return r.to_bytes(_ES256_HALF, "big") + s.to_bytes(_ES256_HALF, "big")
    if alg == RS256 and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    raise ValueError(f"the key is not an {alg} key")


def verify(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` over ``signing_input`` is valid for ``key`` under
    ``alg`` — the algorithm of our key record, never the token's header (RFC 8725 §3.1).
    ES256 accepts only the 64-byte low-S ``r ‖ s``; a key of another type never verifies."""
    try:
        if alg == EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
            return True
        if alg == ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            return _verify_es256(key, signing_input, signature)
        if alg == RS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


def b64url(raw: bytes) -> str:
    """Unpadded base64url of ``raw`` (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _verify_es256(key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes) -> bool:
    if len(signature) != 2 * _ES256_HALF:  # DER, or any other length: not RFC 7518 §3.4's
        return False
    r = int.from_bytes(signature[:_ES256_HALF], "big")
    s = int.from_bytes(signature[_ES256_HALF:], "big")
    if not (0 < r < _P256_ORDER and 0 < s <= _P256_ORDER // 2):  # high S: the other spelling
        return False
    key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    return True


def _pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _fits(alg: str, key: object) -> bool:
    if alg == EDDSA:
        return isinstance(key, ed25519.Ed25519PrivateKey)
    if alg == ES256:
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    if alg == RS256:
        return isinstance(key, rsa.RSAPrivateKey)
    return False


def _require_fits(alg: str, key: object) -> None:
    """Raise ``InvalidRequestError`` unless ``key`` is a private key ``alg`` can sign with."""
    if not _fits(alg, key):
        raise InvalidRequestError(f"the key is not an {alg} private key ({_describe(key)})")
    if isinstance(key, rsa.RSAPrivateKey) and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise InvalidRequestError(
            f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (got {key.key_size}); "
            "RFC 7518 §3.3 requires at least 2048"
        )


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey):
        return "an RSA key"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__.removeprefix('_')}"


def _from_pem(text: str) -> object:
    if "PRIVATE KEY-----" not in text:
        raise InvalidRequestError(
            "the key must be a PEM private key (-----BEGIN PRIVATE KEY-----) or a private JWK"
        )
    if "ENCRYPTED" in text:
        raise InvalidRequestError("the key must not be encrypted: send it in the clear")
    try:
        return serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise InvalidRequestError("the PEM private key cannot be read") from exc


def _from_jwk(text: str) -> object:
    """The private key of a JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2); its public members
    must match the private ones."""
    try:
        jwk = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the stack
        raise InvalidRequestError("the JWK is not JSON (or nests too deeply)") from exc
    if not isinstance(jwk, dict):
        raise InvalidRequestError("the JWK must be a JSON object")
    if "d" not in jwk:
        raise InvalidRequestError("the JWK has no private member (d): a public key cannot sign")
    kty = jwk.get("kty")
    try:
        if kty == "OKP":
            return _okp(jwk)
        if kty == "EC":
            return _ec(jwk)
        if kty == "RSA":
            return _rsa(jwk)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidRequestError(f"the JWK is not a valid {kty} private key: {exc}") from exc
    raise InvalidRequestError("the JWK's kty must be OKP, EC or RSA")


def _okp(jwk: dict[str, Any]) -> ed25519.Ed25519PrivateKey:
    if jwk.get("crv") != "Ed25519":
        raise ValueError("crv must be Ed25519")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(_member(jwk, "d"))
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if "x" in jwk and _member(jwk, "x") != public:
        raise ValueError("x does not belong to d")
    return key


def _ec(jwk: dict[str, Any]) -> ec.EllipticCurvePrivateKey:
    if jwk.get("crv") != "P-256":
        raise ValueError("crv must be P-256")
    key = ec.derive_private_key(int.from_bytes(_member(jwk, "d"), "big"), ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    for name, value in (("x", numbers.x), ("y", numbers.y)):
        if name in jwk and int.from_bytes(_member(jwk, name), "big") != value:
            raise ValueError(f"{name} does not belong to d")
    return key


def _rsa(jwk: dict[str, Any]) -> rsa.RSAPrivateKey:
    """The key of ``n``, ``e`` and ``d``; the CRT members (``p``, ``q``, ``dp``, ``dq``,
    ``qi``) are recomputed from them, so wrong ones in the JWK cannot make another key."""
    n, e, d = (int.from_bytes(_member(jwk, name), "big") for name in ("n", "e", "d"))
    if n.bit_length() > MAX_RSA_BITS:  # before any arithmetic on it
        raise ValueError(f"the modulus has more than {MAX_RSA_BITS} bits")
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    public = rsa.RSAPublicNumbers(e, n)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def _member(jwk: dict[str, Any], name: str) -> bytes:
    """A JWK member's bytes: unpadded base64url (RFC 7518 §6.2.1.2), or ``ValueError``."""
    value = jwk.get(name)
    if value is None:
        raise ValueError(f"member {name} is missing")
    if not isinstance(value, str):
        raise ValueError(f"member {name} is not a string")  # noqa: TRY004 - bad input, one type
    if not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError(f"member {name} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as exc:  # not reached after the checks above
        raise ValueError(f"member {name} is not base64url") from exc


def _uint(value: int) -> bytes:
    """The big-endian bytes of a positive integer, without leading zeros (RFC 7518 §2)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
