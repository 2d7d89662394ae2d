"""crypto/keypairs (issue 15 groundwork): generation, import, JWKs, signatures, and the
refusals an importer or a forger would probe. PyJWT checks our signatures and JWKs from the
outside, as an offline verifier would."""

from __future__ import annotations

import json
import re

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tenantauth.crypto import keypairs
from tenantauth.crypto.keypairs import (
    ALGORITHMS,
    EDDSA,
    ES256,
    RS256,
    b64url,
    generate,
    import_private_key,
    load_private,
    new_key_id,
    public_jwk,
    sign,
    verify,
)
from tenantauth.errors import InvalidRequestError

#: P-256's group order n (SEC 2 §2.4.2), written out here rather than taken from the module.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    """One generated key per algorithm (RSA generation is slow: once per module)."""
    return {alg: generate(alg) for alg in ALGORITHMS}


def compact(alg: str, private_der: bytes, kid: str, claims: dict[str, object]) -> str:
    """A JWS compact token signed by ``keypairs.sign``."""
    header = b64url(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = sign(alg, load_private(alg, private_der), signing_input)
    return f"{header}.{payload}.{b64url(signature)}"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_token_we_sign_verifies_offline_with_pyjwt_from_the_public_jwk(
    alg: str, keys: dict[str, bytes]
) -> None:
    jwk = public_jwk(alg, keys[alg], "acme.q7zk2m4a")
    assert "d" not in jwk and {"p", "q", "dp", "dq", "qi"}.isdisjoint(jwk)
    assert jwk["kid"] == "acme.q7zk2m4a" and jwk["alg"] == alg and jwk["use"] == "sig"
    token = compact(alg, keys[alg], jwk["kid"], {"sub": "alice"})
    key = pyjwt.PyJWK(jwk).key
    assert pyjwt.decode(token, key, algorithms=[alg]) == {"sub": "alice"}
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(tampered, key, algorithms=[alg])


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_our_verify_accepts_our_signatures_and_nothing_else(
    alg: str, keys: dict[str, bytes]
) -> None:
    private = load_private(alg, keys[alg])
    message = b"header.payload"
    signature = sign(alg, private, message)
    assert verify(alg, private.public_key(), message, signature)
    assert not verify(alg, private.public_key(), b"header.payloaD", signature)
    assert not verify(
        alg, private.public_key(), message, signature[:-1] + bytes([signature[-1] ^ 1])
    )
    for other in ALGORITHMS:  # the record's alg decides: a key of another type never verifies
        if other != alg:
            assert not verify(other, private.public_key(), message, signature)


def test_es256_signatures_are_64_bytes_low_s_and_high_s_or_der_are_refused(
    keys: dict[str, bytes],
) -> None:
    private = load_private(ES256, keys[ES256])
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = private.public_key()
    message = b"header.payload"
    for _ in range(40):  # about half of raw ECDSA signatures are high-S
        signature = sign(ES256, private, message)
        assert len(signature) == 64
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        assert s <= P256_ORDER // 2
        high = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
        # The other spelling is a valid ECDSA signature, so only our rule refuses it.
        public.verify(encode_dss_signature(r, P256_ORDER - s), message, ec.ECDSA(hashes.SHA256()))
        assert not verify(ES256, public, message, high)
        assert not verify(ES256, public, message, encode_dss_signature(r, s))  # DER
    der = private.sign(message, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    assert not verify(ES256, public, message, der)
    assert not verify(ES256, public, message, b"\x00" * 64)  # r = s = 0


def pem(key: keypairs.PrivateKey, form: serialization.PrivateFormat) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, form, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("alg", "key", "form"),
    [
        (EDDSA, ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8),
        (ES256, ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8),
        (
            ES256,
            ec.generate_private_key(ec.SECP256R1()),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
        (RS256, rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.PKCS8),
        (
            RS256,
            rsa.generate_private_key(65537, 2048),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
    ],
)
def test_a_pem_private_key_is_imported_as_the_same_key(
    alg: str, key: keypairs.PrivateKey, form: serialization.PrivateFormat
) -> None:
    der = import_private_key(alg, "\n" + pem(key, form) + "\n")
    assert load_private(alg, der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_private_jwk_is_imported_as_the_same_key(alg: str, keys: dict[str, bytes]) -> None:
    private = load_private(alg, keys[alg])
    jwk = json.loads(pyjwt.algorithms.get_default_algorithms()[alg].to_jwk(private))
    der = import_private_key(alg, json.dumps(jwk))
    assert public_jwk(alg, der, "k") == public_jwk(alg, keys[alg], "k")
    if alg == RS256:  # n, e, d alone are enough: the primes are recovered
        minimal = {name: jwk[name] for name in ("kty", "n", "e", "d")}
        assert public_jwk(alg, import_private_key(alg, json.dumps(minimal)), "k") == public_jwk(
            alg, keys[alg], "k"
        )


def test_the_public_jwk_matches_pyjwts_own(keys: dict[str, bytes]) -> None:
    for alg in ALGORITHMS:
        public = load_private(alg, keys[alg]).public_key()
        theirs = json.loads(pyjwt.algorithms.get_default_algorithms()[alg].to_jwk(public))
        ours = public_jwk(alg, keys[alg], "k")
        assert {k: v for k, v in ours.items() if k not in ("kid", "alg", "use")} == {
            k: v for k, v in theirs.items() if k not in ("kid", "alg", "use", "key_ops")
        }


def refused(alg: str, text: str, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        import_private_key(alg, text)


def test_imports_that_cannot_sign_for_the_algorithm_are_refused(keys: dict[str, bytes]) -> None:
    weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the key an import must refuse
    refused(RS256, pem(weak, serialization.PrivateFormat.PKCS8), "2048 to 8192 bits")
    p384 = ec.generate_private_key(ec.SECP384R1())
    refused(ES256, pem(p384, serialization.PrivateFormat.PKCS8), "not an ES256 .*secp384r1")
    ed = ed25519.Ed25519PrivateKey.generate()
    refused(ES256, pem(ed, serialization.PrivateFormat.PKCS8), "not an ES256 private key")
    refused(EDDSA, pem(p384, serialization.PrivateFormat.PKCS8), "not an EdDSA private key")
    public_pem = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refused(EDDSA, public_pem.decode(), "PEM private key")
    encrypted = ed.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"),
    )
    refused(EDDSA, encrypted.decode(), "must not be encrypted")
    refused(
        EDDSA,
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----",
        "cannot be read",
    )
    refused("HS256", pem(ed, serialization.PrivateFormat.PKCS8), "alg must be one of")
    refused(EDDSA, " " * (keypairs.MAX_IMPORT_CHARS + 1), "at most")


def test_jwks_that_are_public_mismatched_or_malformed_are_refused(keys: dict[str, bytes]) -> None:
    ec_private = load_private(ES256, keys[ES256])
    jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(ec_private))
    public = {k: v for k, v in jwk.items() if k != "d"}
    refused(ES256, json.dumps(public), "no private member")
    other = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
    refused(ES256, json.dumps({**jwk, "x": other["x"]}), "x does not belong to d")
    refused(ES256, json.dumps({**jwk, "crv": "P-384"}), "crv must be P-256")
    refused(ES256, json.dumps({**jwk, "d": jwk["d"] + "="}), "not unpadded base64url")
    refused(ES256, json.dumps({**jwk, "d": "A"}), "not unpadded base64url")
    refused(ES256, json.dumps({**jwk, "kty": "oct"}), "kty must be")
    refused(ES256, "[1, 2]", "PEM private key .* or a private JWK")
    refused(ES256, json.dumps({**jwk, "d": 5}), "d is not a string")
    refused(ES256, "{not json", "not JSON")
    ed_jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(load_private(EDDSA, keys[EDDSA])))
    refused(EDDSA, json.dumps({**ed_jwk, "x": other["x"]}), "x does not belong to d")
    refused(EDDSA, json.dumps({**ed_jwk, "d": "AAAA"}), "not a valid OKP")
    refused(ES256, json.dumps(ed_jwk), "not an ES256 private key")


def test_stored_material_of_another_algorithm_does_not_load(keys: dict[str, bytes]) -> None:
    with pytest.raises(ValueError, match="not an ES256 key"):
        load_private(ES256, keys[EDDSA])


def test_key_ids_are_eight_base32_characters() -> None:
    ids = {new_key_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-z2-7]{8}", key_id) for key_id in ids)


def test_generate_refuses_an_algorithm_without_a_key_pair() -> None:
    with pytest.raises(InvalidRequestError, match="alg must be one of"):
        generate("HS256")
