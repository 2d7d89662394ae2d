"""`tenantauth tenant create/rotate/jwks` with key pairs (--alg, --private-key-file): embedded
mode (SQLite), and a lifecycle on PostgreSQL + Redis."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from tenantauth.cli import main
from tests.integration.test_cli import (  # noqa: F401 - embedded and production are fixtures
    assert_clean_error,
    embedded,
    ok,
    ok_json,
    production,
    run,
)
from tests.integration.test_key_pairs_api import (
    EC_KEY,
    EC_P384,
    ED_KEY,
    ED_OTHER,
    JWKS_MAX_AGE,
    KEYS,
    NO_TIME_CHECKS,
    OTHER_KEYS,
    PRIVATE_MEMBERS,
    PUBLIC_MEMBERS,
    RSA_1024,
    RSA_KEY,
    assert_pair_kid,
    expected_public,
    key_text,
    offline_decode,
    pem,
    private_jwk,
    public_jwk,
    public_pem,
)

TENANT_COLUMNS = ["id", "name", "status", "alg", "kid", "key_version", "rotated_at"]
OFFLINE_LINE = re.compile(r"offline verifiers holding its JWKS may accept them until (\S+)")
#: --private-key-file reading standard input.
FROM_STDIN = ("--private-key-file", "-")


def create_args(tenant_id: str, *options: str) -> list[str]:
    """The arguments of `tenant create TENANT_ID --name ...` with ``options``."""
    return ["tenant", "create", tenant_id, "--name", tenant_id.title(), *options]


def write_key(tmp_path: Path, text: str | bytes, name: str = "key.pem") -> str:
    """Write a key file for --private-key-file and return its path."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def jwks(tenant_id: str) -> list[dict[str, Any]]:
    """The keys `tenant jwks` prints, asserting none has a private member."""
    printed = json.loads(ok("tenant", "jwks", tenant_id).stdout)
    assert printed.keys() == {"keys"}
    for jwk in printed["keys"]:
        assert not jwk.keys() & PRIVATE_MEMBERS, jwk
    return printed["keys"]


def only_key(tenant_id: str, alg: str, kid: str) -> dict[str, Any]:
    """Assert `tenant jwks` prints exactly one public ``alg`` key named ``kid``; return it."""
    keys = jwks(tenant_id)
    assert len(keys) == 1, keys
    (jwk,) = keys
    assert jwk.keys() == PUBLIC_MEMBERS[alg]
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (kid, alg, "sig")
    return jwk


def rows(result: Result) -> dict[str, str]:
    """The field/value table `tenant show/create/rotate` prints, as a dict."""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["field", "value"]
    return dict(line.split(None, 1) for line in lines[1:])


def refused(*args: str, input: str | bytes | None = None) -> Result:
    """Invoke `tenantauth ARGS`, asserting no exception escaped the command (an escaped one
    is a traceback for the operator); return the result for its exit status and output."""
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def key_version(tenant_id: str) -> int:
    """The tenant's key version as `tenant show --json` reports it."""
    return ok_json("tenant", "show", tenant_id)["key_version"]


# --------------------------------------------------------------------------- create


@pytest.mark.usefixtures("embedded")
def test_create_with_alg_shows_alg_and_kid() -> None:
    """create --alg makes a key pair: --json, the table, the summary line, list and show all
    give the alg and the `<id>.<name>` kid; an HS256 tenant's kid is its id."""
    created = ok_json("tenant", "create", "edco", "--name", "Ed", "--alg", "EdDSA")
    assert (created["alg"], created["key_version"]) == ("EdDSA", 1)
    assert_pair_kid("edco", created["kid"])
    human = ok("tenant", "create", "esco", "--name", "Es", "--alg", "ES256")
    shown = rows(human)
    assert shown["alg"] == "ES256"
    assert_pair_kid("esco", shown["kid"])
    assert human.stderr.strip() == f"created tenant esco (ES256, kid {shown['kid']})"
    plain = ok("tenant", "create", "plain", "--name", "Plain")
    assert plain.stderr.strip() == "created tenant plain (HS256, kid plain)"
    assert (rows(plain)["alg"], rows(plain)["kid"]) == ("HS256", "plain")
    listing = ok("tenant", "list")
    lines = listing.stdout.splitlines()
    assert lines[0].split() == TENANT_COLUMNS
    listed = {line.split()[0]: line.split()[3:5] for line in lines[1:]}
    assert listed == {
        "edco": ["EdDSA", created["kid"]],
        "esco": ["ES256", shown["kid"]],
        "plain": ["HS256", "plain"],
    }
    items = ok_json("tenant", "list")["items"]
    assert [(t["id"], t["alg"], t["kid"]) for t in items] == [
        ("edco", "EdDSA", created["kid"]),
        ("esco", "ES256", shown["kid"]),
        ("plain", "HS256", "plain"),
    ]
    assert ok_json("tenant", "show", "edco") == created


@pytest.mark.usefixtures("embedded")
@pytest.mark.parametrize("alg", sorted(KEYS))
@pytest.mark.parametrize("form", ["pkcs8", "jwk"])
def test_create_imports_a_key_file(tmp_path: Path, alg: str, form: str) -> None:
    """create --private-key-file PATH imports a PEM or JWK key: `tenant jwks` prints its public
    members under the tenant's kid, tokens verify with the operator's public key, and no
    output holds the private key."""
    key = KEYS[alg]
    text = key_text(alg, key, form)
    path = write_key(tmp_path, text)
    result = ok("tenant", "create", "acme", "--name", "A", "--alg", alg, "--private-key-file", path)
    kid = rows(result)["kid"]
    assert_pair_kid("acme", kid)
    jwk = only_key("acme", alg, kid)
    assert {name: jwk[name] for name in expected_public(alg, key)} == expected_public(alg, key)
    token = ok("token", "issue", "acme", "--sub", "u").stdout.strip()
    claims = jwt.decode(
        token, key.public_key(), algorithms=[alg], audience="tenantauth", options=NO_TIME_CHECKS
    )
    assert claims["tid"] == "acme"
    assert offline_decode(token, jwk, None)["sub"] == "u"
    private = private_jwk(alg, key)["d"]
    for output in (result.output, ok("tenant", "show", "acme").output, json.dumps(jwks("acme"))):
        assert private not in output
        assert "PRIVATE KEY" not in output


@pytest.mark.usefixtures("embedded")
def test_create_reads_the_key_from_stdin() -> None:
    """--private-key-file - reads the key (PEM or JWK) from standard input."""
    created = ok(*create_args("esco", "--alg", "ES256", *FROM_STDIN), input=pem(EC_KEY))
    jwk = only_key("esco", "ES256", rows(created)["kid"])
    assert (jwk["x"], jwk["y"]) == (
        public_jwk("ES256", EC_KEY)["x"],
        public_jwk("ES256", EC_KEY)["y"],
    )
    rs = ok(
        *create_args("rsco", "--alg", "RS256", *FROM_STDIN, "--json"),
        input=json.dumps(private_jwk("RS256", RSA_KEY)),
    )
    kid = json.loads(rs.stdout)["kid"]
    assert only_key("rsco", "RS256", kid)["n"] == public_jwk("RS256", RSA_KEY)["n"]


# --------------------------------------------------------------------------- rotate


@pytest.mark.usefixtures("embedded")
def test_rotate_says_until_when_offline_verifiers_may_accept_old_tokens() -> None:
    """rotate --alg switches algorithms and rejects the old tokens; its stderr names the
    offline bound (rotated_at + JWKS max-age) only when the old key was a published pair."""
    ok("tenant", "create", "acme", "--name", "Acme")
    hs_token = ok("token", "issue", "acme", "--sub", "u").stdout.strip()
    to_es = ok("tenant", "rotate", "acme", "--alg", "ES256")
    es_kid = rows(to_es)["kid"]
    assert_pair_kid("acme", es_kid)
    assert rows(to_es)["alg"] == "ES256"
    assert to_es.stderr.strip() == (
        f"rotated acme: key version 2, ES256, kid {es_kid}; all earlier tokens are now "
        "rejected by this service"
    )
    assert run("token", "verify", hs_token).exit_code == 1
    es_token = ok("token", "issue", "acme", "--sub", "u").stdout.strip()
    assert jwt.get_unverified_header(es_token)["kid"] == es_kid
    assert ok("token", "verify", es_token).stdout.startswith("VALID")
    kept = ok("tenant", "rotate", "acme")
    assert rows(kept)["alg"] == "ES256"
    assert rows(kept)["kid"] not in (es_kid, "acme")
    until = OFFLINE_LINE.search(kept.stderr)
    assert until is not None, kept.stderr
    rotated_at = datetime.fromisoformat(ok_json("tenant", "show", "acme")["rotated_at"])
    assert datetime.fromisoformat(until.group(1)) == rotated_at + timedelta(seconds=JWKS_MAX_AGE)
    assert run("token", "verify", es_token).stdout.startswith("INVALID")
    to_hs = ok("tenant", "rotate", "acme", "--alg", "HS256")
    assert (rows(to_hs)["alg"], rows(to_hs)["kid"]) == ("HS256", "acme")
    assert OFFLINE_LINE.search(to_hs.stderr), to_hs.stderr
    assert jwks("acme") == []
    again = ok("tenant", "rotate", "acme")
    assert "offline" not in again.stderr
    as_json = ok_json("tenant", "rotate", "acme", "--alg", "EdDSA")
    assert (as_json["alg"], as_json["key_version"]) == ("EdDSA", 6)
    only_key("acme", "EdDSA", as_json["kid"])


@pytest.mark.usefixtures("embedded")
@pytest.mark.parametrize("alg", sorted(KEYS))
def test_rotate_imports_a_key_file(tmp_path: Path, alg: str) -> None:
    """rotate --private-key-file (no --alg: the tenant's own) installs that key; the same key
    again is a clean error that revokes nothing."""
    ok("tenant", "create", "acme", "--name", "A", "--alg", alg)
    key = OTHER_KEYS[alg]
    path = write_key(tmp_path, pem(key))
    rotated = ok_json("tenant", "rotate", "acme", "--private-key-file", path)
    assert (rotated["alg"], rotated["key_version"]) == (alg, 2)
    jwk = only_key("acme", alg, rotated["kid"])
    assert {name: jwk[name] for name in expected_public(alg, key)} == expected_public(alg, key)
    same = write_key(tmp_path, key_text(alg, key, "jwk"), "same.jwk")
    assert_clean_error(refused("tenant", "rotate", "acme", "--private-key-file", same), "revoke")
    assert key_version("acme") == 2


# --------------------------------------------------------------------------- jwks


@pytest.mark.usefixtures("embedded")
def test_jwks_prints_the_set() -> None:
    """`tenant jwks` prints the JWK Set: one public key for an active key-pair tenant (which
    verifies its tokens offline), none for HS256 or while suspended; an unknown or deleted
    tenant is a clean error."""
    kid = ok_json("tenant", "create", "acme", "--name", "A", "--alg", "RS256")["kid"]
    jwk = only_key("acme", "RS256", kid)
    token = ok("token", "issue", "acme", "--sub", "u", "--aud", "orders").stdout.strip()
    assert offline_decode(token, jwk, None, audience="orders")["tid"] == "acme"
    printed = ok("tenant", "jwks", "acme").stdout
    assert json.loads(printed) == {"keys": [jwk]}
    ok("tenant", "create", "plain", "--name", "P")
    assert jwks("plain") == []
    ok("tenant", "suspend", "acme")
    assert jwks("acme") == []
    ok("tenant", "resume", "acme")
    assert only_key("acme", "RS256", kid) == jwk
    assert_clean_error(refused("tenant", "jwks", "ghost"), "'ghost' does not exist")
    ok("tenant", "delete", "acme", "--yes")
    assert_clean_error(refused("tenant", "jwks", "acme"), "'acme' does not exist")


# --------------------------------------------------------------------------- refusals

_ED_JWK = private_jwk("EdDSA", ED_KEY)
#: (case, --alg or None, the key file's text, a fragment of the error line).
BAD_KEYS: list[tuple[str, str | None, str, str]] = [
    ("rsa-1024", "RS256", pem(RSA_1024), "2048"),
    ("public-key", "ES256", public_pem(EC_KEY), "private key"),
    ("encrypted", "ES256", pem(EC_KEY, password=b"hunter22"), "encrypted"),
    ("ed25519-as-es256", "ES256", pem(ED_KEY), "not an ES256"),
    ("p384-as-es256", "ES256", pem(EC_P384), "not an ES256"),
    ("rsa-as-eddsa", "EdDSA", pem(RSA_KEY), "not an EdDSA"),
    ("no-alg", None, pem(ED_KEY), "needs a key-pair alg"),
    ("hs256", "HS256", pem(EC_KEY), "key-pair alg"),
    (
        "jwk-x-mismatch",
        "EdDSA",
        json.dumps({**_ED_JWK, "x": public_jwk("EdDSA", ED_OTHER)["x"]}),
        "x does not belong",
    ),
    ("public-jwk", "EdDSA", json.dumps(public_jwk("EdDSA", ED_KEY)), "public key cannot sign"),
    ("not-json", "EdDSA", '{"kty": ', "not JSON"),
    (
        "garbage-pem",
        "ES256",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "read",
    ),
    ("empty", "ES256", "", "PEM private key"),
    ("oversized", "RS256", "x" * 20_000, "at most 16384"),
]


@pytest.mark.usefixtures("embedded")
@pytest.mark.parametrize(
    ("alg", "text", "fragment"), [c[1:] for c in BAD_KEYS], ids=[c[0] for c in BAD_KEYS]
)
def test_a_bad_key_is_a_clean_error(
    tmp_path: Path, alg: str | None, text: str, fragment: str
) -> None:
    """A refused key file is exit 1 with one `error:` line naming the problem (no traceback):
    create makes nothing, rotate changes nothing."""
    path = write_key(tmp_path, text)
    alg_args = ["--alg", alg] if alg else []
    created = refused(*create_args("newco", *alg_args, "--private-key-file", path))
    assert_clean_error(created, fragment)
    ok("tenant", "create", "acme", "--name", "A")
    rotated = refused("tenant", "rotate", "acme", *alg_args, "--private-key-file", path)
    assert_clean_error(rotated, fragment)
    assert [t["id"] for t in ok_json("tenant", "list")["items"]] == ["acme"]
    assert key_version("acme") == 1
    if len(text) > 40:  # the key never comes back in an error
        assert not any(len(line) > 8 and line in created.output for line in text.splitlines())


@pytest.mark.usefixtures("embedded")
def test_usage_mistakes_are_clean_usage_errors(tmp_path: Path) -> None:
    """A missing key file or an unknown --alg is click's usage error (exit 2), no traceback."""
    absent = str(tmp_path / "absent.pem")
    missing = refused(*create_args("acme", "--alg", "ES256", "--private-key-file", absent))
    assert missing.exit_code == 2
    assert "--private-key-file" in missing.stderr
    unknown = refused("tenant", "create", "acme", "--name", "A", "--alg", "HS512")
    assert unknown.exit_code == 2
    assert "--alg" in unknown.stderr
    assert ok_json("tenant", "list")["items"] == []


@pytest.mark.usefixtures("embedded")
def test_a_der_key_file_is_a_clean_error(tmp_path: Path) -> None:
    """A DER (binary) private key file is refused with an `error:` line, not a traceback."""
    der = EC_KEY.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = write_key(tmp_path, der, "key.der")
    result = refused(*create_args("acme", "--alg", "ES256", "--private-key-file", path))
    assert_clean_error(result)


@pytest.mark.usefixtures("embedded")
def test_a_deeply_nested_jwk_file_is_a_clean_error(tmp_path: Path) -> None:
    """A key file of JSON nested thousands of levels deep is an `error:` line, not a
    traceback."""
    path = write_key(tmp_path, '{"kty": "EC", "d": ' + "[" * 5000 + "]" * 5000 + "}")
    result = refused(*create_args("acme", "--alg", "ES256", "--private-key-file", path))
    assert_clean_error(result, "JWK")


# --------------------------------------------------------------------------- production mode


@pytest.mark.usefixtures("production")
def test_production_key_pair_lifecycle() -> None:
    """On PostgreSQL + Redis: create RS256 from stdin, issue and verify, print the JWKS, rotate
    to EdDSA (offline bound printed): the old token is INVALID, the JWKS holds the new key."""
    created = ok(*create_args("acme", "--alg", "RS256", *FROM_STDIN, "--json"), input=pem(RSA_KEY))
    kid = json.loads(created.stdout)["kid"]
    jwk = only_key("acme", "RS256", kid)
    assert (jwk["n"], jwk["e"]) == (
        public_jwk("RS256", RSA_KEY)["n"],
        public_jwk("RS256", RSA_KEY)["e"],
    )
    token = ok("token", "issue", "acme", "--sub", "user-9").stdout.strip()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": kid, "typ": "JWT"}
    assert ok("token", "verify", token).stdout.startswith("VALID: tenant acme, subject user-9")
    assert offline_decode(token, jwk, None)["sub"] == "user-9"
    rotated = ok("tenant", "rotate", "acme", "--alg", "EdDSA")
    assert OFFLINE_LINE.search(rotated.stderr), rotated.stderr
    assert run("token", "verify", token).stdout.startswith("INVALID")
    only_key("acme", "EdDSA", rows(rotated)["kid"])
