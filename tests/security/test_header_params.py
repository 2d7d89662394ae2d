"""Hostile JOSE header parameters: ``kid`` injection and every parameter we do not support.

Sources: RFC 8725 §3.10 ("do not trust received claims": ``kid`` SQL/path/command injection,
``jku``/``x5u`` server-side fetches), RFC 7515 §4.1.11 (``crit``), RFC 7797 (``b64``),
RFC 7516 §4.1.3 and jwcrypto CVE-2024-28102 / python-jose CVE-2024-33664 (``zip`` bombs),
RFC 7518 §4.8 and jwcrypto CVE-2023-6681 (``p2c`` work factor), CVE-2018-0114 (node-jose
trusting an embedded ``jwk``), RFC 8725 §3.3 and §3.11 (nested tokens, ``cty``/``typ``),
and OWASP's JWT cheat sheet on ``kid`` (VERIFIER-CHECKLIST #4, #5, #10, #12).
"""

from __future__ import annotations

import secrets
import zlib
from typing import Any

import pytest

from tests.security.conftest import Listener
from tests.security.forge import (
    ACME_SECRET,
    DROP,
    OTHER_SECRET,
    Case,
    b64url,
    case_ids,
    claims,
    forge,
    header,
    json_bytes,
    signed,
)
from tests.security.probe import World, assert_rejected

ATTACKER_KEY = secrets.token_bytes(32)


def _kid_cases() -> list[Case]:
    """``kid`` of the wrong type, shape, length or spelling, signed with acme's key."""
    kids: dict[str, Any] = {
        "missing": DROP,
        "number": 1,
        "null": None,
        "array": ["acme"],
        "object": {"kid": "acme"},
        "bool": True,
        "empty": "",
        "huge-3000": "a" * 3000,
        "long-200": "a" * 200,
        "64-chars": "a" * 64,
        "sql-quote": "acme' OR '1'='1",
        "sql-comment": "acme'--",
        "sql-stacked": "acme; DROP TABLE tenants",
        "sql-union": "x' UNION SELECT secret FROM tenants--",
        "path-traversal": "../../../../etc/passwd",
        "path-absolute": "/dev/null",
        "path-relative": "acme/../other",
        "redis-glob": "acme*",
        "redis-key-prefix": "tenantauth:acme",
        "redis-colon": "acme:other",
        "redis-crlf-command": "acme\r\nFLUSHALL\r\n",
        "crlf": "acme\r\n",
        "nul": "acme\x00",
        "url": "https://evil.example/acme",
        "shell": "acme;id",
        "homoglyph-cyrillic-a": "\u0430cme",
        "homoglyph-cyrillic-e": "acm\u0435",
        "fullwidth": "\uff41\uff43\uff4d\uff45",
        "uppercase": "ACME",
        "trailing-space": "acme ",
        "zero-width-space": "acme\u200b",
        "combining-mark": "acme\u0301",
        "leading-dash": "-acme",
        "one-char": "a",
    }
    return [
        Case(f"kid-{name}", forge(header(kid=kid)), "RFC 8725 §3.10") for name, kid in kids.items()
    ]


def _tenant_crossing() -> list[Case]:
    """Another tenant's id in ``kid`` or ``tid`` (cross-tenant smuggling, CHECKLIST #8)."""
    cases = {
        "kid-other-acme-key-acme-claims": forge(header(kid="other")),
        "kid-other-acme-key-other-claims": forge(header(kid="other"), claims(tid="other")),
        "kid-acme-other-key-other-claims": forge(payload=claims(tid="other"), key=OTHER_SECRET),
        "kid-acme-tid-other-acme-key": forge(payload=claims(tid="other")),
        "kid-other-tid-acme-other-key": forge(header(kid="other"), key=OTHER_SECRET),
        "kid-unknown-tenant": forge(header(kid="ghost"), claims(tid="ghost")),
    }
    for name, tid in {"missing": DROP, "null": None, "upper": "ACME", "list": ["acme"]}.items():
        cases[f"tid-{name}"] = forge(payload=claims(tid=tid))
    return [Case(name, token, "RFC 8725 §2.7") for name, token in cases.items()]


def _unsupported_params() -> list[Case]:
    """Header parameters we never implement: each must fail, never change the processing."""
    compressed = b64url(zlib.compress(json_bytes(claims()))[2:-4])  # raw DEFLATE, RFC 1951
    nested = forge().encode()
    params: dict[str, dict[str, Any]] = {
        "crit-exp": {"crit": ["exp"]},
        "crit-b64": {"crit": ["b64"], "b64": False},
        "crit-empty": {"crit": []},
        "crit-kid-known-name": {"crit": ["kid"]},
        "crit-not-a-list": {"crit": "b64"},
        "b64-false": {"b64": False},
        "b64-true": {"b64": True},
        "zip-def": {"zip": "DEF"},
        "enc-a256gcm": {"enc": "A256GCM"},
        "p2c-huge": {"p2c": 2**31 - 1, "p2s": "c2FsdA"},
        "p2s": {"p2s": "c2FsdA"},
        "x5c": {"x5c": ["MIIBszCCAVmgAwIBAgIUEWt6"]},
        "x5t": {"x5t": b64url(bytes(20))},
        "x5t#S256": {"x5t#S256": b64url(bytes(32))},
        "cty-JWT": {"cty": "JWT"},
        "cty-jwt-lowercase": {"cty": "jwt"},
        "typ-at+jwt": {"typ": "at+jwt"},
        "typ-lowercase": {"typ": "jwt"},
        "typ-missing": {"typ": DROP},
        "typ-JWE": {"typ": "JWE"},
        "jwk-oct-attacker-key": {"jwk": {"kty": "oct", "k": b64url(ATTACKER_KEY)}},
        "epk": {"epk": {"kty": "EC", "crv": "P-256"}},
        "iss-in-header": {"iss": "https://auth.test"},
    }
    cases = []
    for name, change in params.items():
        key = ATTACKER_KEY if name.startswith("jwk-") else ACME_SECRET
        cases.append(Case(name, forge(header(**change), key=key), "RFC 8725 §3.10"))
    zipped_head = b64url(json_bytes(header(zip="DEF")))
    cases.append(Case("zip-def-compressed-payload", signed(zipped_head, compressed)))
    cases.append(Case("cty-JWT-nested-token-payload", forge(header(cty="JWT"), nested)))
    return cases


CASES = _kid_cases() + _tenant_crossing() + _unsupported_params()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_token_is_rejected_uniformly(world: World, case: Case) -> None:
    """Each header attack gets the uniform 401 (and inactive introspection)."""
    assert_rejected(world, case.token)


def _url_headers(url: str) -> dict[str, dict[str, Any]]:
    attacker_jwk = {"kty": "oct", "k": b64url(ATTACKER_KEY), "x5u": url}
    return {
        "jku": {"jku": url},
        "x5u": {"x5u": url},
        "jwk-with-x5u": {"jwk": attacker_jwk},
        "jku-and-kid-dropped": {"jku": url, "kid": DROP},
        "x5u-in-crit": {"x5u": url, "crit": ["x5u"]},
    }


@pytest.mark.parametrize("name", list(_url_headers("u")))
@pytest.mark.parametrize("key", ["acme-secret", "attacker-key"])
def test_no_url_in_a_header_is_ever_fetched(
    world: World, listener: Listener, name: str, key: str
) -> None:
    """jku/x5u/jwk.x5u pointing at a live local listener: uniform 401, zero connections."""
    change = _url_headers(listener.url)[name]
    signing_key = ACME_SECRET if key == "acme-secret" else ATTACKER_KEY
    assert_rejected(world, forge(header(**change), key=signing_key))
    assert listener.connections == 0
