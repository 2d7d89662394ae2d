"""Key-pair tenants in the domain (issue 15): the header's kid, the key record's algorithm,
the verified-token memo, the sealing binding and the cache entry's two spellings.

Service-level tests run on SQLite + fakeredis (tests/unit/conftest.py); the HTTP attacks are
tests/security/test_key_pairs.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

from tenantauth.cache.redis import decode_entry, encode_entry
from tenantauth.crypto import jwt, keypairs
from tenantauth.crypto.envelope import MasterKeyring, SecretDecryptionError, key_binding
from tenantauth.domain.models import (
    KeyRecord,
    KeyState,
    TenantKey,
    TenantStatus,
    VerificationState,
)
from tenantauth.domain.policy import TokenPolicy
from tenantauth.domain.services import Services
from tenantauth.domain.signing_keys import new_key
from tenantauth.domain.tenants import create_tenant, rotate_key, rotate_tenant
from tenantauth.domain.tokens import TokenRequest, TokenVerifier, issue_token
from tenantauth.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTokenError,
    RejectReason,
    StorageUnavailableError,
)
from tests.support import ISSUER, NOW, FixedClock, tenant_issuer
from tests.unit.helpers import AUDIENCE, b64url, claims, json_bytes

ALGS = ("EdDSA", "ES256", "RS256")


def _head(alg: str, kid: str) -> str:
    return b64url(json_bytes({"alg": alg, "kid": kid, "typ": "JWT"}))


@pytest.mark.parametrize(
    ("kid", "expected"),
    [
        ("acme", ("acme", "")),
        ("acme.k0", ("acme", "k0")),
        ("acme.abcdefgh", ("acme", "abcdefgh")),
        ("a-b.zz234567", ("a-b", "zz234567")),
    ],
)
def test_kid_names_the_tenant_and_optionally_the_key(kid: str, expected: tuple[str, str]) -> None:
    """A bare tenant id, or the tenant id and a key name, split at the one dot."""
    parsed = jwt.parse_compact(f"{_head('ES256', kid)}.e30.{'A' * 86}")
    assert (parsed.tenant_id, parsed.key_name, parsed.alg) == (*expected, "ES256")


@pytest.mark.parametrize(
    "kid",
    [
        "acme.",
        ".abcdefgh",
        "acme.abcdefg",
        "acme.abcdefghi",
        "acme.ABCDEFGH",
        "acme.abcdefg1",
        "acme.abcdefgh.x",
        "acme..abcdefgh",
        "acme.k1",
        "Acme.abcdefgh",
        7,
        None,
    ],
)
def test_kid_of_any_other_shape_is_refused(kid: Any) -> None:
    """Key names are k0 or 8 of [a-z2-7]; anything else is not a kid of ours."""
    head = b64url(json_bytes({"alg": "HS256", "kid": kid, "typ": "JWT"}))
    with pytest.raises(InvalidTokenError):
        jwt.parse_compact(f"{head}.e30.{'A' * 43}")


@pytest.mark.parametrize("alg", ["none", "HS384", "ES384", "PS256", "EdDSA ", "es256", ["ES256"]])
def test_algorithms_outside_the_four_are_refused_at_parse(alg: Any) -> None:
    """The header may name HS256, EdDSA, ES256 or RS256 only (RFC 8725 §3.1)."""
    head = b64url(json_bytes({"alg": alg, "kid": "acme.abcdefgh", "typ": "JWT"}))
    with pytest.raises(InvalidTokenError):
        jwt.parse_compact(f"{head}.e30.{'A' * 86}")


def test_check_signature_wants_the_key_name_and_alg_of_the_key() -> None:
    """A key pair's token must name the key; a bare kid is for HS256 keys only; the header's
    alg must be the key's. Each refusal says why (for logs)."""
    der = keypairs.generate("EdDSA")
    pair = jwt.VerificationKey("abcdefgh", "EdDSA", keypairs.public_key("EdDSA", der))
    secret = jwt.VerificationKey("qqqqqqqq", "HS256", b"s" * 32)
    good = jwt.encode(claims(), "acme", der, alg="EdDSA", key_name="abcdefgh")
    jwt.check_signature(jwt.parse_compact(good), pair)
    wrong_name = jwt.encode(claims(), "acme", der, alg="EdDSA", key_name="bbbbbbbb")
    bare = _resigned(good, kid="acme", der=der)
    for token, reason in ((wrong_name, RejectReason.ROTATED), (bare, RejectReason.ROTATED)):
        with pytest.raises(InvalidTokenError) as info:
            jwt.check_signature(jwt.parse_compact(token), pair)
        assert info.value.kind is reason
    hs = jwt.encode(claims(), "acme", b"s" * 32, key_name="qqqqqqqq")
    assert jwt.parse_compact(hs).key_name == ""  # HS256 tokens name the tenant alone
    jwt.check_signature(jwt.parse_compact(hs), secret)
    with pytest.raises(InvalidTokenError) as info:
        jwt.check_signature(jwt.parse_compact(hs), pair)  # a bare kid names no key pair
    assert info.value.kind is RejectReason.ROTATED
    mislabeled = _resigned(good, alg="ES256", der=der)
    with pytest.raises(InvalidTokenError) as info:
        jwt.check_signature(jwt.parse_compact(mislabeled), pair)
    assert info.value.kind is RejectReason.SIGNATURE


def _resigned(token: str, *, der: bytes, kid: str | None = None, alg: str | None = None) -> str:
    """``token`` with its header changed and signed again by the EdDSA key ``der``."""
    _, payload, _ = token.split(".")
    header = {"alg": alg or "EdDSA", "kid": kid or "acme.abcdefgh", "typ": "JWT"}
    signing_input = f"{b64url(json_bytes(header))}.{payload}"
    signature = keypairs.sign("EdDSA", keypairs.load_private("EdDSA", der), signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


@pytest.mark.parametrize("alg", ALGS)
def test_a_key_pair_tenant_issues_tokens_that_verify(svc: Services, alg: str) -> None:
    """Issue and verify through the services: the header names alg and the key; PyJWT
    verifies the token with the tenant's public JWK (what an offline verifier holds)."""
    tenant = create_tenant(svc, "pairs", "Pairs", alg=alg)
    assert (tenant.alg, tenant.kid) == (alg, f"pairs.{tenant.key_name}")
    token = issue_token(
        svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest("pairs", "u1")
    ).access_token
    parsed = jwt.parse_compact(token)
    assert (parsed.alg, parsed.key_name) == (alg, tenant.key_name)
    assert svc.verifier.verify(token).subject == "u1"
    key = svc.keys.verification_key("pairs")
    assert key is not None and not isinstance(key.material, bytes)
    jwk = keypairs.public_key_jwk(alg, key.material, tenant.kid)
    decoded = pyjwt.decode(
        token,
        pyjwt.PyJWK(jwk).key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=tenant_issuer("pairs"),
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert decoded["sub"] == "u1"


def test_rotation_across_algorithms_revokes_and_keeps_the_new_alg(svc: Services) -> None:
    """HS256 → ES256 → (default: keep) → HS256: each old token is refused, each new one
    verifies, and the offline bound exists only when the replaced key was published."""
    create_tenant(svc, "pairs", "Pairs")
    seen: list[tuple[str | None, str, bool]] = []
    for alg in ("ES256", None, "HS256"):
        old = _issue(svc, "pairs")
        rotation = rotate_key(svc, "pairs", alg=alg)
        seen.append((alg, rotation.tenant.alg, rotation.offline_until is not None))
        with pytest.raises(InvalidTokenError):
            svc.verifier.verify(old)
        svc.verifier.verify(_issue(svc, "pairs"))
    assert seen == [("ES256", "ES256", False), (None, "ES256", True), ("HS256", "HS256", True)]


def _issue(svc: Services, tenant_id: str) -> str:
    return issue_token(
        svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest(tenant_id, "u1")
    ).access_token


def test_rotation_names_a_new_key_and_refuses_the_same_material(svc: Services) -> None:
    """Every rotation gives a fresh key name; importing the current key again is refused
    (it would revoke nothing)."""
    der = keypairs.generate("ES256")
    pem = (
        keypairs.load_private("ES256", der)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    first = create_tenant(svc, "pairs", "Pairs", alg="ES256", private_key=pem)
    second = rotate_tenant(svc, "pairs")
    assert first.key_name != second.key_name
    rotate_tenant(svc, "pairs", private_key=pem)
    with pytest.raises(ConflictError):
        rotate_tenant(svc, "pairs", private_key=pem)


@pytest.mark.parametrize(
    ("alg", "secret", "private_key", "words"),
    [
        ("HS512", None, None, "alg must be one of"),
        ("EdDSA", "A" * 43, None, "secret is for HS256"),
        ("HS256", None, "-----BEGIN PRIVATE KEY-----", "private_key needs a key-pair alg"),
        (None, "A" * 43, "{}", "not both"),
    ],
)
def test_new_key_refuses_material_of_the_wrong_kind(
    alg: str | None, secret: str | None, private_key: str | None, words: str
) -> None:
    """The pairing rules of alg, secret and private_key, each with its message."""
    with pytest.raises(InvalidRequestError, match=words):
        new_key(alg, secret=secret, private_key=private_key)


def test_new_key_never_shows_its_material() -> None:
    """repr names the key and alg only."""
    key = new_key("HS256")
    assert repr(key) == f"NewKey(name={key.name!r}, alg='HS256')"


class _Keys:
    """A KeyResolver stand-in that answers with whatever key the test sets."""

    def __init__(self, key: jwt.VerificationKey) -> None:
        self.key = key

    def resolve(self, tenant_id: str, subject: str, jti: str) -> Any:
        record = KeyRecord(tenant_id, 1, TenantStatus.ACTIVE, alg=self.key.alg)
        return jwt.KeySet(self.key), VerificationState(record)


def test_the_memo_rechecks_the_signature_for_any_other_key_object() -> None:
    """A memoised token skips its signature check only for the very key object that
    accepted it: another key of the same name and alg (a key that is not the signer's)
    rejects it, so the memo can never carry a verdict over to another key."""
    der = keypairs.generate("EdDSA")
    signer = jwt.VerificationKey("abcdefgh", "EdDSA", keypairs.public_key("EdDSA", der))
    stranger = dataclasses.replace(
        signer, material=keypairs.public_key("EdDSA", keypairs.generate("EdDSA"))
    )
    keys = _Keys(signer)
    policy = TokenPolicy(issuer=ISSUER, default_audience=AUDIENCE, leeway=30)
    verifier = TokenVerifier(keys, policy, FixedClock(NOW))  # type: ignore[arg-type]
    token = jwt.encode(claims(), "acme", der, alg="EdDSA", key_name="abcdefgh")
    verifier.verify(token)
    verifier.verify(token)  # from the memo, same key
    keys.key = stranger
    with pytest.raises(InvalidTokenError) as info:
        verifier.verify(token)
    assert info.value.kind is RejectReason.SIGNATURE
    keys.key = signer
    verifier.verify(token)


def test_key_binding_seals_a_key_to_its_tenant_name_and_alg() -> None:
    """k0 keeps the tenant id (as sealed before key pairs); any other key is bound to tenant,
    name and alg, so a blob moved to another slot or relabelled fails to open."""
    assert key_binding("acme", "k0", "HS256") == "acme"
    assert key_binding("acme", "abcdefgh", "ES256") == "acme.abcdefgh.ES256"
    ring = MasterKeyring(b"m" * 32)
    sealed = ring.seal(key_binding("acme", "abcdefgh", "ES256"), b"material")
    for other in (
        ("acme", "abcdefgh", "EdDSA"),
        ("acme", "bbbbbbbb", "ES256"),
        ("acme", "k0", "HS256"),
    ):
        with pytest.raises(SecretDecryptionError):
            ring.open(key_binding(*other), sealed)


def test_cache_entries_of_the_earlier_release_decode_as_hs256_k0() -> None:
    """An entry written before key pairs (six fields) reads as the tenant's k0 HS256 key; the
    new spelling round-trips; anything in between is a miss."""
    ring = MasterKeyring(b"m" * 32)
    others = (
        TenantKey("bbbbbbbb", "ES256", ring.seal("y", b"n"), KeyState.NEXT, 1_900_000_000),
        TenantKey("k0", "HS256", ring.seal("z", b"r"), KeyState.RETIRING, 1_800_000_600),
    )
    record = KeyRecord(
        "acme", 3, TenantStatus.ACTIVE, ring.seal("x", b"k"), 2, "EdDSA", "abcdefgh", others
    )
    raw = encode_entry(record, "inc").encode()
    assert decode_entry("acme", raw, "inc") == record
    legacy = b"|".join(raw.split(b"|")[:6])
    assert decode_entry("acme", legacy, "inc") == dataclasses.replace(
        record, alg="HS256", key_name="k0", others=()
    )
    assert decode_entry("acme", legacy + b"|EdDSA", "inc") is None
    assert decode_entry("acme", legacy + b"|EdDSA|abcdefgh", "inc") is None


def _legacy_verifier(
    until: datetime | Exception | None,
) -> tuple[TokenVerifier, jwt.VerificationKey]:
    """A verifier of acme's HS256 key whose storage says ``until`` (or raises it)."""
    key = jwt.VerificationKey("k0", "HS256", b"s" * 32)

    def read() -> datetime | None:
        if isinstance(until, Exception):
            raise until
        return until

    policy = TokenPolicy(issuer=ISSUER, default_audience=AUDIENCE, leeway=30)
    return TokenVerifier(_Keys(key), policy, FixedClock(NOW), read), key  # type: ignore[arg-type]


def test_the_service_wide_issuer_is_accepted_only_before_the_cutoff() -> None:
    """Tokens minted before tenants became issuers carry iss = TENANTAUTH_ISSUER: accepted
    only when issued (iat) before the migrated database's cut-off; never without one."""
    cutoff = datetime.fromtimestamp(NOW, UTC)
    verifier, key = _legacy_verifier(cutoff)
    before = jwt.encode(
        claims(iss=ISSUER, iat=int(NOW) - 1, nbf=int(NOW) - 1), "acme", key.material
    )  # type: ignore[arg-type]
    at = jwt.encode(claims(iss=ISSUER), "acme", key.material)  # type: ignore[arg-type]
    assert verifier.verify(before).tenant_id == "acme"
    with pytest.raises(InvalidTokenError) as info:
        verifier.verify(at)
    assert info.value.kind is RejectReason.ISSUER
    unmigrated, _ = _legacy_verifier(None)
    with pytest.raises(InvalidTokenError):
        unmigrated.verify(before)
    own = jwt.encode(claims(), "acme", key.material)  # type: ignore[arg-type]
    assert unmigrated.verify(own).tenant_id == "acme"  # the tenant's issuer needs no cut-off


def test_the_cutoff_unreadable_fails_closed_for_legacy_tokens_only() -> None:
    """Storage down while the cut-off is unknown: a legacy-issuer token is a 503 (never an
    acceptance), a token with the tenant's own issuer verifies without asking."""
    verifier, key = _legacy_verifier(StorageUnavailableError("down"))
    own = jwt.encode(claims(), "acme", key.material)  # type: ignore[arg-type]
    assert verifier.verify(own).tenant_id == "acme"
    legacy = jwt.encode(claims(iss=ISSUER, iat=int(NOW) - 1), "acme", key.material)  # type: ignore[arg-type]
    with pytest.raises(StorageUnavailableError):
        verifier.verify(legacy)
