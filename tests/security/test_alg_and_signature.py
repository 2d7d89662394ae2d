"""Algorithm confusion and signature tampering, over HTTP on both backends.

Sources: RFC 8725 §2.1 and §3.1–3.2 (``alg: none``, algorithm verification), RFC 7518 §3.2
(HS256), the ``alg: none`` disclosures of 2015 (node-jsonwebtoken CVE-2015-9235), PyJWT
CVE-2022-29217, python-jose CVE-2024-33663, authlib CVE-2024-37568 and node-jsonwebtoken
CVE-2022-23540/23541 (HMAC keyed with a public key), "psychic signatures" (Java
CVE-2022-21449: an all-zero ECDSA signature), and RFC 7515 §2 / §5.2 for the signature
encoding (VERIFIER-CHECKLIST #1, #2, #3, #6).
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.security.forge import (
    ACME_SECRET,
    OTHER_SECRET,
    Case,
    b64url,
    case_ids,
    claims,
    flip_bit,
    forge,
    header,
    hmac_b64,
    json_bytes,
    public_key_texts,
    with_signature,
    with_stray_bits,
)
from tests.security.probe import World, assert_accepted, assert_rejected
from tests.support import ADMIN_TOKEN, MASTER_KEY

VALID = forge()
HEAD_SEG, PAYLOAD_SEG, SIG_SEG = VALID.split(".")
OTHER_HEAD = b64url(json_bytes(header(kid="other")))


def _alg_none() -> list[Case]:
    """RFC 8725 §2.1: unsecured tokens in every casing, unsigned and with a signature kept."""
    cases = []
    for alg in ("none", "None", "NONE", "nOnE", "none "):
        head = b64url(json_bytes(header(alg=alg)))
        unsigned = f"{head}.{PAYLOAD_SEG}."
        kept = f"{head}.{PAYLOAD_SEG}.{SIG_SEG}"
        resigned = forge(header(alg=alg))
        cases += [
            Case(f"alg={alg!r}-empty-signature", unsigned, "RFC 8725 §2.1"),
            Case(f"alg={alg!r}-kept-signature", kept, "CVE-2015-9235"),
            Case(f"alg={alg!r}-resigned-hs256", resigned, "CVE-2022-23540"),
        ]
    return cases


def _other_algs() -> list[Case]:
    """RFC 8725 §3.1: one algorithm only; other HMAC sizes even with the right secret."""
    cases = [
        Case("HS384-right-secret", _hmac_token("HS384", hashlib.sha384), "RFC 8725 §3.1"),
        Case("HS512-right-secret", _hmac_token("HS512", hashlib.sha512), "RFC 8725 §3.1"),
        Case(
            "HS512-truncated-to-32-bytes",
            with_signature(_hmac_token("HS512", hashlib.sha512), SIG_SEG),
            "RFC 7518 §3.2",
        ),
    ]
    for alg in ("RS256", "RS512", "ES256", "ES384", "PS256", "PS512", "EdDSA", "ES256K"):
        cases.append(Case(f"{alg}-header-hmac-signed", forge(header(alg=alg)), "CVE-2022-29217"))
    for alg in ("hs256", "Hs256", "HS256 ", " HS256", "HS256\x00", "HS2560", "HS25"):
        cases.append(Case(f"alg={alg!r}", forge(header(alg=alg)), "RFC 8725 §3.1"))
    for alg in (None, 256, ["HS256"], {"HS256": True}, True):
        cases.append(Case(f"alg-json-{type(alg).__name__}", forge(header(alg=alg)), "RFC 7515"))
    return cases


def _key_confusion() -> list[Case]:
    """HMAC keyed with public-key text or with the wrong encoding of the right secret."""
    keys = {f"{name}-as-hmac-key": key for name, key in public_key_texts().items()}
    keys |= {
        "secret-as-base64url-text": b64url(ACME_SECRET).encode(),
        "secret-as-hex-text": ACME_SECRET.hex().encode(),
        "empty-key": b"",
        "tenant-id-as-key": b"acme",
        "master-key": MASTER_KEY,
        "admin-token": ADMIN_TOKEN.encode(),
        "other-tenant-secret": OTHER_SECRET,
    }
    cases = [Case(name, forge(key=key), "CVE-2022-23541") for name, key in keys.items()]
    for alg in ("RS256", "ES256", "EdDSA"):
        pem = public_key_texts()["ec-pem"]
        cases.append(Case(f"{alg}-header-keyed-with-pem", forge(header(alg=alg), key=pem)))
    return cases


def _signature_tampering() -> list[Case]:
    """RFC 7515 §5.2 step 7 and CHECKLIST #3: altered, moved or non-canonical signatures."""
    zero32 = b64url(bytes(32))
    cases = {
        "empty-signature": with_signature(VALID, ""),
        "flip-first-bit": with_signature(VALID, flip_bit(SIG_SEG, 0)),
        "flip-middle-bit": with_signature(VALID, flip_bit(SIG_SEG, 16)),
        "flip-last-bit": with_signature(VALID, flip_bit(SIG_SEG, 31)),
        "truncated-1-char": with_signature(VALID, SIG_SEG[:-1]),
        "truncated-to-31-bytes": with_signature(VALID, b64url(_raw(SIG_SEG)[:31])),
        "extended-1-char": VALID + "A",
        "extended-1-byte": with_signature(VALID, b64url(_raw(SIG_SEG) + b"\x00")),
        "doubled": VALID + SIG_SEG,
        "stray-trailing-bits": with_signature(VALID, with_stray_bits(SIG_SEG)),
        "padded-=": VALID + "=",
        "all-zero-psychic": with_signature(VALID, zero32),
        "es256-all-zero-psychic": with_signature(forge(header(alg="ES256")), b64url(bytes(64))),
        "signature-of-another-token": with_signature(VALID, forge(claims(sub="x")).split(".")[2]),
        "payload-bit-flipped": f"{HEAD_SEG}.{flip_bit(PAYLOAD_SEG, 5)}.{SIG_SEG}",
        "kid-swapped-unsigned": f"{OTHER_HEAD}.{PAYLOAD_SEG}.{SIG_SEG}",
        "signature-over-payload-only": with_signature(VALID, hmac_b64(ACME_SECRET, PAYLOAD_SEG)),
        "signature-over-header-only": with_signature(VALID, hmac_b64(ACME_SECRET, HEAD_SEG)),
        "signature-hex-text": with_signature(VALID, _raw(SIG_SEG).hex()),
    }
    return [Case(name, token, "RFC 7515 §5.2") for name, token in cases.items()]


def _hmac_token(alg: str, digest: object) -> str:
    signing_input = f"{b64url(json_bytes(header(alg=alg)))}.{PAYLOAD_SEG}"
    return f"{signing_input}.{hmac_b64(ACME_SECRET, signing_input, digest)}"


def _raw(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


CASES = _alg_none() + _other_algs() + _key_confusion() + _signature_tampering()


def test_baseline_token_is_accepted(world: World) -> None:
    """The untouched token every case starts from verifies on every endpoint."""
    assert assert_accepted(world, VALID)["sub"] == "user-1"


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_token_is_rejected_uniformly(world: World, case: Case) -> None:
    """Each algorithm or signature attack gets the uniform 401 (and inactive introspection)."""
    assert_rejected(world, case.token)
