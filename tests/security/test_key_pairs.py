"""Key-pair tenants (EdDSA, ES256, RS256) against the attacks that follow key pairs around.

The verifier takes the algorithm from the tenant's key record, never from the token (RFC 8725
§3.1), so each of these must be rejected by every verifying endpoint with the one uniform
answer, while the untouched token is accepted:

- an HS256 token "signed" with the tenant's public key as PEM, DER or JWK text (PyJWT
  CVE-2022-29217, python-jose CVE-2024-33663, authlib CVE-2024-37568, node-jsonwebtoken
  CVE-2022-23541), under the key-pair kid and under the bare tenant id;
- a header naming another key-pair algorithm than the key's, or ``none``;
- an ES256 signature in DER form, or in its other valid spelling (high S: ECDSA signatures
  are malleable, RFC 7518 §3.4 and VERIFIER-CHECKLIST #3), or all zeros (CVE-2022-21449);
- a bare tenant id or another key name as ``kid`` for a key-pair tenant;
- a token of another tenant's key pair presented under this tenant's kid.

The tokens are signed here with ``cryptography`` (and PyJWT for the control), independently of
the service's own signing code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.integration.helpers import ADMIN, TENANTS
from tests.oauth_accounts import add_client
from tests.security.forge import b64url, claims, forge, json_bytes
from tests.security.probe import World, assert_accepted, assert_rejected

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED_KEY = ed25519.Ed25519PrivateKey.generate()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PAIRS: dict[str, tuple[str, Any]] = {
    "edkey": ("EdDSA", ED_KEY),
    "eckey": ("ES256", EC_KEY),
    "rskey": ("RS256", RS_KEY),
}


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def kids(world: World) -> Iterator[dict[str, str]]:
    """The three key-pair tenants, created through the API with imported keys; their kids."""
    found = {}
    for tenant_id, (alg, key) in PAIRS.items():
        body = {"id": tenant_id, "name": tenant_id, "alg": alg, "private_key": _pem(key)}
        created = world.client.post(TENANTS, json=body, headers=ADMIN)
        assert created.status_code == 201, created.get_data(as_text=True)
        assert created.get_json()["alg"] == alg
        found[tenant_id] = created.get_json()["kid"]
        add_client(world.services, tenant_id)  # introspection asks the token's own tenant
    yield found


def _segments(alg: str, kid: str, tenant_id: str) -> str:
    head = b64url(json_bytes({"alg": alg, "kid": kid, "typ": "JWT"}))
    return f"{head}.{b64url(json_bytes(claims(tid=tenant_id)))}"


def _es256(signing_input: bytes, *, high_s: bool = False, der: bool = False) -> bytes:
    signature = EC_KEY.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    if der:
        return signature
    r, s = decode_dss_signature(signature)
    low = min(s, P256_ORDER - s)
    s = P256_ORDER - low if high_s else low
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _signed(tenant_id: str, kid: str, *, alg: str | None = None, **es: bool) -> str:
    """A token of ``tenant_id`` signed with its own private key; ``alg`` for the header."""
    key_alg, key = PAIRS[tenant_id]
    signing_input = _segments(alg or key_alg, kid, tenant_id)
    raw = signing_input.encode()
    if key_alg == "EdDSA":
        signature = key.sign(raw)
    elif key_alg == "ES256":
        signature = _es256(raw, **es)
    else:
        signature = key.sign(raw, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def _public_texts(alg: str, key: Any) -> dict[str, bytes]:
    """The public key as PEM (with and without its final newline), DER and JWK (PyJWT's)."""
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = pyjwt.algorithms.get_default_algorithms()[alg].to_jwk(public)
    return {"pem": pem, "pem-stripped": pem.strip(), "der": der, "jwk": str(jwk).encode()}


@pytest.mark.parametrize("tenant_id", sorted(PAIRS))
def test_a_token_of_the_tenant_key_is_accepted(
    world: World, kids: dict[str, str], tenant_id: str
) -> None:
    """The control: signed right, it verifies everywhere (so each rejection below is the
    one change it makes)."""
    verified = assert_accepted(world, _signed(tenant_id, kids[tenant_id]), tenant_id)
    assert verified["tid"] == tenant_id


def test_pyjwt_signed_eddsa_and_rs256_tokens_are_accepted(
    world: World, kids: dict[str, str]
) -> None:
    """Tokens from a third-party signer (PyJWT) verify: the format is the standard one."""
    for tenant_id in ("edkey", "rskey"):
        alg, key = PAIRS[tenant_id]
        token = pyjwt.encode(
            claims(tid=tenant_id), key, algorithm=alg, headers={"kid": kids[tenant_id]}
        )
        assert_accepted(world, token, tenant_id)


@pytest.mark.parametrize("tenant_id", sorted(PAIRS))
def test_hs256_keyed_with_the_public_key_is_rejected(
    world: World, kids: dict[str, str], tenant_id: str
) -> None:
    """The classic confusion: HMAC keyed with the public key's bytes, in every form an
    attacker can fetch, under both spellings of the tenant's kid."""
    for text in _public_texts(*PAIRS[tenant_id]).values():
        for kid in (kids[tenant_id], tenant_id):
            head = {"alg": "HS256", "kid": kid, "typ": "JWT"}
            assert_rejected(world, forge(head, claims(tid=tenant_id), key=text), tenant_id)


def test_a_published_jwk_as_hmac_key_is_rejected(world: World, kids: dict[str, str]) -> None:
    """HMAC keyed with the exact bytes of the tenant's JWKS document and of its one JWK."""
    for tenant_id in PAIRS:
        served = world.client.get(f"/v1/tenants/{tenant_id}/.well-known/jwks.json")
        assert served.status_code == 200
        jwk = json.dumps(served.get_json()["keys"][0]).encode()
        for text in (served.get_data(), jwk):
            head = {"alg": "HS256", "kid": kids[tenant_id], "typ": "JWT"}
            assert_rejected(world, forge(head, claims(tid=tenant_id), key=text), tenant_id)


@pytest.mark.parametrize("tenant_id", sorted(PAIRS))
def test_another_algorithm_in_the_header_is_rejected(
    world: World, kids: dict[str, str], tenant_id: str
) -> None:
    """The key's own signature under a header naming another key-pair algorithm, or none."""
    key_alg = PAIRS[tenant_id][0]
    for alg in ("EdDSA", "ES256", "RS256", "PS256", "ES384", "none"):
        if alg != key_alg:
            assert_rejected(world, _signed(tenant_id, kids[tenant_id], alg=alg), tenant_id)


def test_es256_signatures_in_der_or_high_s_or_zero_are_rejected(
    world: World, kids: dict[str, str]
) -> None:
    """One token, one spelling: DER is not RFC 7518 §3.4's r ‖ s, the high-S twin verifies
    mathematically but is the other spelling, and (0, 0) is CVE-2022-21449."""
    kid = kids["eckey"]
    assert_rejected(world, _signed("eckey", kid, der=True), "eckey")
    assert_rejected(world, _signed("eckey", kid, high_s=True), "eckey")
    signing_input = _segments("ES256", kid, "eckey")
    assert_rejected(world, f"{signing_input}.{b64url(bytes(64))}", "eckey")


@pytest.mark.parametrize("tenant_id", sorted(PAIRS))
def test_a_kid_that_does_not_name_the_key_is_rejected(
    world: World, kids: dict[str, str], tenant_id: str
) -> None:
    """A key pair's token must name its key: the bare tenant id, another key name, or the
    legacy k0 are refused even with a good signature."""
    for kid in (tenant_id, f"{tenant_id}.k0", f"{tenant_id}.aaaaaaaa"):
        assert kid != kids[tenant_id]
        assert_rejected(world, _signed(tenant_id, kid), tenant_id)


def test_a_token_of_another_tenant_key_is_rejected(world: World, kids: dict[str, str]) -> None:
    """edkey's key signing a token that claims eckey (kid, tid): eckey's key decides."""
    ed_input = _segments("EdDSA", kids["eckey"], "eckey")
    token = f"{ed_input}.{b64url(ED_KEY.sign(ed_input.encode()))}"
    assert_rejected(world, token, "eckey")
    es_input = _segments("ES256", kids["eckey"], "eckey")
    other = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(other.sign(es_input.encode(), ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_ORDER - s)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert_rejected(world, f"{es_input}.{b64url(signature)}", "eckey")


def test_a_signature_bit_flip_is_rejected(world: World, kids: dict[str, str]) -> None:
    """Every algorithm: the last signature byte changed."""
    for tenant_id in PAIRS:
        head, payload, signature = _signed(tenant_id, kids[tenant_id]).split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[-1] ^= 1
        assert_rejected(world, f"{head}.{payload}.{b64url(bytes(raw))}", tenant_id)
