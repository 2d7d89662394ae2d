"""TokenVerifier strictness (VERIFIER-CHECKLIST #1-#11), one hand-built token per case.

Every token is signed with the right key of tenant ``acme`` (unless the case is about the
signature or the tenant), so the property under test is the only thing wrong with it; the
first tests show that the unmodified hand-built token is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantauth.crypto import jwt as jwt_module
from tenantauth.crypto.jwt import MAX_TOKEN_LENGTH, b64url_decode
from tenantauth.domain.models import Tenant, TenantStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import (
    TenantChanges,
    create_tenant,
    delete_tenant,
    rotate_tenant,
    update_tenant,
)
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError
from tests.support import ACME_ISSUER, ISSUER, NOW, FixedClock, tenant_issuer
from tests.unit.helpers import (
    ACME_SECRET,
    AUDIENCE,
    DROP,
    LEEWAY,
    MAX_LIFETIME,
    OTHER_SECRET,
    b64url,
    b64url_padded,
    claims,
    decode_lenient,
    forge,
    header,
    json_bytes,
    raw_json,
    sign,
    signed,
    with_stray_bits,
)

T = int(NOW)

pytestmark = pytest.mark.usefixtures("acme", "other")


def rejected(svc: Services, token: str, audience: str | None = None) -> InvalidTokenError:
    """Assert the verifier rejects ``token`` and return the error."""
    with pytest.raises(InvalidTokenError) as info:
        svc.verifier.verify(token, audience)
    return info.value


def segments(token: str) -> list[str]:
    """Split a compact token into its three segments."""
    head, payload, signature = token.split(".")
    return [head, payload, signature]


def find_payload(predicate: Any) -> dict[str, Any]:
    """Return valid claims whose ``sub`` is tuned so ``predicate(payload bytes)`` holds."""
    for n in range(200):
        for filler in ("x", "?>", "~?"):
            candidate = claims(sub="user-" + filler * n)
            if predicate(json_bytes(candidate)):
                return candidate
    raise AssertionError("no payload satisfies the predicate")


# --- the baseline -------------------------------------------------------------------------


def test_hand_built_token_accepted(svc: Services) -> None:
    """The unmodified hand-built token verifies, so every rejection below is due to its change."""
    verdict = svc.verifier.verify(forge())
    assert verdict.tenant_id == "acme"
    assert verdict.claims == claims()


def test_issued_token_verifies_with_right_fields(svc: Services) -> None:
    """A token from issue_token verifies and the verdict carries tenant, subject, scope, claims."""
    request = TokenRequest(
        "acme", "user-42", ttl=600, audience=["api", "web"], scope="read", claims={"role": "x"}
    )
    issued = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request)
    assert issued.expires_in == 600
    assert issued.token_type == "Bearer"
    verdict = svc.verifier.verify(issued.access_token, "web")
    assert (verdict.tenant_id, verdict.subject, verdict.scope) == ("acme", "user-42", "read")
    got = verdict.claims
    assert {k: got[k] for k in ("iss", "sub", "aud", "exp", "iat", "nbf", "tid", "role")} == {
        "iss": ACME_ISSUER,
        "sub": "user-42",
        "aud": ["api", "web"],
        "exp": T + 600,
        "iat": T,
        "nbf": T,
        "tid": "acme",
        "role": "x",
    }
    assert isinstance(got["jti"], str)
    assert len(got["jti"]) >= 16


def test_issued_token_without_scope_has_none(svc: Services) -> None:
    """A token issued without scope verifies with scope None and the default audience."""
    issued = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest("acme", "u"))
    verdict = svc.verifier.verify(issued.access_token, AUDIENCE)
    assert verdict.scope is None
    assert verdict.claims["aud"] == AUDIENCE
    assert "scope" not in verdict.claims


def test_other_tenant_token_accepted_with_its_own_key(svc: Services) -> None:
    """Tenant ``other`` signs with its own key and verifies (the cross-tenant cases differ)."""
    token = forge(header(kid="other"), claims(tid="other"), OTHER_SECRET)
    assert svc.verifier.verify(token).tenant_id == "other"


def test_longest_tenant_id_accepted(svc: Services) -> None:
    """A 63-character tenant id (the pattern's maximum) is a valid kid."""
    tid = "t" + "0" * 62
    create_tenant(svc, tid, "Long", secret=b64url(ACME_SECRET))
    assert svc.verifier.verify(forge(header(kid=tid), claims(tid=tid))).tenant_id == tid


# --- alg (#1) -----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("with_signature", [False, True], ids=["unsigned", "signed"])
def test_alg_none_rejected(svc: Services, alg: str, with_signature: bool) -> None:
    """alg none in any casing is rejected, with an empty or an HMAC signature."""
    signing_input = f"{b64url(json_bytes(header(alg=alg)))}.{b64url(json_bytes(claims()))}"
    signature = sign(signing_input) if with_signature else ""
    rejected(svc, f"{signing_input}.{signature}")


@pytest.mark.parametrize(
    ("alg", "digest"), [("HS384", hashlib.sha384), ("HS512", hashlib.sha512)], ids=["384", "512"]
)
def test_longer_hmac_rejected_even_with_right_secret(svc: Services, alg: str, digest: Any) -> None:
    """HS384/HS512 tokens made with the tenant's real secret are rejected (HS256 only)."""
    signing_input = f"{b64url(json_bytes(header(alg=alg)))}.{b64url(json_bytes(claims()))}"
    mac = hmac.new(ACME_SECRET, signing_input.encode(), digest).digest()
    rejected(svc, f"{signing_input}.{b64url(mac)}")


@pytest.mark.parametrize(
    "alg",
    ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", "dir", ""],
)
def test_other_alg_header_rejected(svc: Services, alg: str) -> None:
    """Any alg but exactly HS256 is rejected even when the HS256 signature is right."""
    rejected(svc, forge(header(alg=alg)))


@pytest.mark.parametrize(
    "alg", [DROP, None, ["HS256"], 256], ids=["missing", "null", "list", "int"]
)
def test_alg_missing_or_not_string_rejected(svc: Services, alg: Any) -> None:
    """A header without alg, or with a non-string alg, is rejected."""
    rejected(svc, forge(header(alg=alg)))


# --- typ (#9) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ",
    [DROP, "jwt", "at+jwt", "JWS", "refresh+jwt", "application/jwt", None, 1],
    ids=["missing", "lowercase", "at+jwt", "JWS", "refresh", "media-type", "null", "int"],
)
def test_typ_missing_or_wrong_rejected(svc: Services, typ: Any) -> None:
    """typ must be exactly JWT; refresh or other token kinds never pass as access tokens."""
    rejected(svc, forge(header(typ=typ)))


# --- kid (#5, #8) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    [DROP, None, 1, True, ["acme"], {"id": "acme"}],
    ids=["missing", "null", "int", "bool", "list", "object"],
)
def test_kid_missing_or_not_string_rejected(svc: Services, kid: Any) -> None:
    """The kid names the tenant and must be a string."""
    rejected(svc, forge(header(kid=kid)))


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("ACME", id="uppercase"),
        pytest.param("Acme", id="capitalised"),
        pytest.param("t" + "0" * 63, id="64-chars"),
        pytest.param("a", id="one-char"),
        pytest.param("", id="empty"),
        pytest.param("-acme", id="leading-dash"),
        pytest.param("acme' OR '1'='1", id="sql-or"),
        pytest.param("acme';--", id="sql-comment"),
        pytest.param('acme"', id="sql-quote"),
        pytest.param("../acme", id="path-parent"),
        pytest.param("acme/../acme", id="path-inner"),
        pytest.param("/etc/passwd", id="path-absolute"),
        pytest.param("acme%2f..", id="path-encoded"),
        pytest.param("acme\r\nx", id="crlf"),
        pytest.param("acme\n", id="trailing-newline"),
        pytest.param("acme\x00", id="nul"),
        pytest.param("acme}:x", id="redis-hash-tag"),
        pytest.param("acme}:fence", id="redis-fence-key"),
        pytest.param("{acme}", id="redis-braces"),
        pytest.param("acme*", id="redis-glob"),
        pytest.param("acme ", id="trailing-space"),
        pytest.param("\u0430cme", id="homoglyph-cyrillic-a"),
        pytest.param("ａｃｍｅ", id="homoglyph-fullwidth"),
        pytest.param("acme\u200b", id="zero-width-space"),
        pytest.param("acm\u00e9", id="accented"),
        pytest.param("$(id)", id="shell"),
    ],
)
def test_kid_not_a_tenant_id_rejected(svc: Services, kid: str) -> None:
    """A kid outside the tenant-id pattern is rejected, compared exactly (no folding)."""
    rejected(svc, forge(header(kid=kid), claims(tid=kid)))


def test_kid_of_other_tenant_with_acme_key_rejected(svc: Services) -> None:
    """kid=other (tid=other) signed with acme's key fails: the key comes from the kid."""
    rejected(svc, forge(header(kid="other"), claims(tid="other"), ACME_SECRET))


def test_kid_of_other_tenant_with_acme_claims_rejected(svc: Services) -> None:
    """kid=other with tid=acme, signed with other's key, is rejected (tid must equal kid)."""
    rejected(svc, forge(header(kid="other"), claims(tid="acme"), OTHER_SECRET))


# --- header members (#4, #10) ---------------------------------------------------------------


EXTRA_HEADER_MEMBERS: dict[str, Any] = {
    "crit": ["exp"],
    "jku": "https://attacker.example/jwks.json",
    "x5u": "https://attacker.example/cert.pem",
    "jwk": {"kty": "oct", "k": b64url(ACME_SECRET)},
    "x5c": ["MIIBszCCAVmgAwIBAgIU"],
    "x5t": "dGh1bWJwcmludA",
    "x5t#S256": "dGh1bWJwcmludA",
    "cty": "JWT",
    "b64": False,
    "zip": "DEF",
    "enc": "A256GCM",
    "p2c": 10_000_000,
    "p2s": "c2FsdA",
    "epk": {"kty": "EC"},
    "iv": "aXY",
    "tag": "dGFn",
    "x-custom": "anything",
}


@pytest.mark.parametrize("name", list(EXTRA_HEADER_MEMBERS))
def test_extra_header_member_rejected(svc: Services, name: str) -> None:
    """Only alg, typ and kid may appear in the header; every other member is rejected."""
    rejected(svc, forge(header(**{name: EXTRA_HEADER_MEMBERS[name]})))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"alg":"HS256","typ":"JWT","kid":"acme","kid":"acme"}', id="same-kid"),
        pytest.param(b'{"alg":"HS256","typ":"JWT","kid":"other","kid":"acme"}', id="two-kids"),
        pytest.param(b'{"alg":"none","alg":"HS256","typ":"JWT","kid":"acme"}', id="two-algs"),
        pytest.param(b'{"alg":"HS256","typ":"JWT","typ":"JWT","kid":"acme"}', id="same-typ"),
    ],
)
def test_duplicate_header_names_rejected(svc: Services, raw: bytes) -> None:
    """A header naming a member twice is rejected, whichever value would win."""
    rejected(svc, forge(raw))


def test_header_with_json_whitespace_accepted(svc: Services) -> None:
    """JSON whitespace and member order inside the header are not the encoding's business."""
    raw = b'{ "kid" : "acme",\n "typ": "JWT", "alg":"HS256" }'
    assert svc.verifier.verify(forge(raw)).tenant_id == "acme"


def test_header_with_unicode_escapes_names_same_tenant(svc: Services) -> None:
    """A JSON-escaped kid decodes to the same tenant id (escapes are JSON, not injection)."""
    raw = b'{"alg":"HS256","typ":"JWT","kid":"\\u0061cme"}'
    assert svc.verifier.verify(forge(raw)).tenant_id == "acme"


# --- encodings of the JSON -----------------------------------------------------------------


def test_bom_in_header_rejected(svc: Services) -> None:
    """A UTF-8 byte order mark before the header JSON is rejected."""
    rejected(svc, forge(b"\xef\xbb\xbf" + json_bytes(header())))


def test_bom_in_payload_rejected(svc: Services) -> None:
    """A UTF-8 byte order mark before the payload JSON is rejected."""
    rejected(svc, forge(payload=b"\xef\xbb\xbf" + json_bytes(claims())))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_or_utf32_header_rejected(svc: Services, encoding: str) -> None:
    """The header must be UTF-8; UTF-16/32 JSON (which json.loads(bytes) reads) is rejected."""
    rejected(svc, forge(json.dumps(header()).encode(encoding)))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_or_utf32_payload_rejected(svc: Services, encoding: str) -> None:
    """The payload must be UTF-8; UTF-16/32 JSON is rejected."""
    rejected(svc, forge(payload=json.dumps(claims()).encode(encoding)))


def test_invalid_utf8_in_payload_rejected(svc: Services) -> None:
    """A payload with bytes that are not UTF-8 is rejected."""
    rejected(svc, forge(payload=json_bytes(claims()).replace(b"user-1", b"user-\xc3\x28")))


@pytest.mark.parametrize(
    "raw",
    [b'["HS256","JWT","acme"]', b'"HS256"', b"null", b"1", b"true", b"{"],
    ids=["array", "string", "null", "number", "bool", "truncated"],
)
def test_header_not_an_object_rejected(svc: Services, raw: bytes) -> None:
    """A header that is not a JSON object is rejected."""
    rejected(svc, forge(raw))


@pytest.mark.parametrize(
    "raw",
    [json_bytes([claims()]), b'"claims"', b"null", b"42", b"true", b"{", b""],
    ids=["array", "string", "null", "number", "bool", "truncated", "empty"],
)
def test_payload_not_an_object_rejected(svc: Services, raw: bytes) -> None:
    """A payload that is not a JSON object is rejected."""
    rejected(svc, forge(payload=raw))


@pytest.mark.parametrize(
    ("name", "second"),
    [("sub", b'"user-1"'), ("exp", str(T + 10**6).encode()), ("tid", b'"other"')],
    ids=["sub-same-value", "exp-later", "tid-other"],
)
def test_duplicate_claim_names_rejected(svc: Services, name: str, second: bytes) -> None:
    """A payload naming a claim twice is rejected (parsers disagree on which one wins)."""
    raw = json_bytes(claims())[:-1] + b',"' + name.encode() + b'":' + second + b"}"
    rejected(svc, forge(payload=raw))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_rejected(svc: Services, literal: bytes) -> None:
    """NaN and Infinity are not JSON; a payload using them is rejected."""
    rejected(svc, forge(payload=raw_json(claims(), extra=literal)))


def test_deeply_nested_header_rejected(svc: Services) -> None:
    """A header nested deeper than the JSON parser recurses is rejected, not a crash."""
    depth = 1_350
    raw = b'{"alg":"HS256","typ":"JWT","kid":' + b"[" * depth + b"]" * depth + b"}"
    token = forge(raw, b"{}")
    assert len(token) <= MAX_TOKEN_LENGTH
    error = rejected(svc, token)
    assert isinstance(error.__cause__, RecursionError)


def test_deeply_nested_payload_rejected(svc: Services) -> None:
    """A payload nested deeper than the JSON parser recurses is rejected, not a crash."""
    depth = 1_200
    raw = raw_json(claims(), deep=b"[" * depth + b"]" * depth)
    token = forge(payload=raw)
    assert len(token) <= MAX_TOKEN_LENGTH
    error = rejected(svc, token)
    assert isinstance(error.__cause__, RecursionError)


# --- base64url and compact shape (#3) -------------------------------------------------------


def test_padded_header_rejected(svc: Services) -> None:
    """An '='-padded header segment is rejected even when the signature covers it."""
    padded = b64url_padded(json_bytes(header()))
    assert padded.endswith("=")
    rejected(svc, signed(padded, b64url(json_bytes(claims()))))


def test_padded_payload_rejected(svc: Services) -> None:
    """An '='-padded payload segment is rejected even when the signature covers it."""
    payload = json_bytes(find_payload(lambda raw: len(raw) % 3 != 0))
    padded = b64url_padded(payload)
    assert padded.endswith("=")
    rejected(svc, signed(b64url(json_bytes(header())), padded))


@pytest.mark.parametrize("padding", ["=", "=="])
def test_padded_signature_rejected(svc: Services, padding: str) -> None:
    """An '='-padded signature segment is rejected."""
    rejected(svc, forge() + padding)


def test_standard_alphabet_in_payload_rejected(svc: Services) -> None:
    """A payload spelled with '+' and '/' instead of '-' and '_' is rejected."""
    payload = find_payload(lambda raw: "-" in b64url(raw) and "_" in b64url(raw))
    head = b64url(json_bytes(header()))
    good = signed(head, b64url(json_bytes(payload)))
    assert svc.verifier.verify(good).subject == payload["sub"]
    std = b64url(json_bytes(payload)).replace("-", "+").replace("_", "/")
    rejected(svc, signed(head, std))


def test_standard_alphabet_in_signature_rejected(svc: Services) -> None:
    """A signature spelled with '+' or '/' instead of '-' or '_' is rejected."""
    for n in range(100):
        token = forge(payload=claims(jti=f"jti-{n}"))
        if "-" in token.split(".")[2] or "_" in token.split(".")[2]:
            break
    else:
        raise AssertionError("no signature with '-' or '_' found")
    assert svc.verifier.verify(token).tenant_id == "acme"
    head, payload, signature = segments(token)
    std = signature.replace("-", "+").replace("_", "/")
    rejected(svc, f"{head}.{payload}.{std}")


def test_stray_bits_in_header_rejected(svc: Services) -> None:
    """A header spelled with non-zero unused trailing bits is rejected (one spelling only)."""
    canonical = b64url(json_bytes(header()))
    stray = with_stray_bits(canonical)
    assert decode_lenient(stray) == decode_lenient(canonical)
    rejected(svc, signed(stray, b64url(json_bytes(claims()))))


def test_stray_bits_in_payload_rejected(svc: Services) -> None:
    """A payload spelled with non-zero unused trailing bits is rejected."""
    canonical = b64url(json_bytes(find_payload(lambda raw: len(raw) % 3 != 0)))
    stray = with_stray_bits(canonical)
    assert decode_lenient(stray) == decode_lenient(canonical)
    rejected(svc, signed(b64url(json_bytes(header())), stray))


def test_stray_bits_in_signature_rejected(svc: Services) -> None:
    """A signature spelled with non-zero unused trailing bits (same MAC bytes) is rejected."""
    head, payload, signature = segments(forge())
    stray = with_stray_bits(signature)
    assert decode_lenient(stray) == decode_lenient(signature)
    rejected(svc, f"{head}.{payload}.{stray}")


def test_impossible_base64_length_rejected(svc: Services) -> None:
    """A segment whose length no encoder produces (4n+1) is rejected."""
    payload = b64url(json_bytes(find_payload(lambda raw: len(raw) % 3 == 0)))
    rejected(svc, signed(b64url(json_bytes(header())), payload + "A"))


@pytest.mark.parametrize(
    "shape",
    ["{h}", "{h}.{p}", "{h}.{p}.{s}.{s}", "{h}.{p}.{s}.{p}.{s}", "{h}.{p}.{s}.", ".{p}.{s}"],
    ids=["1-segment", "2-segments", "4-segments", "5-segments", "trailing-dot", "empty-header"],
)
def test_wrong_number_of_segments_rejected(svc: Services, shape: str) -> None:
    """Only exactly three non-empty segments form a token."""
    h, p, s = segments(forge())
    rejected(svc, shape.format(h=h, p=p, s=s))


def test_jwe_shaped_token_rejected(svc: Services) -> None:
    """A five-part JWE with alg dir is rejected (no JWE at all)."""
    head = b64url(json_bytes({"alg": "dir", "enc": "A256GCM", "kid": "acme", "typ": "JWT"}))
    parts = [head, "", b64url(b"iv" * 6), b64url(json_bytes(claims())), b64url(b"t" * 16)]
    rejected(svc, ".".join(parts))


@pytest.mark.parametrize("general", [False, True], ids=["flattened", "general"])
def test_json_serialization_rejected(svc: Services, general: bool) -> None:
    """The JWS JSON serialization of a valid token is rejected (compact form only)."""
    h, p, s = segments(forge())
    body: dict[str, Any] = (
        {"payload": p, "signatures": [{"protected": h, "signature": s}]}
        if general
        else {"protected": h, "payload": p, "signature": s}
    )
    rejected(svc, json.dumps(body))


def test_empty_signature_rejected(svc: Services) -> None:
    """A token with an empty signature segment is rejected."""
    h, p, _ = segments(forge())
    rejected(svc, f"{h}.{p}.")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda s: ("B" if s[0] == "A" else "A") + s[1:], id="first-char"),
        pytest.param(lambda s: b64url(bytes(32)), id="all-zero"),
        pytest.param(lambda s: s[:-1], id="truncated"),
        pytest.param(lambda s: s + "AAAA", id="extended"),
        pytest.param(lambda s: b64url(bytes(reversed(decode_lenient(s)))), id="reversed"),
    ],
)
def test_altered_signature_rejected(svc: Services, mutate: Any) -> None:
    """Any change to the signature makes the token invalid."""
    h, p, s = segments(forge())
    rejected(svc, f"{h}.{p}.{mutate(s)}")


def test_signature_with_other_key_rejected(svc: Services) -> None:
    """A token of acme signed with another tenant's secret is rejected."""
    rejected(svc, forge(key=OTHER_SECRET))


def test_altered_payload_rejected(svc: Services) -> None:
    """Changing the payload under an existing signature is rejected."""
    h, _, s = segments(forge())
    rejected(svc, f"{h}.{b64url(json_bytes(claims(sub='admin')))}.{s}")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + " ", id="trailing-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: t + "\r\n", id="trailing-crlf"),
        pytest.param(lambda t: "\t" + t, id="leading-tab"),
        pytest.param(lambda t: t.replace(".", ". ", 1), id="after-dot"),
        pytest.param(lambda t: t.replace(".", " .", 1), id="before-dot"),
        pytest.param(lambda t: t[:10] + "\n" + t[10:], id="inside-header"),
        pytest.param(lambda t: t[:-10] + " " + t[-10:], id="inside-signature"),
        pytest.param(lambda t: t + "\u00a0", id="nbsp"),
        pytest.param(lambda t: t + "\u2028", id="line-separator"),
        pytest.param(lambda t: "Bearer " + t, id="scheme-prefix"),
    ],
)
def test_whitespace_anywhere_rejected(svc: Services, mutate: Any) -> None:
    """Whitespace (or anything else) around or inside a token is rejected."""
    rejected(svc, mutate(forge()))


def _token_of_length(length: int) -> str:
    """Return a valid acme token of exactly ``length`` characters (padded with a claim)."""
    heads = [json_bytes(header()), b'{"alg":"HS256","typ":"JWT","kid":"acme" }']
    for head in heads:
        for n in range(length):
            token = forge(head, claims(pad="x" * n))
            if len(token) == length:
                return token
            if len(token) > length:
                break
    raise AssertionError(f"no token of length {length}")


def test_token_at_length_limit_accepted(svc: Services) -> None:
    """A valid token of exactly MAX_TOKEN_LENGTH characters is accepted."""
    token = _token_of_length(MAX_TOKEN_LENGTH)
    assert svc.verifier.verify(token).claims["pad"].startswith("x")


def test_token_over_length_limit_rejected(svc: Services) -> None:
    """A correctly signed token one character over MAX_TOKEN_LENGTH is rejected."""
    rejected(svc, _token_of_length(MAX_TOKEN_LENGTH + 1))


def test_huge_token_rejected(svc: Services) -> None:
    """A megabyte-long token is rejected by the length cap."""
    rejected(svc, forge(payload=claims(pad="x" * 1_000_000)))


# --- tenant binding (#8) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "tid",
    [DROP, "other", "ACME", "acme ", None, ["acme"]],
    ids=["missing", "other", "uppercase", "trailing-space", "null", "list"],
)
def test_tid_missing_or_not_kid_rejected(svc: Services, tid: Any) -> None:
    """The tid claim must be present and exactly equal to the kid."""
    rejected(svc, forge(payload=claims(tid=tid)))


# --- time claims (#7) ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "iat"])
def test_required_time_claim_missing_rejected(svc: Services, name: str) -> None:
    """exp and iat are required."""
    rejected(svc, forge(payload=claims(**{name: DROP})))


def test_nbf_is_optional(svc: Services) -> None:
    """A token without nbf is accepted (nbf is optional)."""
    assert "nbf" not in svc.verifier.verify(forge(payload=claims(nbf=DROP))).claims


GOOD_TIMES = {"exp": T + 900, "iat": T, "nbf": T}
BAD_TIME_KINDS: dict[str, Any] = {
    "numeric-string": lambda v: json_bytes(str(v)),
    "float-fraction": lambda v: f"{v}.5".encode(),
    "float-integral": lambda v: f"{v}.0".encode(),
    "exponent": lambda v: f"{v / 10:.0f}e1".encode(),
    "true": lambda v: b"true",
    "false": lambda v: b"false",
    "null": lambda v: b"null",
    "huge-float-1e400": lambda v: b"1e400",
    "list": lambda v: f"[{v}]".encode(),
    "object": lambda v: f'{{"v":{v}}}'.encode(),
}


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("kind", list(BAD_TIME_KINDS))
def test_time_claim_not_json_integer_rejected(svc: Services, name: str, kind: str) -> None:
    """exp/iat/nbf must be JSON integers: strings, floats, booleans, null, 1e400 are rejected."""
    literal = BAD_TIME_KINDS[kind](GOOD_TIMES[name])
    rejected(svc, forge(payload=raw_json(claims(), **{name: literal})))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": -1}, id="exp-negative"),
        pytest.param({"iat": -1}, id="iat-negative"),
        pytest.param({"exp": T + 900, "iat": -(10**18)}, id="iat-hugely-negative"),
        pytest.param({"exp": 10**30}, id="exp-huge-int"),
        pytest.param({"exp": 2**63}, id="exp-2^63"),
    ],
)
def test_negative_or_huge_times_rejected(svc: Services, changes: dict[str, int]) -> None:
    """Negative exp/iat and huge integer exp are rejected (expired or lifetime too long)."""
    rejected(svc, forge(payload=claims(**changes)))


def test_past_nbf_even_negative_is_accepted(svc: Services) -> None:
    """nbf only bounds the start: an nbf in the past, even negative, adds no validity."""
    assert svc.verifier.verify(forge(payload=claims(nbf=-1))).claims["nbf"] == -1


def test_lifetime_at_maximum_accepted(svc: Services) -> None:
    """exp - iat equal to the maximum lifetime is accepted."""
    svc.verifier.verify(forge(payload=claims(iat=T - 100, nbf=DROP, exp=T - 100 + MAX_LIFETIME)))


def test_lifetime_beyond_maximum_rejected(svc: Services) -> None:
    """exp - iat one second beyond the maximum lifetime is rejected."""
    exp = T - 100 + MAX_LIFETIME + 1
    rejected(svc, forge(payload=claims(iat=T - 100, nbf=DROP, exp=exp)))


@pytest.mark.parametrize("delta", [0, -1], ids=["exp-equals-iat", "exp-before-iat"])
def test_non_positive_lifetime_rejected(svc: Services, delta: int) -> None:
    """A token whose exp is not after its iat is rejected."""
    rejected(svc, forge(payload=claims(iat=T - 10, nbf=DROP, exp=T - 10 + delta)))


def test_exp_just_inside_leeway_accepted(svc: Services) -> None:
    """now = exp + leeway - 1 is accepted (expired, but within the clock-skew leeway)."""
    exp = T - LEEWAY + 1
    svc.verifier.verify(forge(payload=claims(exp=exp, iat=exp - 60, nbf=DROP)))


def test_exp_at_leeway_boundary_rejected(svc: Services) -> None:
    """now >= exp + leeway is rejected."""
    exp = T - LEEWAY
    rejected(svc, forge(payload=claims(exp=exp, iat=exp - 60, nbf=DROP)))


def test_expiry_follows_the_clock(svc: Services, clock: FixedClock) -> None:
    """The same token is accepted, then rejected once the clock passes exp + leeway."""
    token = forge()
    svc.verifier.verify(token)
    clock.advance(900 + LEEWAY - 1)
    svc.verifier.verify(token)
    clock.advance(1)
    rejected(svc, token)


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_future_time_at_leeway_accepted(svc: Services, name: str) -> None:
    """nbf/iat at now + leeway are accepted."""
    start = T + LEEWAY
    svc.verifier.verify(
        forge(payload=claims(**{"iat": T, "nbf": T, "exp": start + 900, name: start}))
    )


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_future_time_beyond_leeway_rejected(svc: Services, name: str) -> None:
    """nbf/iat at now + leeway + 1 are rejected."""
    start = T + LEEWAY + 1
    rejected(svc, forge(payload=claims(**{"iat": T, "nbf": T, "exp": start + 900, name: start})))


# --- issuer and audience (#8) --------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        DROP,
        None,
        "",
        ACME_ISSUER[:-1],
        ACME_ISSUER + "/",
        ACME_ISSUER + ".evil.example",
        "https://evil.example/" + ACME_ISSUER,
        ACME_ISSUER.removeprefix("https://"),
        "auth",
        ACME_ISSUER.upper(),
        ACME_ISSUER.replace("auth", "AUTH"),
        " " + ACME_ISSUER,
        ACME_ISSUER + " ",
        [ACME_ISSUER],
        {"iss": ACME_ISSUER},
        tenant_issuer("other"),
        ISSUER,
    ],
    ids=[
        "missing",
        "null",
        "empty",
        "prefix",
        "trailing-slash",
        "suffix",
        "embedding",
        "no-scheme",
        "substring",
        "uppercase",
        "host-case",
        "leading-space",
        "trailing-space",
        "list",
        "object",
        "another-tenant",
        "service-wide-unmigrated",
    ],
)
def test_issuer_not_exact_rejected(svc: Services, iss: Any) -> None:
    """iss must equal the tenant's issuer exactly (no prefix, substring or case folding; not
    another tenant's; the service-wide form only where a migrated database says so)."""
    rejected(svc, forge(payload=claims(iss=iss)))


@pytest.mark.parametrize(
    "aud",
    [DROP, "", [], ["api", 1], ["api", ""], [None], 7, None, {"aud": "api"}],
    ids=[
        "missing",
        "empty",
        "empty-list",
        "non-string",
        "empty-member",
        "null-member",
        "int",
        "null",
        "object",
    ],
)
def test_aud_missing_or_malformed_rejected(svc: Services, aud: Any) -> None:
    """aud is required: a non-empty string or non-empty list of non-empty strings."""
    rejected(svc, forge(payload=claims(aud=aud)))


@pytest.mark.parametrize(
    ("aud", "wanted"),
    [("api", "web"), (["api", "mail"], "web"), ("web", "WEB"), (["web-x"], "web")],
    ids=["string", "list", "case", "prefix"],
)
def test_requested_audience_absent_rejected(svc: Services, aud: Any, wanted: str) -> None:
    """When the caller names an audience, the token must carry it exactly."""
    rejected(svc, forge(payload=claims(aud=aud)), audience=wanted)


@pytest.mark.parametrize(
    "aud", ["web", ["api", "web"], ["web"]], ids=["string", "list", "single-list"]
)
def test_requested_audience_present_accepted(svc: Services, aud: Any) -> None:
    """A token carrying the requested audience (string or list form) is accepted."""
    assert svc.verifier.verify(forge(payload=claims(aud=aud)), "web").claims["aud"] == aud


def test_audience_not_checked_when_not_requested(svc: Services) -> None:
    """Without a requested audience, any well-formed aud is accepted."""
    svc.verifier.verify(forge(payload=claims(aud=["x", "y"])))


# --- sub, jti, scope -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sub", "jti"])
@pytest.mark.parametrize(
    "value",
    [DROP, "", None, 1, ["u"], {"u": 1}, True],
    ids=["missing", "empty", "null", "int", "list", "object", "bool"],
)
def test_sub_and_jti_must_be_nonempty_strings(svc: Services, name: str, value: Any) -> None:
    """sub and jti are required non-empty strings."""
    rejected(svc, forge(payload=claims(**{name: value})))


@pytest.mark.parametrize(
    "scope",
    [None, 1, ["read"], {"read": True}, True],
    ids=["null", "int", "list", "object", "bool"],
)
def test_scope_not_string_rejected(svc: Services, scope: Any) -> None:
    """scope, when present, must be a string."""
    rejected(svc, forge(payload=claims(scope=scope)))


def test_scope_absent_gives_none(svc: Services) -> None:
    """A token without scope is accepted and its verdict's scope is None."""
    assert svc.verifier.verify(forge(payload=claims(scope=DROP))).scope is None


def test_scope_empty_string_is_kept(svc: Services) -> None:
    """An empty scope string is returned as is, not confused with an absent scope."""
    assert svc.verifier.verify(forge(payload=claims(scope=""))).scope == ""


# --- tenant lifecycle (#11, #14) -----------------------------------------------------------


def test_suspended_tenant_rejected(svc: Services) -> None:
    """Tokens of a suspended tenant are rejected."""
    token = forge()
    svc.verifier.verify(token)
    update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    rejected(svc, token)


def test_deleted_tenant_rejected(svc: Services) -> None:
    """Tokens of a deleted tenant are rejected."""
    token = forge()
    svc.verifier.verify(token)
    delete_tenant(svc, "acme")
    rejected(svc, token)


@pytest.mark.parametrize("key", [ACME_SECRET, b"\x00" * 32], ids=["acme-key", "zero-key"])
def test_unknown_tenant_rejected(svc: Services, key: bytes) -> None:
    """A token naming a tenant that never existed is rejected."""
    rejected(svc, forge(header(kid="nobody"), claims(tid="nobody"), key))


def test_unknown_tenant_fails_like_bad_signature(svc: Services) -> None:
    """An unknown tenant and a bad signature give the same error type and message."""
    unknown = rejected(svc, forge(header(kid="nobody"), claims(tid="nobody")))
    bad_signature = rejected(svc, forge(key=OTHER_SECRET))
    assert type(unknown) is type(bad_signature)
    assert str(unknown) == str(bad_signature)
    assert unknown.detail == bad_signature.detail


def test_recreated_tenant_rejects_old_token(svc: Services) -> None:
    """A token of a deleted tenant stays rejected after the same id is created again."""
    old = forge()
    delete_tenant(svc, "acme")
    create_tenant(svc, "acme", "Acme again")
    rejected(svc, old)


def test_rotation_rejects_old_and_accepts_new(svc: Services, acme: Tenant) -> None:
    """After rotate_tenant the old token is rejected and a newly issued one accepted."""
    old = forge()
    svc.verifier.verify(old)
    rotate_tenant(svc, "acme")
    rejected(svc, old)
    issued = issue_token(
        svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest("acme", "user-1")
    )
    assert svc.verifier.verify(issued.access_token).tenant_id == "acme"


def test_rotation_to_imported_secret(svc: Services) -> None:
    """After rotating to an imported secret, tokens signed with it verify and old ones fail."""
    old = forge()
    rotate_tenant(svc, "acme", b64url(OTHER_SECRET))
    rejected(svc, old)
    # Minted elsewhere with the imported secret: it must name the key version (claim kv).
    assert svc.verifier.verify(forge(payload=claims(kv=2), key=OTHER_SECRET)).tenant_id == "acme"
    rejected(svc, forge(key=OTHER_SECRET))


def _reference_b64url_decode(segment: str) -> bytes | None:
    """The first definition of canonical base64url: decode, encode again, compare; None when
    rejected. ``jwt.b64url_decode`` now checks the last character instead."""
    if len(segment) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        return None
    return raw


_B64URL_ALPHABET = string.ascii_letters + string.digits + "-_"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=_B64URL_ALPHABET + "+/=. \n\x00é", max_size=14))
def test_b64url_decode_gives_the_reference_verdict(segment: str) -> None:
    """For any string, ``b64url_decode`` accepts exactly what the reference (decode, encode
    again, compare) accepts, with the same bytes (stray bits, padding, the standard alphabet,
    impossible lengths and foreign characters included)."""
    expected = _reference_b64url_decode(segment)
    try:
        got: bytes | None = b64url_decode(segment)
    except InvalidTokenError:
        got = None
    assert got == expected


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=_B64URL_ALPHABET, max_size=14))
def test_a_matched_segment_decodes_to_the_reference_verdict(segment: str) -> None:
    """``_segment_bytes``, which decodes the segments ``_COMPACT_RE`` matched (so only
    base64url characters) without checking the alphabet again, gives the reference's verdict
    and bytes: stray bits and impossible lengths are still refused."""
    expected = _reference_b64url_decode(segment)
    try:
        got: bytes | None = jwt_module._segment_bytes(segment)
    except InvalidTokenError:
        got = None
    assert got == expected


@pytest.mark.parametrize("length", range(13))
def test_b64url_decode_accepts_every_last_character_a_canonical_encoder_writes(
    length: int,
) -> None:
    """Every value of the last character that carries no stray bits, at every length."""
    for last in _B64URL_ALPHABET:
        segment = "A" * length + last
        assert (_reference_b64url_decode(segment) is None) == _rejects(segment), segment


def _rejects(segment: str) -> bool:
    try:
        b64url_decode(segment)
    except InvalidTokenError:
        return True
    return False


# --------------------------------------------------------------------------- issued headers


def _raw_header(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@given(
    alg=st.sampled_from((*jwt_module.ALGORITHMS, "none", "HS512", "hs256")),
    tenant=st.from_regex(r"[a-z0-9][a-z0-9-]{0,63}", fullmatch=True),
    key=st.one_of(st.none(), st.from_regex(r"k0|[a-z2-7]{7,9}", fullmatch=True)),
    typ=st.sampled_from(("JWT", "jwt", "JOSE")),
)
@settings(max_examples=300, deadline=None)
def test_a_header_as_issued_parses_as_the_json_parser_parses_it(
    alg: str, tenant: str, key: str | None, typ: str
) -> None:
    """The match of a header spelled exactly as we issue it gives the JSON parser's answer:
    the same parts, or a refusal for the same inputs (a bad alg, tenant id, key name or typ
    falls through to the parser, which refuses it)."""
    kid = tenant if key is None else f"{tenant}.{key}"
    raw = json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode()
    segment = _raw_header(raw.decode())
    try:
        expected: Any = jwt_module._parse_header_json(raw)
    except InvalidTokenError:
        expected = InvalidTokenError
    try:
        got: Any = jwt_module._parse_header(segment)
    except InvalidTokenError:
        got = InvalidTokenError
    assert got == expected
    if expected is not InvalidTokenError:
        assert jwt_module._ISSUED_HEADER_RE.fullmatch(raw) is not None  # the fast path ran


@pytest.mark.parametrize(
    "text",
    [
        '{"alg": "HS256", "kid": "acme", "typ": "JWT"}',  # spaces
        '{"kid":"acme","alg":"HS256","typ":"JWT"}',  # another order
        '{"alg":"HS256","kid":"a\\u0063me","typ":"JWT"}',  # an escape
        '{"alg":"HS256","kid":"acme","typ":"JWT","x":1}',  # a member more
        '{"alg":"HS256","kid":"acme","kid":"evil","typ":"JWT"}',  # a duplicate
    ],
)
def test_other_spellings_of_a_header_take_the_json_parser(text: str) -> None:
    """Anything not spelled as issued is not matched; the parser decides it."""
    raw = text.encode()
    assert jwt_module._ISSUED_HEADER_RE.fullmatch(raw) is None
    try:
        expected: Any = jwt_module._parse_header_json(raw)
    except InvalidTokenError:
        expected = InvalidTokenError
    try:
        got: Any = jwt_module._parse_header(_raw_header(text))
    except InvalidTokenError:
        got = InvalidTokenError
    assert got == expected
