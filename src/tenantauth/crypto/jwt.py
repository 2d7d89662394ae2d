"""Strict compact JWS encoding and parsing for tenantauth tokens (HS256 and key pairs).

The parser enforces the shape rules of VERIFIER-CHECKLIST #1, #3, #4, #5 and #10 *before* any
key lookup, and only hands out the payload after the signature was checked in constant time
(#6). Claim semantics (times, issuer, audience) live in ``tenantauth.domain.tokens``.

We do not verify with PyJWT: it accepts inputs that must be rejected (duplicate JSON names,
``=``-padded segments, numeric-string ``exp``), and one strict pass is also faster than strict
pre-checks plus a second parse. ``tests/unit/test_jwt_differential.py`` shows that everything
this parser accepts, PyJWT with strict options accepts too. Issuing HS256 uses PyJWT; key-pair
tokens are signed by ``crypto/keypairs.py`` (PyJWT's ES256 signatures are high-S half the time,
which our verifier refuses: one token, one spelling).

The header is exactly ``{alg, kid, typ}``; ``kid`` is ``<tenant id>.<key name>`` for a key pair
(what an offline verifier selects the key by), and the bare tenant id for an HS256 key, as
every token before key pairs (an HS256 key is never published, so nothing selects it by name;
docs/design.md, "The header names the tenant and the key").
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jwt as pyjwt

from tenantauth.crypto import keypairs
from tenantauth.errors import InvalidTokenError, RejectReason

#: VERIFIER-CHECKLIST #3: a cap checked before any base64 or JSON work. Our tokens are far
#: smaller (issuance refuses to mint anything longer).
MAX_TOKEN_LENGTH = 4096
ALGORITHM = "HS256"
#: Every algorithm a tenant's key may have; the key record's, never the token's, decides.
ALGORITHMS = (ALGORITHM, *keypairs.ALGORITHMS)
TOKEN_TYPE = "JWT"  # noqa: S105 - the `typ` header value, not a secret
TENANT_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
#: A key's name within its tenant: ``k0`` (the secret every tenant had before key pairs) or
#: 8 characters of ``[a-z2-7]`` (``keypairs.new_key_id``).
KEY_NAME_RE = re.compile(r"k0|[a-z2-7]{8}")
LEGACY_KEY_NAME = "k0"
_KID_RE = re.compile(rf"({TENANT_ID_RE.pattern})(?:\.({KEY_NAME_RE.pattern}))?")
# RFC 7515 §7.1 compact serialization, base64url without padding (RFC 7515 §2). Signatures
# run from 43 characters (HS256, 32 bytes) to 1366 (RS256 with an 8192-bit modulus); the
# exact length is the key's to check.
_COMPACT_RE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43,1366})")
_HEADER_NAMES = frozenset({"alg", "typ", "kid"})
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
#: The characters that may end a canonical segment, by its length modulo 4: their 6-bit
#: values are multiples of 16 (4 spare bits) or of 4 (2 spare bits).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_PADDING = {0: "", 2: "==", 3: "="}
_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")  # RFC 4648 §5 to §4
_HEADER_CACHE_MAX = 4096
#: A header exactly as we issue it (PyJWT's member order and spelling, no white space): one
#: match of the decoded bytes gives what ``_parse_header``'s JSON parse and checks give for
#: them (tests/unit/test_jwt_strict.py), at a third of the cost; any other spelling is parsed.
_ISSUED_HEADER_RE = re.compile(
    rb'\{"alg":"('
    + "|".join(ALGORITHMS).encode("ascii")
    + rb')","kid":"('
    + TENANT_ID_RE.pattern.encode("ascii")
    + rb")(?:\.("
    + KEY_NAME_RE.pattern.encode("ascii")
    + rb'))?","typ":"JWT"\}'
)


class CompactToken(NamedTuple):
    """A token whose shape and header passed; the signature is not yet checked.

    ``tenant_id`` and ``key_name`` are the header's ``kid`` (``key_name`` is "" for a bare
    tenant id); ``alg`` is the header's, which must equal the key's (``check_signature``).
    Immutable (a memo shares it between threads); a named tuple rather than a frozen
    dataclass, whose ``__init__`` costs three times as much on every first-seen token.
    """

    tenant_id: str
    key_name: str
    alg: str
    signing_input: bytes
    signature: bytes
    payload_segment: str


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A tenant key opened for verifying: its name, its algorithm, and the HMAC secret
    (``HS256``) or the public key (the key pairs)."""

    name: str
    alg: str
    material: bytes | keypairs.PublicKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The keys a tenant's tokens may name: its signing key (``current``), and its other keys
    with the epoch second each stops verifying (None: a next key, which does not stop)."""

    current: VerificationKey
    others: tuple[tuple[VerificationKey, int | None], ...] = ()
    #: ``(current,)``, made once: the answer for nearly every token (no other keys).
    alone: tuple[VerificationKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Make ``alone`` (a frozen dataclass sets it the only way it can)."""
        object.__setattr__(self, "alone", (self.current,))

    def candidates(self, key_name: str, now: float) -> tuple[VerificationKey, ...]:
        """The keys a token naming ``key_name`` ("" for a bare tenant id) may be checked
        with at ``now``: the named key while it verifies; for a bare tenant id, the tenant's
        HS256 keys that verify, signing key first (HS256 tokens name the tenant alone, so
        during a rollover's grace the previous secret is tried after the current one)."""
        if not self.others:  # the common case, without allocating
            current = self.current
            if key_name == current.name or (not key_name and current.alg == ALGORITHM):
                return self.alone
            return ()
        if key_name:
            if key_name == self.current.name:
                return (self.current,)
            for key, until in self.others:
                if key.name == key_name:
                    return (key,) if until is None or now < until else ()
            return ()
        live = (key for key, until in self.others if until is None or now < until)
        return tuple(k for k in (self.current, *live) if k.alg == ALGORITHM)

    def published(self, now: float) -> tuple[VerificationKey, ...]:
        """The key-pair keys that verify at ``now`` (what the JWKS lists): HS256 secrets are
        never published."""
        live = (key for key, until in self.others if until is None or now < until)
        return tuple(k for k in (self.current, *live) if k.alg != ALGORITHM)


# Header segment -> (tenant id, key name, alg) for headers that already parsed cleanly.
# Parsing is a pure function of the segment, so caching cannot change a verdict; it only skips
# base64 + JSON work on the hot path. Bounded: cleared when full, so a flood of distinct
# headers costs memory O(max) only.
_header_cache: dict[str, tuple[str, str, str]] = {}


def parse_compact(token: str) -> CompactToken:
    """Check the shape and header of a compact JWS and return its parts.

    Raises ``InvalidTokenError`` for anything but ``header.payload.signature`` in canonical
    unpadded base64url with a header of exactly ``alg`` (one of ``ALGORITHMS``), ``typ=JWT``
    and a ``kid`` naming a tenant and optionally its key (VERIFIER-CHECKLIST #1, #3, #4, #5).
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("token too long")
    match = _COMPACT_RE.fullmatch(token)
    if match is None:
        raise InvalidTokenError("not a compact JWS")
    header_seg, payload_seg, sig_seg = match.groups()
    header = _header_cache.get(header_seg)
    if header is None:
        header = _parse_header(header_seg)
        if len(_header_cache) >= _HEADER_CACHE_MAX:
            _header_cache.clear()
        _header_cache[header_seg] = header
    tenant_id, key_name, alg = header
    signing_input = token[: match.end(2)].encode("ascii")
    return CompactToken(
        tenant_id, key_name, alg, signing_input, _segment_bytes(sig_seg), payload_seg
    )


def check_signature(token: CompactToken, key: VerificationKey) -> None:
    """Check the token's signature with ``key``, the tenant's key its header names.

    The key decides the algorithm (RFC 8725 §3.1): a header whose ``alg`` differs is
    refused before any signature work, so an HS256 token "signed" with a public key's bytes
    never meets an HMAC. HS256 compares in constant time (RFC 7518 §3.2).
    Raises ``InvalidTokenError`` if the key's name or algorithm differs, or the signature
    does not match.
    """
    if token.key_name != key.name and (token.key_name or key.alg != ALGORITHM):
        # A bare tenant id names the tenant's HS256 key, whatever its name; a key name must
        # be the key's own (a key pair's token always names its key).
        raise InvalidTokenError("signed by a key the tenant no longer holds", RejectReason.ROTATED)
    if token.alg != key.alg:
        raise InvalidTokenError("alg differs from the key's", RejectReason.SIGNATURE)
    material = key.material
    if isinstance(material, bytes):
        valid = hs256_matches(material, token)
    else:
        valid = keypairs.verify(key.alg, material, token.signing_input, token.signature)
    if not valid:
        raise InvalidTokenError("bad signature", RejectReason.SIGNATURE)


def hs256_matches(key: bytes, token: CompactToken) -> bool:
    """Return whether ``token``'s signature is the HS256 of its signing input under ``key``,
    compared in constant time (RFC 7518 §3.2)."""
    return hmac.compare_digest(hs256(key, token.signing_input), token.signature)


def hs256(key: bytes, signing_input: bytes) -> bytes:
    """Return the HMAC-SHA256 of ``signing_input`` under ``key`` (RFC 7518 §3.2).

    ``hmac.new``, not the one-shot ``hmac.digest``: the one-shot releases the GIL around its
    work, and in a server whose threads queue for the GIL that release hands it to another
    thread, which the caller then waits out (docs/design.md, "Hot-path calls that release
    the GIL"); ``update`` keeps it below 2,048 bytes, and our signing inputs are a few
    hundred. Not a keyed HMAC kept per key and copied: that saved 0.9 µs a call but held
    0.8 KiB per tenant (100,000 of them: +76 MiB in process; a worker's RSS at 100,000
    tenants went from 224 to 284 MiB)."""
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def payload_of(token: CompactToken) -> dict[str, Any]:
    """Decode the payload of a token whose signature was checked.

    Returns the claims object. Raises ``InvalidTokenError`` unless it is a UTF-8 JSON object
    without duplicate names (RFC 7519 §4).
    """
    return _json_object(_segment_bytes(token.payload_segment), "payload")


def encode(
    claims: dict[str, Any],
    tenant_id: str,
    key: bytes,
    *,
    alg: str = ALGORITHM,
    key_name: str = LEGACY_KEY_NAME,
) -> str:
    """Sign ``claims`` as a JWT whose header names the tenant, and a key pair's key (``kid``,
    ``header_kid``). ``key`` is the HS256 secret, or a key pair's private key as PKCS#8 DER.
    """
    kid = header_kid(tenant_id, key_name, alg)
    if alg == ALGORITHM:
        return pyjwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})
    header = {"alg": alg, "kid": kid, "typ": TOKEN_TYPE}  # PyJWT's order and spelling
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    private = keypairs.load_private_cached(alg, key)
    signature = keypairs.sign(alg, private, signing_input.encode("ascii"))
    return f"{signing_input}.{keypairs.b64url(signature)}"


def header_kid(tenant_id: str, key_name: str, alg: str) -> str:
    """The ``kid`` of a tenant's tokens: ``<tenant id>.<key name>`` for a key pair, the bare
    tenant id for an HS256 key (as every token before key pairs)."""
    return tenant_id if alg == ALGORITHM else f"{tenant_id}.{key_name}"


def _segment(value: dict[str, Any]) -> str:
    return keypairs.b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def b64url_decode(segment: str) -> bytes:
    """Decode canonical unpadded base64url (RFC 7515 §2).

    Raises ``InvalidTokenError`` for a character outside the alphabet, a length no encoder
    produces, or stray trailing bits, so every token has exactly one spelling
    (VERIFIER-CHECKLIST #3).
    """
    if not _B64URL_RE.fullmatch(segment):
        raise InvalidTokenError("bad base64url")
    return _segment_bytes(segment)


def _segment_bytes(segment: str) -> bytes:
    """Decode ``segment``, of base64url characters only (a segment of a token ``_COMPACT_RE``
    matched, or one ``b64url_decode`` checked): on every first-seen token, so the alphabet is
    not matched a second time. Raises ``InvalidTokenError`` for an impossible length or stray
    trailing bits (VERIFIER-CHECKLIST #3)."""
    rest = len(segment) % 4
    if rest == 1:
        raise InvalidTokenError("impossible base64url length")
    # RFC 4648 §3.5: the last character of a segment 2 or 3 characters past a multiple of 4
    # also carries 4 or 2 bits beyond the data, which a canonical encoder sets to zero. This
    # check replaces decoding, encoding again and comparing (the same verdict, tested both
    # ways in tests/unit/test_jwt_strict.py; ~1 µs less per segment).
    if rest and segment[-1] not in _CANONICAL_LAST[rest]:
        raise InvalidTokenError("non-canonical base64url")
    padded = segment + _PADDING[rest]
    return binascii.a2b_base64(padded.encode("ascii").translate(_TO_STANDARD_ALPHABET))


def _parse_header(segment: str) -> tuple[str, str, str]:
    raw = _segment_bytes(segment)
    issued = _ISSUED_HEADER_RE.fullmatch(raw)
    if issued is not None:
        tenant_id, key_name, alg = issued.group(2, 3, 1)
        return tenant_id.decode(), (key_name or b"").decode(), alg.decode()
    return _parse_header_json(raw)


def _parse_header_json(raw: bytes) -> tuple[str, str, str]:
    header = _json_object(raw, "header")
    if header.keys() != _HEADER_NAMES:
        raise InvalidTokenError("header must hold exactly alg, typ and kid")
    alg = header["alg"]
    if not isinstance(alg, str) or alg not in ALGORITHMS:  # never "none" (RFC 8725 §3.1)
        raise InvalidTokenError("algorithm not allowed")
    if header["typ"] != TOKEN_TYPE:
        raise InvalidTokenError("wrong typ")
    kid = header["kid"]
    match = _KID_RE.fullmatch(kid) if isinstance(kid, str) else None
    if match is None:
        raise InvalidTokenError("kid does not name a tenant and key")
    return match[1], match[2] or "", alg


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        # Decode UTF-8 ourselves: json.loads(bytes) would also accept UTF-16/32 and a BOM.
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidTokenError(f"{what} is not strict JSON") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError(f"{what} is not a JSON object")
    if "\\u" in text and _has_lone_surrogate(value):
        # RFC 7493 §2.1 (I-JSON): no escaped lone surrogates. They are not Unicode text, so
        # no UTF-8 consumer of the claims (a header, a log line, a database) could take them.
        raise InvalidTokenError(f"{what} holds a lone surrogate")
    return value


def _has_lone_surrogate(value: dict[str, Any]) -> bool:
    """Return whether any string in ``value`` holds a lone surrogate (or it cannot be told)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return True
    return False


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7515 §5.2 step 4 / RFC 7519 §4: duplicate names MUST be rejected or resolved;
        # we reject, since two parsers resolving differently is a known smuggling vector.
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    # 1e999 is JSON but no double: it would read as infinity, which the claims of a response
    # could only carry out as the non-JSON ``Infinity`` (RFC 8259 §6).
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


#: One strict decoder for every header and payload: ``json.loads`` with these hooks built a
#: new ``JSONDecoder`` (and its scanner) on every call. Shared by every thread, as the
#: module's own default decoder is (``json.loads`` without hooks).
_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)
