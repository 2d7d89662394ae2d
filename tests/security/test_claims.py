"""Claim attacks on correctly signed tokens: times, issuer, audience, duplicate names.

Every token here carries a valid HS256 signature of tenant acme, so only the claim decides.
Sources: RFC 7519 §4.1.1–4.1.6 and §7.2, RFC 8725 §3.8–3.9, PyJWT CVE-2024-53861 (``iss``
matched as a substring), PyJWT's acceptance of numeric-string ``exp`` (VERIFIER-CHECKLIST
#7), RFC 7493 §2.3 / RFC 7515 §5.2 (duplicate member names) — CHECKLIST #7, #8.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.forge import (
    DROP,
    Case,
    case_ids,
    claims,
    forge,
    header,
    json_bytes,
    raw_json,
)
from tests.security.probe import World, assert_accepted, assert_rejected
from tests.support import ACME_ISSUER, ISSUER, NOW, tenant_issuer

T = int(NOW)
LEEWAY = 30  # tests.support.make_settings keeps the default clock_leeway
MAX_LIFETIME = 86_400  # and the default max_token_ttl
#: Raw JSON values no time claim may hold (RFC 7519 §2 NumericDate; CHECKLIST #7: integers).
BAD_TIME_VALUES: dict[str, bytes] = {
    "string": b'"%d"',
    "float": b"%d.0",
    "float-fraction": b"%d.5",
    "exponent": b"%de0",
    "bool": b"true",
    "null": b"null",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "1e400": b"1e400",
    "array": b"[%d]",
    "object": b'{"t":%d}',
    "hex-string": b'"0x%x"',
}


def _time_cases() -> list[Case]:
    cases = []
    for name in ("exp", "nbf", "iat"):
        value = claims()[name]
        for kind, template in BAD_TIME_VALUES.items():
            literal = template % value if b"%" in template else template
            token = forge(payload=raw_json(claims(), **{name: literal}))
            cases.append(Case(f"{name}-{kind}", token, "RFC 7519 §4.1"))
    changes: dict[str, dict[str, Any]] = {
        "exp-missing": {"exp": DROP},
        "iat-missing": {"iat": DROP},
        "exp-negative": {"exp": -1},
        "exp-zero": {"exp": 0},
        "exp-huge-int": {"exp": 10**2500},
        "iat-negative": {"iat": -1},
        "iat-huge-int": {"iat": 10**30, "exp": 10**30 + 900},
        "nbf-huge-int": {"nbf": 10**30},
        "lifetime-max-plus-1": {"iat": T - 1, "exp": T - 1 + MAX_LIFETIME + 1},
        "lifetime-zero": {"exp": T + 10, "iat": T + 10},
        "exp-before-iat": {"exp": T + 5, "iat": T + 10},
        "exp-at-leeway-boundary": {"exp": T - LEEWAY, "iat": T - 900},
        "nbf-past-leeway": {"nbf": T + LEEWAY + 1},
        "iat-past-leeway": {"iat": T + LEEWAY + 1, "exp": T + 900},
    }
    cases += [Case(k, forge(payload=claims(**v)), "RFC 7519 §4.1.4-6") for k, v in changes.items()]
    return cases


def _issuer_cases() -> list[Case]:
    values: dict[str, Any] = {
        "missing": DROP,
        "prefix": ACME_ISSUER[:-1],
        "suffix-slash": ACME_ISSUER + "/",
        "suffix-domain": ACME_ISSUER + ".evil.example",
        "substring": "auth.test",
        "superstring": "https://evil.example/" + ACME_ISSUER,
        "uppercase": ACME_ISSUER.upper(),
        "scheme-http": ACME_ISSUER.replace("https", "http"),
        "trailing-space": ACME_ISSUER + " ",
        "list": [ACME_ISSUER],
        "null": None,
        "empty": "",
        "fullwidth-dot": ACME_ISSUER.replace(".", "\uff0e"),
        "another-tenant": tenant_issuer("other"),
        # The service-wide form every token had before tenants became issuers: accepted only
        # for tokens issued before a migrated database's cut-off, and this one has none.
        "service-wide": ISSUER,
    }
    return [
        Case(f"iss-{k}", forge(payload=claims(iss=v)), "CVE-2024-53861") for k, v in values.items()
    ]


def _audience_cases() -> list[Case]:
    values: dict[str, Any] = {
        "missing": DROP,
        "empty-string": "",
        "empty-array": [],
        "number": 42,
        "null": None,
        "bool": True,
        "object": {"aud": "tenantauth"},
        "nested-array": [["tenantauth"]],
        "array-with-number": ["tenantauth", 1],
        "array-with-empty": ["tenantauth", ""],
        "array-with-null": ["tenantauth", None],
    }
    return [
        Case(f"aud-{k}", forge(payload=claims(aud=v)), "RFC 7519 §4.1.3") for k, v in values.items()
    ]


def _with_duplicate(payload: bytes, member: bytes) -> bytes:
    return payload[:-1] + b"," + member + b"}"


def _duplicate_cases() -> list[Case]:
    """RFC 7515 §5.2 / RFC 7519 §4 / RFC 7493 §2.3: duplicate names, never last-one-wins."""
    head, body = json_bytes(header()), json_bytes(claims())
    heads = {
        "header-dup-alg-none-last": _with_duplicate(head, b'"alg":"none"'),
        "header-dup-alg-none-first": b'{"alg":"none",' + head[1:],
        "header-dup-kid-other": _with_duplicate(head, b'"kid":"other"'),
        "header-dup-kid-same": _with_duplicate(head, b'"kid":"acme"'),
        "header-dup-typ": _with_duplicate(head, b'"typ":"JWT"'),
        "header-dup-via-escape": _with_duplicate(head, b'"\\u006bid":"acme"'),
    }
    bodies = {
        "claims-dup-exp-later": _with_duplicate(body, b'"exp":%d' % (T + 10**6)),
        "claims-dup-sub-same": _with_duplicate(body, b'"sub":"user-1"'),
        "claims-dup-sub-admin": _with_duplicate(body, b'"sub":"admin"'),
        "claims-dup-tid-other": _with_duplicate(body, b'"tid":"other"'),
        "claims-dup-iss": _with_duplicate(body, b'"iss":"https://evil.example"'),
        "claims-dup-aud": _with_duplicate(body, b'"aud":"elsewhere"'),
        "claims-dup-via-escape": _with_duplicate(body, b'"\\u0073ub":"admin"'),
        "claims-dup-nested-object": _with_duplicate(body, b'"x":{"a":1,"a":2}'),
    }
    cases = [Case(k, forge(head=v), "RFC 7515 §5.2") for k, v in heads.items()]
    return cases + [Case(k, forge(payload=v), "RFC 7519 §4") for k, v in bodies.items()]


def _custom_number_cases() -> list[Case]:
    """A number no double holds (or no JSON at all) in a custom claim: the claims of a 200
    could only carry it on as the non-JSON ``Infinity``/``NaN`` (RFC 8259 §6)."""
    literals = {"1e999": b"1e999", "minus-1e999": b"-1e999", "NaN": b"NaN", "nested": b"[1e999]"}
    return [
        Case(f"custom-claim-{k}", forge(payload=raw_json(claims(), ctx=v)), "RFC 8259 §6")
        for k, v in literals.items()
    ]


CASES = (
    _time_cases()
    + _issuer_cases()
    + _audience_cases()
    + _duplicate_cases()
    + _custom_number_cases()
)

#: Valid edge cases: the rejections above must come from the claim, not from strictness.
ACCEPTED: dict[str, dict[str, Any]] = {
    "exp-just-inside-leeway": {"exp": T - LEEWAY + 1, "iat": T - 900, "nbf": T - 900},
    "nbf-at-leeway-boundary": {"nbf": T + LEEWAY},
    "iat-at-leeway-boundary": {"iat": T + LEEWAY, "nbf": T + LEEWAY, "exp": T + 900},
    "nbf-missing": {"nbf": DROP},
    "nbf-negative": {"nbf": -1},
    "lifetime-exactly-max": {"iat": T - 1, "nbf": T - 1, "exp": T - 1 + MAX_LIFETIME},
    "aud-array-with-ours": {"aud": ["elsewhere", "tenantauth"]},
    "aud-other-only-when-not-asked": {"aud": "elsewhere"},
    "custom-claim-nested": {"ctx": {"a": [1, {"b": None}]}},
    "custom-claim-surrogate-pair": {"emoji": "\U0001f600"},
    "custom-claim-largest-double": {"big": 1.7976931348623157e308, "tiny": 1e-999},
}


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_token_is_rejected_uniformly(world: World, case: Case) -> None:
    """Each bad claim gets the uniform 401 (and inactive introspection)."""
    assert_rejected(world, case.token)


@pytest.mark.parametrize("changes", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_edge_of_validity_is_accepted(world: World, changes: dict[str, Any]) -> None:
    """Tokens at the exact leeway and lifetime limits still verify everywhere."""
    assert assert_accepted(world, forge(payload=claims(**changes)))["tid"] == "acme"


@pytest.mark.parametrize(
    ("aud", "asked", "status"),
    [
        ("tenantauth", "tenantauth", 200),
        (["orders", "tenantauth"], "tenantauth", 200),
        ("tenantauthx", "tenantauth", 401),
        ("tenant", "tenantauth", 401),
        ("TENANTAUTH", "tenantauth", 401),
        (["orders", "billing"], "tenantauth", 401),
        ("orders billing", "orders", 401),
        ("tenantauth", "tenantauth ", 401),
    ],
    ids=["equal", "in-list", "superstring", "prefix", "case", "not-in-list", "spaces", "blank"],
)
def test_requested_audience_matches_exactly(
    world: World, aud: Any, asked: str, status: int
) -> None:
    """RFC 7519 §4.1.3: an asked-for audience must equal one `aud` value exactly."""
    token = forge(payload=claims(aud=aud))
    get = world.client.get(
        "/v1/verify", query_string={"audience": asked}, headers={"Authorization": f"Bearer {token}"}
    )
    post = world.client.post("/v1/verify", json={"token": token, "audience": asked})
    assert (get.status_code, post.status_code) == (status, status)
    if status == 401:
        assert get.get_json()["code"] == post.get_json()["code"] == "invalid_token"
