"""Format confusion: JSON text encodings, base64url spellings, token shapes, sizes, nesting.

Each token that has a signature carries a valid HS256 signature over its own text, so a lax
parser that normalised the spelling would accept it. Sources: RFC 8725 §2.6 and §3.7 (one
JSON encoding: UTF-8), RFC 8259 §8.1 (no BOM), RFC 7493 §2.1 (I-JSON: no lone surrogates),
RFC 7515 §2 and §7.1 (unpadded base64url, compact form), RFC 7516 §9 (telling JWE from JWS
by its five parts), RFC 7515 §7.2 (JSON serialization, unsupported here), and the recursion
and size advisories behind VERIFIER-CHECKLIST #3 and #12.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import assert_problem
from tests.security.forge import (
    Case,
    b64url,
    b64url_padded,
    case_ids,
    claims,
    forge,
    header,
    json_bytes,
    raw_json,
    segments_signed,
    with_stray_bits,
)
from tests.security.probe import World, assert_accepted, assert_rejected

VALID = forge()
HEAD, BODY = json_bytes(header()), json_bytes(claims())
HEAD_SEG, PAYLOAD_SEG, SIG_SEG = VALID.split(".")
BOM = b"\xef\xbb\xbf"


def _text_encodings() -> list[Case]:
    """RFC 8725 §3.7 / RFC 8259 §8.1: UTF-8 without BOM; RFC 7493 §2.1: no lone surrogates."""
    cases: dict[str, str] = {}
    for part, raw in (("header", HEAD), ("payload", BODY)):
        text = raw.decode()
        variants = {
            "bom": BOM + raw,
            "utf-16": text.encode("utf-16"),
            "utf-16-le": text.encode("utf-16-le"),
            "utf-16-be": text.encode("utf-16-be"),
            "utf-32": text.encode("utf-32"),
            "latin-1-byte": raw[:-1] + b',"x":"\xe9"}',
            "invalid-utf8-ff": raw[:-1] + b',"x":"\xff"}',
            "overlong-slash": raw[:-1] + b',"x":"\xc0\xaf"}',
            "cesu8-surrogate": raw[:-1] + b',"x":"\xed\xa0\x80"}',
            "truncated-multibyte": raw[:-1] + b',"x":"\xc3"}',
        }
        for name, data in variants.items():
            head, body = (data, BODY) if part == "header" else (HEAD, data)
            cases[f"{part}-{name}"] = forge(head, body)
    for name in ("sub", "jti", "iss", "scope", "custom"):
        lone = forge(payload=raw_json(claims(), **{name: b'"a\\ud800b"'}))
        cases[f"lone-surrogate-in-{name}"] = lone
    cases["lone-low-surrogate-in-scope"] = forge(payload=raw_json(claims(), scope=b'"\\udc00"'))
    cases["lone-surrogate-in-claim-name"] = forge(payload=BODY[:-1] + b',"\\ud800":1}')
    cases["lone-surrogate-in-kid"] = forge(raw_json(header(), kid=b'"acme\\ud800"'))
    return [Case(k, v, "RFC 8725 §3.7") for k, v in cases.items()]


def _json_shapes() -> list[Case]:
    """Header or payload that is not one strict JSON object."""
    shapes: dict[str, bytes] = {
        "array": b"[]",
        "string": b'"acme"',
        "number": b"1",
        "null": b"null",
        "true": b"true",
        "empty": b"",
        "whitespace-only": b" ",
        "empty-object": b"{}",
        "truncated": b'{"alg":',
        "trailing-garbage": b"}x",
        "two-objects": b"}{}",
        "single-quotes": b"'",
        "trailing-comma": b",}",
        "comment": b"/*x*/}",
    }
    cases = []
    for name, data in shapes.items():
        for part, valid in (("header", HEAD), ("payload", BODY)):
            if name in ("trailing-garbage", "two-objects", "trailing-comma", "comment"):
                data_for = valid[:-1] + data if name != "two-objects" else valid + b"{}"
            elif name == "single-quotes":
                data_for = valid.replace(b'"', b"'")
            else:
                data_for = data
            head, body = (data_for, BODY) if part == "header" else (HEAD, data_for)
            cases.append(Case(f"{part}-{name}", forge(head, body), "RFC 7515 §5.2 step 3"))
    return cases


def _spellings() -> list[Case]:
    """RFC 7515 §2: one canonical unpadded base64url spelling; no whitespace anywhere."""
    urlsafe_claims = claims(x="~~~?>?>")  # encodes to segments holding '-' and '_'
    payload = b64url(json_bytes(urlsafe_claims))
    assert "-" in payload or "_" in payload
    std = payload.replace("-", "+").replace("_", "/")
    cases = {
        "header-padded": segments_signed(b64url_padded(HEAD), PAYLOAD_SEG),
        "payload-padded": segments_signed(HEAD_SEG, b64url_padded(BODY)),
        "signature-padded": VALID + "=",
        "payload-standard-alphabet": segments_signed(HEAD_SEG, std),
        "payload-mixed-alphabet": segments_signed(HEAD_SEG, std.replace("+", "-", 1)),
        "header-stray-bits": segments_signed(with_stray_bits(HEAD_SEG), PAYLOAD_SEG),
        "payload-stray-bits": segments_signed(HEAD_SEG, with_stray_bits(PAYLOAD_SEG)),
        "signature-stray-bits": f"{HEAD_SEG}.{PAYLOAD_SEG}.{with_stray_bits(SIG_SEG)}",
        "impossible-length": segments_signed(
            HEAD_SEG, PAYLOAD_SEG + "A" * (5 - len(PAYLOAD_SEG) % 4)
        ),
    }
    for name, blank in {
        "space": " ",
        "tab": "\t",
        "lf": "\n",
        "crlf": "\r\n",
        "nbsp": "\xa0",
    }.items():
        spaced = PAYLOAD_SEG[:8] + blank + PAYLOAD_SEG[8:]
        # HMAC input is ASCII; a non-ASCII blank keeps the original signature instead.
        inside = (
            segments_signed(HEAD_SEG, spaced)
            if blank.isascii()
            else VALID.replace(PAYLOAD_SEG, spaced)
        )
        cases[f"{name}-inside-payload"] = inside
        cases[f"{name}-before-dot"] = f"{HEAD_SEG}{blank}.{PAYLOAD_SEG}.{SIG_SEG}"
        cases[f"{name}-trailing"] = VALID + blank
        cases[f"{name}-leading"] = blank + VALID
    return [Case(k, v, "RFC 7515 §2") for k, v in cases.items()]


def _shapes() -> list[Case]:
    """RFC 7515 §7.1 compact form only: segment counts, JWE shape, JSON serializations."""
    jwe_head = b64url(json_bytes({"alg": "dir", "enc": "A256GCM", "kid": "acme", "zip": "DEF"}))
    flattened = {"protected": HEAD_SEG, "payload": PAYLOAD_SEG, "signature": SIG_SEG}
    general = {
        "payload": PAYLOAD_SEG,
        "signatures": [{"protected": HEAD_SEG, "signature": SIG_SEG}],
    }
    cases = {
        "1-segment": HEAD_SEG,
        "2-segments": f"{HEAD_SEG}.{PAYLOAD_SEG}",
        "2-segments-trailing-dot": f"{HEAD_SEG}.{PAYLOAD_SEG}.",
        "4-segments": f"{VALID}.{SIG_SEG}",
        "4-segments-trailing-dot": f"{VALID}.",
        "5-segments-jwe": f"{jwe_head}..{b64url(bytes(12))}.{PAYLOAD_SEG}.{b64url(bytes(16))}",
        "5-segments-from-jws": f"{VALID}.{SIG_SEG}.{SIG_SEG}",
        "leading-dot": f".{VALID}",
        "empty-header": f".{PAYLOAD_SEG}.{SIG_SEG}",
        "empty-payload": segments_signed(HEAD_SEG, ""),
        "only-dots": "..",
        "json-flattened": json.dumps(flattened),
        "json-general": json.dumps(general),
        "json-flattened-base64url": b64url(json.dumps(flattened).encode()),
        "bearer-prefix-in-token": f"Bearer {VALID}",
        "quoted": f'"{VALID}"',
        "percent-encoded-dot": VALID.replace(".", "%2E"),
        "fullwidth-dot": VALID.replace(".", "\uff0e"),
    }
    return [Case(k, v, "RFC 7515 §7.1") for k, v in cases.items()]


def _sizes_and_depth() -> list[Case]:
    """CHECKLIST #3/#12: a size cap before decoding; JSON nesting can never crash us."""
    deep = b"[" * 1100 + b"]" * 1100
    cases = {
        "4097-chars": _token_of_length(4097),
        "60000-chars": VALID + "A" * 60_000,
        "header-nested-1100": forge(head=raw_json(header(), x=deep)),
        "payload-nested-1100": forge(payload=raw_json(claims(), x=deep)),
        "payload-nested-objects-600": forge(
            payload=raw_json(claims(), x=b'{"a":' * 600 + b"1" + b"}" * 600)
        ),
    }
    return [Case(k, v, "CHECKLIST #12") for k, v in cases.items()]


def _token_of_length(length: int, *, strict: bool = True) -> str:
    """A validly signed token of exactly ``length`` characters (padding custom claims);
    "" if no token has that length and not ``strict``."""
    base = len(forge(payload=claims(pad="", q="")))
    for filler in range(max(0, (length - base) * 3 // 4 - 8), length):
        for extra in ("", "y", "yy", "yyy"):
            token = forge(payload=claims(pad="x" * filler, q=extra))
            if len(token) == length:
                return token
        if len(token) > length + 8:
            break
    assert not strict, f"no token of length {length}"
    return ""


CASES = _text_encodings() + _json_shapes() + _spellings() + _shapes() + _sizes_and_depth()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_token_is_rejected_uniformly(world: World, case: Case) -> None:
    """Each format confusion gets the uniform 401 (and inactive introspection)."""
    assert_rejected(world, case.token)


def test_longest_token_under_the_cap_is_accepted(world: World) -> None:
    """The longest token up to 4096 characters still verifies: the cap is not off by one.

    (With our 54-character header no token is exactly 4096 long: the payload segment would
    need a length of 1 mod 4, which base64url never produces.)
    """
    token = next(t for n in (4096, 4095) if (t := _token_of_length(n, strict=False)))
    assert len(token) >= 4095
    assert_accepted(world, token)


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024], ids=["64KiB+1", "1MiB"])
def test_oversized_body_is_413(world: World, size: int) -> None:
    """A body over 64 KiB is 413 on POST /v1/verify and on introspection (never parsed)."""
    token = "A" * size
    assert_problem(world.post({"token": token}), 413)
    r = world.introspect(token)
    assert r.status_code == 413
    assert r.get_json()["error"] == "request_entity_too_large"


@pytest.mark.parametrize(
    "body",
    ["[" * 50_000, '{"token":' + "[" * 50_000, '{"token":"' + VALID + '","x":' + "{" * 30_000],
    ids=["array", "token-member", "extra-member"],
)
def test_deeply_nested_body_is_400(world: World, body: str) -> None:
    """A request body nested beyond the parser's depth is a 400 problem, never a 500."""
    r = world.client.post("/v1/verify", data=body, content_type="application/json")
    assert_problem(r, 400, "invalid_request")


def test_huge_authorization_header_is_the_uniform_401(world: World) -> None:
    """A 100 KB bearer header is refused by size before any token work with the uniform 401
    (a 431 would be a 500 behind nginx), and the answer does not depend on the token."""
    for token in (VALID, forge(key=b"\x05" * 32)):
        r = world.get(f"Bearer {token}{'A' * 100_000}")
        assert r.status_code == 401
        assert r.get_data() == world.refs["invalid"].get_data()
