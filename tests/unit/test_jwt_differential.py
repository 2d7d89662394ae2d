"""Differential test: whatever our strict verifier accepts, strict PyJWT accepts too.

Tokens come from issue_token and from a generator of hand-built and mutated tokens (random
headers, claims of random types, padding, alphabet and segment mutations), re-signed with the
right key so many of them get past the signature. PyJWT reads the real wall clock, so here the
verifier does too, and every time claim sits at least 10 s away from a validity boundary.

The deterministic tests at the end show inputs PyJWT accepts and we reject: that is why the
verifier does not rely on PyJWT alone (VERIFIER-CHECKLIST #3, #4, #7).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

from tenantauth.domain.services import Services, SystemClock
from tenantauth.domain.tenants import create_tenant
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError
from tests.support import ACME_ISSUER, ISSUER, tenant_issuer
from tests.unit.helpers import (
    ACME_SECRET,
    AUDIENCE,
    BASE64URL_ALPHABET,
    DROP,
    LEEWAY,
    OTHER_SECRET,
    b64url,
    claims,
    forge,
    header,
    json_bytes,
    make_services,
    signed,
)

KEYS = {"acme": ACME_SECRET, "other": OTHER_SECRET}
AUDIENCES = [AUDIENCE, "api", "web"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Services on the real wall clock with tenants acme and other (known secrets)."""
    svc = make_services(tmp_path_factory.mktemp("differential") / "d.db", SystemClock())
    for tenant_id, secret in KEYS.items():
        create_tenant(svc, tenant_id, tenant_id.title(), secret=b64url(secret))
    yield svc
    svc.close()


def pyjwt_decode(token: str, key: bytes, audience: str) -> dict[str, Any]:
    """Decode with PyJWT and the strictest options it offers for our claims."""
    return pyjwt.decode(  # type: ignore[no-any-return]
        token,
        key,
        algorithms=["HS256"],
        audience=audience,
        issuer=[ACME_ISSUER, tenant_issuer("other")],  # the two tenants' own issuers
        leeway=LEEWAY,
        options={"require": ["exp", "iat", "iss", "aud", "sub"], "strict_aud": False},
    )


# --- the generator ------------------------------------------------------------------------
#
# A hand-built token is valid except for at most a few drawn "faults"; each fault replaces one
# part (a header member, a claim, the JSON spelling, the key) with a listed bad value or random
# JSON. So a good share of hand-built tokens is accepted, in many shapes, and the rest probe
# one or two checks at a time.

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
# Offsets from now: valid ones, and invalid ones, all >= 10 s away from a boundary (leeway 30).
GOOD_OFFSETS = {"exp": [900, 60, 15, -15, 3600], "iat": [0, -10, -600, 20], "nbf": [0, -10, 20]}
BAD_OFFSETS = {"exp": [-45, -3600], "iat": [45, 3600], "nbf": [45, 3600]}
BAD_CLAIMS: dict[str, list[Any]] = {
    "iss": [ACME_ISSUER + "/", ACME_ISSUER.upper(), "auth.test", "", [ACME_ISSUER], ISSUER],
    "sub": ["", 1, None, ["user"]],
    "aud": ["", [], [1], [AUDIENCE, ""], "nobody"],
    "jti": ["", 7, None],
    "tid": ["ACME", "nobody", None],
    "scope": [1, None, ["read"]],
}
CLAIM_NAMES = [*GOOD_OFFSETS, *BAD_CLAIMS]
OTHER_FAULTS = ["alg", "typ", "kid", "header-member", "header-style", "payload-style", "key"]


def _bad(draw: st.DrawFn, listed: list[Any]) -> Any:
    return draw(st.one_of(st.sampled_from([*listed, DROP]), JSON_VALUES))


def _time(draw: st.DrawFn, now: int, name: str, faulty: bool) -> Any:
    if not faulty:
        return now + draw(st.sampled_from(GOOD_OFFSETS[name]))
    wrong_type = [str(now), float(now), now + 0.5, True, None, 10**30, -1]
    return draw(st.sampled_from([*(now + o for o in BAD_OFFSETS[name]), *wrong_type, DROP]))


def _serialise(value: dict[str, Any], style: str) -> bytes:
    if style == "spaced":
        return json_bytes(value).replace(b",", b", ").replace(b'":', b'" : ')
    if style == "reversed":
        return json_bytes(dict(reversed(value.items())))
    if style == "dup" and value:
        name, member = next(iter(value.items()))
        return json_bytes(value)[:-1] + b"," + json_bytes(name) + b":" + json_bytes(member) + b"}"
    if style == "bom":
        return b"\xef\xbb\xbf" + json_bytes(value)
    return json_bytes(value)


@st.composite
def hand_built(draw: st.DrawFn, now: int) -> tuple[str, str, bytes]:
    """Draw ``(token, requested audience, key)`` for a token with 0-2 faults."""
    faults = draw(st.sets(st.sampled_from(CLAIM_NAMES + OTHER_FAULTS), max_size=2))
    tenant = draw(st.sampled_from(list(KEYS)))
    head: dict[str, Any] = {"alg": "HS256", "typ": "JWT", "kid": tenant}
    for name, listed in (
        ("alg", ["none", "HS512", "hs256", "RS256"]),
        ("typ", ["jwt", "at+jwt"]),
        ("kid", ["ACME", "nobody", "acme}:x", "../acme", "other" if tenant == "acme" else "acme"]),
    ):
        if name in faults:
            head[name] = _bad(draw, listed)
    if "header-member" in faults:
        name = draw(st.sampled_from(["cty", "crit", "jku", "zip", "x5u", "enc", "b64"]))
        head[name] = draw(JSON_VALUES)
    aud = draw(st.sampled_from([AUDIENCE, [AUDIENCE, "api"], ["api"], "web", ["web", "api"]]))
    payload: dict[str, Any] = {
        "iss": tenant_issuer(tenant),
        "sub": draw(st.text(min_size=1, max_size=10)),
        "aud": aud,
        "jti": draw(st.text(min_size=1, max_size=10)),
        "tid": tenant,
        "scope": draw(st.one_of(st.just(DROP), st.text(max_size=10))),
    }
    for name in GOOD_OFFSETS:
        payload[name] = _time(draw, now, name, name in faults)
    for name, listed in BAD_CLAIMS.items():
        if name in faults:
            payload[name] = _bad(draw, listed)
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=6), JSON_VALUES, max_size=3))
    payload.update({k: v for k, v in extra.items() if k not in payload})
    good_styles, bad_styles = ["compact", "spaced", "reversed"], ["dup", "bom"]
    head_style = draw(st.sampled_from(bad_styles if "header-style" in faults else good_styles))
    payload_style = draw(st.sampled_from(bad_styles if "payload-style" in faults else good_styles))
    key = KEYS[tenant]
    if "key" in faults:
        key = draw(st.sampled_from([k for k in KEYS.values() if k != key] + [b"\x00" * 32]))
    token = forge(
        _serialise({k: v for k, v in head.items() if v is not DROP}, head_style),
        _serialise({k: v for k, v in payload.items() if v is not DROP}, payload_style),
        key,
    )
    audiences = [aud] if isinstance(aud, str) else aud
    return token, draw(st.sampled_from([*audiences, *AUDIENCES])), key


MUTATIONS = [
    "none",
    "none",
    "none",
    "none",
    "pad",
    "std-alphabet",
    "stray-bits",
    "whitespace",
    "drop-signature",
    "extra-segment",
    "flip",
    "resign-padded",
]


def _mutate(token: str, how: str, segment: int, key: bytes) -> str:
    parts = token.split(".")
    if how == "pad":
        parts[segment] += "="
    elif how == "std-alphabet":
        parts[segment] = parts[segment].replace("-", "+").replace("_", "/")
    elif how == "stray-bits" and len(parts[segment]) % 4 in (2, 3):
        last = BASE64URL_ALPHABET.index(parts[segment][-1])
        parts[segment] = parts[segment][:-1] + BASE64URL_ALPHABET[last ^ 1]
    elif how == "whitespace":
        parts[segment] = " " + parts[segment]
    elif how == "drop-signature":
        parts[2] = ""
    elif how == "extra-segment":
        parts.append(parts[segment])
    elif how == "flip":
        c = parts[segment][0]
        parts[segment] = ("B" if c == "A" else "A") + parts[segment][1:]
    elif how == "resign-padded" and segment < 2:
        parts[segment] += "=" * (-len(parts[segment]) % 4)
        return signed(parts[0], parts[1], key)
    return ".".join(parts)


# What issuance accepts: no control characters in sub (Unicode category Cc), and RFC 6749
# §3.3 scope syntax.
SUBJECTS = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)
SCOPES = st.from_regex(r"[!#-\[\]-~]{1,6}( [!#-\[\]-~]{1,6}){0,2}", fullmatch=True)


@st.composite
def tokens(draw: st.DrawFn, svc: Services, *, hand_built_only: bool = False) -> tuple[str, str]:
    """Draw ``(token, audience)``: issued by us, or hand-built; then maybe mutated."""
    if not hand_built_only and draw(st.booleans()):
        aud = draw(st.one_of(st.none(), st.sampled_from(AUDIENCES), st.just(["api", "web"])))
        request = TokenRequest(
            draw(st.sampled_from(list(KEYS))),
            draw(SUBJECTS),
            ttl=draw(st.one_of(st.none(), st.integers(1, 86_400))),
            audience=aud,
            scope=draw(st.one_of(st.none(), SCOPES)),
            claims=draw(st.dictionaries(st.sampled_from(["role", "org", "n"]), JSON_VALUES)),
        )
        token = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token
        key = KEYS[request.tenant_id]
        audience = draw(st.sampled_from(AUDIENCES))
    else:
        token, audience, key = draw(hand_built(int(time.time())))
    how = draw(st.sampled_from(MUTATIONS))
    return _mutate(token, how, draw(st.integers(0, 2)), key), audience


def _accepted(svc: Services, drawn: tuple[str, str]) -> bool:
    try:
        svc.verifier.verify(*drawn)
    except InvalidTokenError:
        return False
    return True


# --- the property -------------------------------------------------------------------------


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_whatever_we_accept_pyjwt_accepts_with_same_claims(
    live: Services, data: st.DataObject
) -> None:
    """Every token our verifier accepts, strict PyJWT accepts too, with identical claims."""
    token, audience = data.draw(tokens(live))
    try:
        verdict = live.verifier.verify(token, audience)
    except InvalidTokenError as exc:
        event(f"rejected: {exc.reason}")
        return
    event("accepted")
    decoded = pyjwt_decode(token, KEYS[verdict.tenant_id], audience)
    assert decoded == verdict.claims
    assert decoded["sub"] == verdict.subject
    assert decoded.get("scope") == verdict.scope


def test_generator_yields_accepted_hand_built_tokens(live: Services) -> None:
    """The generator reaches accepted hand-built tokens, so the property is not vacuous."""
    token, audience = find(
        tokens(live, hand_built_only=True),
        lambda drawn: _accepted(live, drawn),
        settings=settings(max_examples=2_000, database=None),
    )
    assert live.verifier.verify(token, audience).tenant_id in KEYS


def test_generator_yields_rejected_signed_tokens(live: Services) -> None:
    """The generator reaches correctly signed tokens that we reject (claims or header wrong)."""
    find(
        tokens(live, hand_built_only=True),
        lambda drawn: not _accepted(live, drawn) and _signature_ok(drawn[0]),
        settings=settings(max_examples=2_000, database=None),
    )


def _signature_ok(token: str) -> bool:
    """Whether PyJWT finds a right HS256 signature of one of our tenants (claims unchecked)."""
    checks_off = ["exp", "iat", "nbf", "aud", "iss", "sub", "jti"]
    options: Any = {"verify_signature": True, **{f"verify_{c}": False for c in checks_off}}
    for key in KEYS.values():
        try:
            pyjwt.decode(token, key, algorithms=["HS256"], options=options)
        except pyjwt.PyJWTError:
            continue
        return True
    return False


# --- what PyJWT accepts and we do not -----------------------------------------------------


def _now_claims(**changes: Any) -> dict[str, Any]:
    return claims(time.time(), **changes)


def test_duplicate_claim_names_pyjwt_accepts_we_reject(live: Services) -> None:
    """PyJWT takes the last of two 'sub' members; we reject the token outright."""
    raw = json_bytes(_now_claims())[:-1] + b',"sub":"admin"}'
    token = forge(header(), raw)
    assert pyjwt_decode(token, ACME_SECRET, AUDIENCE)["sub"] == "admin"
    with pytest.raises(InvalidTokenError):
        live.verifier.verify(token, AUDIENCE)


def test_padded_signature_pyjwt_accepts_we_reject(live: Services) -> None:
    """PyJWT accepts an '='-padded signature segment (a second spelling); we reject it."""
    token = forge(header(), _now_claims()) + "="
    assert pyjwt_decode(token, ACME_SECRET, AUDIENCE)["tid"] == "acme"
    with pytest.raises(InvalidTokenError):
        live.verifier.verify(token, AUDIENCE)


@pytest.mark.parametrize(
    "exp",
    [
        pytest.param(lambda now: str(now + 900), id="numeric-string"),
        pytest.param(lambda now: now + 900.5, id="float"),
        pytest.param(lambda now: 10**30, id="huge-int"),
    ],
)
def test_odd_exp_pyjwt_accepts_we_reject(live: Services, exp: Any) -> None:
    """PyJWT accepts a numeric-string, float or absurdly far exp; we require a bounded int."""
    token = forge(header(), _now_claims(exp=exp(int(time.time()))))
    assert pyjwt_decode(token, ACME_SECRET, AUDIENCE)["tid"] == "acme"
    with pytest.raises(InvalidTokenError):
        live.verifier.verify(token, AUDIENCE)


def test_bom_header_pyjwt_accepts_we_reject(live: Services) -> None:
    """PyJWT reads a header behind a UTF-8 BOM; we require plain UTF-8 JSON."""
    token = forge(b"\xef\xbb\xbf" + json_bytes(header()), json_bytes(_now_claims()))
    assert pyjwt_decode(token, ACME_SECRET, AUDIENCE)["tid"] == "acme"
    with pytest.raises(InvalidTokenError):
        live.verifier.verify(token, AUDIENCE)


def test_same_token_accepted_by_both(live: Services) -> None:
    """Control: the unmodified hand-built token is accepted by PyJWT and by us alike."""
    token = forge(header(), _now_claims())
    assert pyjwt_decode(token, ACME_SECRET, AUDIENCE) == live.verifier.verify(token).claims
