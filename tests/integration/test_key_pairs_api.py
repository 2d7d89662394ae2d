"""Key-pair tenants (EdDSA, ES256, RS256) through the admin API, /v1/verify and the JWKS.

On SQLite and on PostgreSQL + Redis: generated and imported keys (PEM and private JWK), the
published JWK Set (its members, its kid, its caching headers), tokens checked both here and
by PyJWT as an offline verifier holding the JWKS, rotation between algorithms with its
offline bound, suspension and deletion, and every refused key as a 422 problem (never a 500).
The tables of key texts (imports, refusals) run on SQLite only: reading a key is the
domain's, before any storage, and a second backend would only double their time in
`make test`. Keys are made here with ``cryptography`` and written as JWKs by PyJWT,
independently of the service's own key code.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    create_tenant,
    issue,
    new_secret,
)
from tests.support import ISSUER, FixedClock

JWK_SET_JSON = "application/jwk-set+json"
VERIFY = "/v1/verify"
KEY_PAIR_ALGS = ("EdDSA", "ES256", "RS256")
JWKS_MAX_AGE = 300
#: RFC 7518 §6.2.2, §6.3.2, §6.4 and RFC 8037 §2: members only a private or secret JWK has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Exactly what each published JWK holds (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
PUBLIC_MEMBERS = {
    "EdDSA": {"kty", "crv", "x", "kid", "alg", "use"},
    "ES256": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "RS256": {"kty", "n", "e", "kid", "alg", "use"},
}
KEY_TYPES = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256"), "RS256": ("RSA", None)}
#: Made once for the module: an RSA key takes tens of milliseconds to generate.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
#: Too small on purpose: the import must refuse it (RFC 7518 §3.3).
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_OTHER = ec.generate_private_key(ec.SECP256R1())
EC_P384 = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ED_OTHER = ed25519.Ed25519PrivateKey.generate()
KEYS: dict[str, Any] = {"EdDSA": ED_KEY, "ES256": EC_KEY, "RS256": RSA_KEY}
OTHER_KEYS: dict[str, Any] = {"EdDSA": ED_OTHER, "ES256": EC_OTHER, "RS256": RSA_OTHER}
#: The forms an operator may import a key in (Ed25519 has no traditional PEM form).
FORMS = [
    (alg, form)
    for alg in KEY_PAIR_ALGS
    for form in ("pkcs8", "traditional", "jwk")
    if (alg, form) != ("EdDSA", "traditional")
]
#: The service's clock is fixed (tests.support.NOW); an offline verifier runs on the real
#: one, so it checks signature, issuer and audience here, not the times.
NO_TIME_CHECKS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
SECRET = new_secret()[1]


def pem(key: Any, form: str = "pkcs8", password: bytes | None = None) -> str:
    """``key`` as PEM: PKCS#8 or the traditional form, encrypted under ``password`` if given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private_format = (
        serialization.PrivateFormat.PKCS8
        if form == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, private_format, encryption).decode()


def public_pem(key: Any) -> str:
    """The public key of ``key`` as SubjectPublicKeyInfo PEM."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_jwk(alg: str, key: Any) -> dict[str, Any]:
    """The private JWK of ``key`` as PyJWT writes it (RSA with its CRT members)."""
    return jwt.algorithms.get_default_algorithms()[alg].to_jwk(key, as_dict=True)


def public_jwk(alg: str, key: Any) -> dict[str, Any]:
    """The public JWK of ``key`` as PyJWT writes it."""
    return private_jwk(alg, key.public_key())


def key_text(alg: str, key: Any, form: str) -> str:
    """``key`` in one import form: ``pkcs8`` or ``traditional`` PEM, or ``jwk`` JSON text."""
    return json.dumps(private_jwk(alg, key)) if form == "jwk" else pem(key, form)


def expected_public(alg: str, key: Any) -> dict[str, Any]:
    """The key-type members the JWKS must publish for ``key`` (x, y, n, e; kty and crv)."""
    members = public_jwk(alg, key)
    return {name: members[name] for name in PUBLIC_MEMBERS[alg] if name in members}


def b64url_uint(value: int) -> str:
    """A JWK integer member (RFC 7518 §2): unpadded base64url of its big-endian bytes."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def at(timestamp: float) -> str:
    """The API's spelling of a fixed-clock time."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def jwks_path(tenant_id: str) -> str:
    """The JWKS path of ``tenant_id``."""
    return f"/v1/tenants/{tenant_id}/.well-known/jwks.json"


def get_jwks(client: FlaskClient, tenant_id: str, **headers: str) -> TestResponse:
    """GET the tenant's JWKS (no authentication: it is public)."""
    return client.get(jwks_path(tenant_id), headers=headers)


def published(client: FlaskClient, tenant_id: str) -> list[dict[str, Any]]:
    """Assert the JWKS answers 200 as a cacheable JWK Set without private members; its keys."""
    r = get_jwks(client, tenant_id)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == JWK_SET_JSON
    assert r.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
    body = json.loads(r.get_data())
    assert body.keys() == {"keys"}
    for jwk in body["keys"]:
        assert not jwk.keys() & PRIVATE_MEMBERS, jwk
    return body["keys"]


def only_key(client: FlaskClient, tenant_id: str, alg: str, kid: str) -> dict[str, Any]:
    """Assert the JWKS holds exactly one public ``alg`` key named ``kid``; return it."""
    keys = published(client, tenant_id)
    assert len(keys) == 1, keys
    (jwk,) = keys
    assert jwk.keys() == PUBLIC_MEMBERS[alg]
    kty, crv = KEY_TYPES[alg]
    assert (jwk["kty"], jwk.get("crv"), jwk["kid"], jwk["alg"], jwk["use"]) == (
        kty,
        crv,
        kid,
        alg,
        "sig",
    )
    return jwk


def assert_pair_kid(tenant_id: str, kid: str) -> None:
    """A key pair's kid: ``<tenant>.<8 characters of [a-z2-7]>``."""
    assert re.fullmatch(rf"{re.escape(tenant_id)}\.[a-z2-7]{{8}}", kid), kid


def verify(client: FlaskClient, token: str, audience: str | None = None) -> TestResponse:
    """POST /v1/verify with ``token`` (and ``audience``) in the body."""
    body = {"token": token} if audience is None else {"token": token, "audience": audience}
    return client.post(VERIFY, json=body)


def offline_decode(
    token: str, jwk: dict[str, Any], issuer: str | None, audience: str = "tenantauth"
) -> Any:
    """Verify ``token`` as an offline verifier would: PyJWT with the JWK from the JWKS, the
    issuer from the tenant's metadata (None: not checked)."""
    key = jwt.PyJWK(jwk)
    return jwt.decode(
        token,
        key.key,
        algorithms=[jwk["alg"]],
        audience=audience,
        issuer=issuer,
        options=NO_TIME_CHECKS,
    )


def metadata_issuer(client: FlaskClient, tenant_id: str) -> str:
    """The ``issuer`` of the tenant's RFC 8414 metadata: what an offline verifier expects
    in ``iss`` (it discovers ``jwks_uri`` in the same document)."""
    r = client.get(f"/v1/tenants/{tenant_id}/.well-known/oauth-authorization-server")
    return assert_json(r, 200)["issuer"]


def show(client: FlaskClient, tenant_id: str) -> Any:
    """The tenant as GET /v1/admin/tenants/{id} shows it."""
    return assert_json(client.get(f"{TENANTS}/{tenant_id}", headers=ADMIN), 200)


def rotate(client: FlaskClient, tenant_id: str, **body: Any) -> TestResponse:
    """POST /v1/admin/tenants/{id}/rotate with ``body``."""
    return client.post(f"{TENANTS}/{tenant_id}/rotate", json=body, headers=ADMIN)


def set_status(client: FlaskClient, tenant_id: str, status: str) -> None:
    """Suspend or resume the tenant."""
    r = client.patch(f"{TENANTS}/{tenant_id}", json={"status": status}, headers=ADMIN)
    assert assert_json(r, 200)["status"] == status


# --------------------------------------------------------------------------- creation


@pytest.mark.parametrize("alg", KEY_PAIR_ALGS)
def test_create_generates_a_key_pair_of_each_alg(
    client: FlaskClient, clock: FixedClock, alg: str
) -> None:
    """Creating with alg and no key generates a pair: 201 with alg and a `<id>.<name>` kid,
    and the JWKS publishes exactly its public key under that kid."""
    created = create_tenant(client, "pairco", alg=alg)
    assert (created["alg"], created["key_version"]) == (alg, 1)
    assert created["rotated_at"] == at(clock.now())
    assert_pair_kid("pairco", created["kid"])
    assert show(client, "pairco") == created
    listed = assert_json(client.get(TENANTS, headers=ADMIN), 200)["items"]
    assert [(t["id"], t["alg"], t["kid"]) for t in listed] == [("pairco", alg, created["kid"])]
    only_key(client, "pairco", alg, created["kid"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("alg", "form"), FORMS, ids=[f"{a}-{f}" for a, f in FORMS])
def test_create_imports_a_private_key(client: FlaskClient, alg: str, form: str) -> None:
    """An imported PEM (PKCS#8 or traditional) or private JWK becomes the tenant's key: the
    JWKS publishes its public members, and tokens verify with the operator's own public key."""
    key = KEYS[alg]
    created = create_tenant(client, "imported", alg=alg, private_key=key_text(alg, key, form))
    assert created["alg"] == alg
    assert_pair_kid("imported", created["kid"])
    jwk = only_key(client, "imported", alg, created["kid"])
    assert {name: jwk[name] for name in expected_public(alg, key)} == expected_public(alg, key)
    token = issue(client, "imported")
    claims = jwt.decode(
        token, key.public_key(), algorithms=[alg], audience="tenantauth", options=NO_TIME_CHECKS
    )
    assert (claims["tid"], claims["sub"]) == ("imported", "user-42")


#: PEM as tools hand it to operators: Windows line ends, the preamble of a PKCS#12 export
#: (`openssl pkcs12 -nocerts -nodes`), the parameters block of `openssl ecparam -genkey`.
OPENSSL_SHAPES = {
    "crlf": pem(EC_KEY).replace("\n", "\r\n"),
    "bag-attributes": "Bag Attributes\n    localKeyID: 01 00 00 00\n" + pem(EC_KEY),
    "ec-parameters": "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
    "-----END EC PARAMETERS-----\n" + pem(EC_KEY, "traditional"),
}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("text", list(OPENSSL_SHAPES.values()), ids=list(OPENSSL_SHAPES))
def test_create_accepts_pem_as_tools_write_it(client: FlaskClient, text: str) -> None:
    """A PEM with CRLF line ends, a Bag Attributes preamble or an EC PARAMETERS block before
    the key imports that key."""
    created = create_tenant(client, "acme", alg="ES256", private_key=text)
    jwk = only_key(client, "acme", "ES256", created["kid"])
    assert {name: jwk[name] for name in ("x", "y")} == {
        name: public_jwk("ES256", EC_KEY)[name] for name in ("x", "y")
    }


def test_hs256_tenants_publish_no_keys(client: FlaskClient) -> None:
    """An HS256 tenant (the default, or named) answers an empty JWK Set: a secret is never
    published, and its kid is the bare tenant id."""
    for tenant_id, body in (("plain", {}), ("named", {"alg": "HS256", "secret": SECRET})):
        created = create_tenant(client, tenant_id, **body)
        assert (created["alg"], created["kid"]) == ("HS256", tenant_id)
        assert published(client, tenant_id) == []


def test_no_response_holds_private_key_material(client: FlaskClient, clock: FixedClock) -> None:
    """No admin, token, verify or JWKS response carries any private member of an imported
    key (JWK d, p, q, ...) or any line of its PEM, nor a member named like one."""
    ec_jwk = private_jwk("ES256", EC_KEY)
    rsa_pem = pem(RSA_OTHER)
    ed_jwk = private_jwk("EdDSA", ED_KEY)
    responses = [
        client.post(
            TENANTS,
            json={"id": "leaky", "name": "L", "alg": "ES256", "private_key": json.dumps(ec_jwk)},
            headers=ADMIN,
        ),
        client.get(TENANTS, headers=ADMIN),
        client.get(f"{TENANTS}/leaky", headers=ADMIN),
        get_jwks(client, "leaky"),
        client.post(f"{TENANTS}/leaky/tokens", json={"sub": "u"}, headers=ADMIN),
        rotate(client, "leaky", alg="RS256", private_key=rsa_pem),
        get_jwks(client, "leaky"),
        rotate(client, "leaky", alg="EdDSA", private_key=json.dumps(ed_jwk)),
        get_jwks(client, "leaky"),
        client.get("/v1/tenants/leaky/.well-known/oauth-authorization-server"),
    ]
    token = issue(client, "leaky")
    responses.append(verify(client, token))
    rsa_jwk = private_jwk("RS256", RSA_OTHER)
    secrets_seen = [
        *(ec_jwk["d"], ed_jwk["d"]),
        *(rsa_jwk[m] for m in ("d", "p", "q", "dp", "dq", "qi")),
        *(line for line in rsa_pem.splitlines() if not line.startswith("-----")),
    ]
    for r in responses:
        assert r.status_code < 300, r.get_data(as_text=True)
        text = r.get_data(as_text=True) + json.dumps(dict(r.headers))
        for needle in secrets_seen:
            assert needle not in text
        assert "PRIVATE KEY" not in text
        assert '"d"' not in text


# --------------------------------------------------------------------------- JWKS caching


def test_jwks_revalidates_with_a_strong_etag(client: FlaskClient) -> None:
    """The JWKS carries a strong ETag; If-None-Match with it (strong or weak form, alone or
    in a list) is a 304 without body or Content-Type that keeps ETag and Cache-Control; any
    other validator gets the 200 again."""
    create_tenant(client, "acme", alg="ES256")
    first = get_jwks(client, "acme")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), etag  # strong: no W/ prefix
    assert get_jwks(client, "acme").headers["ETag"] == etag  # the same set, the same tag
    for validator in (etag, f"W/{etag}", f'"stale", {etag}'):
        r = get_jwks(client, "acme", **{"If-None-Match": validator})
        assert r.status_code == 304, validator
        assert r.get_data() == b""
        assert "Content-Type" not in r.headers
        assert r.headers["ETag"] == etag
        assert r.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
    stale = get_jwks(client, "acme", **{"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.get_data() == first.get_data()


def test_jwks_etag_follows_the_key(client: FlaskClient) -> None:
    """A rotation changes the set and its ETag, so the old validator gets a 200 with the new
    key; an HS256 tenant's empty set revalidates too."""
    create_tenant(client, "acme", alg="EdDSA")
    old = get_jwks(client, "acme").headers["ETag"]
    assert rotate(client, "acme").status_code == 200
    r = get_jwks(client, "acme", **{"If-None-Match": old})
    assert r.status_code == 200
    assert r.headers["ETag"] != old
    create_tenant(client, "plain")
    empty = get_jwks(client, "plain").headers["ETag"]
    assert get_jwks(client, "plain", **{"If-None-Match": empty}).status_code == 304


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("alg", KEY_PAIR_ALGS)
def test_key_pair_token_verifies_here_and_offline(
    client: FlaskClient, clock: FixedClock, alg: str
) -> None:
    """A token of a key-pair tenant names alg and the tenant's kid in its header, is accepted
    by POST /v1/verify, and PyJWT verifies it with the JWK from the JWKS to the same claims."""
    kid = create_tenant(client, "acme", alg=alg)["kid"]
    r = client.post(
        f"{TENANTS}/acme/tokens",
        json={"sub": "user-7", "aud": "orders", "scope": "read", "claims": {"role": "admin"}},
        headers=ADMIN,
    )
    token = assert_json(r, 201)["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": kid, "typ": "JWT"}
    verdict = assert_json(verify(client, token, audience="orders"), 200)
    assert verdict["active"] is True
    claims = verdict["claims"]
    now = int(clock.now())
    assert claims == {
        "iss": metadata_issuer(client, "acme"),
        "sub": "user-7",
        "aud": "orders",
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": claims["jti"],
        "tid": "acme",
        "scope": "read",
        "role": "admin",
    }
    jwk = only_key(client, "acme", alg, kid)
    assert offline_decode(token, jwk, claims["iss"], audience="orders") == claims


# --------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("alg", KEY_PAIR_ALGS)
def test_rotate_replaces_the_published_key(
    client: FlaskClient, clock: FixedClock, alg: str
) -> None:
    """Rotating without alg keeps it and makes a new kid: the old token is 401 at /v1/verify
    at once, the JWKS holds only the new kid (which no longer verifies the old token), and
    offline verifiers may accept the old token until rotated_at + max-age."""
    old_kid = create_tenant(client, "acme", alg=alg)["kid"]
    issuer = metadata_issuer(client, "acme")
    old_jwk = only_key(client, "acme", alg, old_kid)
    old = issue(client, "acme")
    assert verify(client, old).status_code == 200
    clock.advance(30)
    body = assert_json(rotate(client, "acme"), 200)
    new_kid = body["kid"]
    assert_pair_kid("acme", new_kid)
    assert new_kid != old_kid
    rotated_at = clock.now()
    assert body == {
        "id": "acme",
        "key_version": 2,
        "alg": alg,
        "kid": new_kid,
        "rotated_at": at(rotated_at),
        "offline_verifiers_may_accept_until": at(rotated_at + JWKS_MAX_AGE),
    }
    until = datetime.fromisoformat(body["offline_verifiers_may_accept_until"])
    assert until - datetime.fromisoformat(body["rotated_at"]) == timedelta(seconds=JWKS_MAX_AGE)
    assert_problem(verify(client, old), 401, "invalid_token")
    new_jwk = only_key(client, "acme", alg, new_kid)
    assert offline_decode(old, old_jwk, issuer)["tid"] == "acme"  # why the offline bound exists
    with pytest.raises(jwt.InvalidSignatureError):
        offline_decode(old, new_jwk, issuer)
    fresh = issue(client, "acme")
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    assert verify(client, fresh).status_code == 200
    assert offline_decode(fresh, new_jwk, issuer)["tid"] == "acme"
    assert (show(client, "acme")["kid"], show(client, "acme")["key_version"]) == (new_kid, 2)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("alg", "form"), FORMS, ids=[f"{a}-{f}" for a, f in FORMS])
def test_rotate_imports_a_private_key(client: FlaskClient, alg: str, form: str) -> None:
    """Rotating with a private_key (alg absent: the tenant's own) installs that key: the JWKS
    publishes its public members and new tokens verify with the operator's public key."""
    create_tenant(client, "acme", alg=alg)
    key = OTHER_KEYS[alg]
    body = assert_json(rotate(client, "acme", private_key=key_text(alg, key, form)), 200)
    assert (body["alg"], body["key_version"]) == (alg, 2)
    jwk = only_key(client, "acme", alg, body["kid"])
    assert {name: jwk[name] for name in expected_public(alg, key)} == expected_public(alg, key)
    token = issue(client, "acme")
    jwt.decode(
        token, key.public_key(), algorithms=[alg], audience="tenantauth", options=NO_TIME_CHECKS
    )


def test_rotate_hs256_to_es256_and_back(client: FlaskClient, clock: FixedClock) -> None:
    """HS256 -> ES256 publishes a key (no offline bound: the secret was never published);
    ES256 -> HS256 empties the JWKS (offline bound rotated_at + max-age); each rotation
    rejects the previous tokens, and a rotation without alg keeps HS256."""
    create_tenant(client, "acme")
    issuer = metadata_issuer(client, "acme")
    hs_token = issue(client, "acme")
    assert published(client, "acme") == []
    clock.advance(10)
    to_es = assert_json(rotate(client, "acme", alg="ES256"), 200)
    assert (to_es["alg"], to_es["key_version"]) == ("ES256", 2)
    assert to_es["offline_verifiers_may_accept_until"] is None
    assert_pair_kid("acme", to_es["kid"])
    jwk = only_key(client, "acme", "ES256", to_es["kid"])
    assert verify(client, hs_token).status_code == 401
    es_token = issue(client, "acme")
    assert jwt.get_unverified_header(es_token)["alg"] == "ES256"
    assert offline_decode(es_token, jwk, issuer)["tid"] == "acme"
    clock.advance(10)
    to_hs = assert_json(rotate(client, "acme", alg="HS256", secret=SECRET), 200)
    assert (to_hs["alg"], to_hs["kid"], to_hs["key_version"]) == ("HS256", "acme", 3)
    assert to_hs["offline_verifiers_may_accept_until"] == at(clock.now() + JWKS_MAX_AGE)
    assert published(client, "acme") == []
    assert verify(client, es_token).status_code == 401
    hs_again = issue(client, "acme")
    assert jwt.get_unverified_header(hs_again) == {"alg": "HS256", "typ": "JWT", "kid": "acme"}
    assert verify(client, hs_again).status_code == 200
    kept = assert_json(rotate(client, "acme"), 200)
    assert (kept["alg"], kept["kid"], kept["offline_verifiers_may_accept_until"]) == (
        "HS256",
        "acme",
        None,
    )


def test_rotate_between_key_pair_algs(client: FlaskClient, clock: FixedClock) -> None:
    """EdDSA -> RS256 (imported) -> ES256 (generated): each JWKS holds only the new key of
    the new type, each rotation is bounded for offline verifiers and rejects older tokens."""
    tokens = []
    kid = create_tenant(client, "acme", alg="EdDSA")["kid"]
    issuer = metadata_issuer(client, "acme")
    tokens.append(issue(client, "acme"))
    for alg, body in (("RS256", {"private_key": pem(RSA_OTHER)}), ("ES256", {})):
        clock.advance(5)
        rotated = assert_json(rotate(client, "acme", alg=alg, **body), 200)
        assert rotated["alg"] == alg
        assert rotated["kid"] != kid
        kid = rotated["kid"]
        assert rotated["offline_verifiers_may_accept_until"] == at(clock.now() + JWKS_MAX_AGE)
        jwk = only_key(client, "acme", alg, kid)
        assert all(verify(client, t).status_code == 401 for t in tokens)
        tokens.append(issue(client, "acme"))
        assert offline_decode(tokens[-1], jwk, issuer)["tid"] == "acme"
        assert verify(client, tokens[-1]).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("alg", "form"), FORMS, ids=[f"{a}-{f}" for a, f in FORMS])
def test_rotating_to_the_current_key_is_a_conflict(
    client: FlaskClient, alg: str, form: str
) -> None:
    """Importing the current private key again (in any form: PEM, traditional PEM, JWK) is a
    409 that changes nothing: the same kid stays published and old tokens stay valid."""
    key = KEYS[alg]
    created = create_tenant(client, "acme", alg=alg, private_key=pem(key))
    token = issue(client, "acme")
    for body in ({"private_key": key_text(alg, key, form)}, {"alg": alg, "private_key": pem(key)}):
        r = rotate(client, "acme", **body)
        assert "revoke nothing" in assert_problem(r, 409, "conflict")["detail"]
    assert show(client, "acme") == created
    only_key(client, "acme", alg, created["kid"])
    assert verify(client, token).status_code == 200


# --------------------------------------------------------------------------- lifecycle


def test_suspend_withdraws_the_key_and_resume_restores_it(client: FlaskClient) -> None:
    """A suspended key-pair tenant publishes no key (and a new ETag); resumed, the same key
    under the same kid and ETag is back."""
    kid = create_tenant(client, "acme", alg="RS256", private_key=pem(RSA_KEY))["kid"]
    before = get_jwks(client, "acme")
    jwk = only_key(client, "acme", "RS256", kid)
    set_status(client, "acme", "suspended")
    assert published(client, "acme") == []
    assert get_jwks(client, "acme").headers["ETag"] != before.headers["ETag"]
    set_status(client, "acme", "active")
    assert only_key(client, "acme", "RS256", kid) == jwk
    assert get_jwks(client, "acme").headers["ETag"] == before.headers["ETag"]


def test_deleted_and_unknown_tenants_have_no_jwks(client: FlaskClient) -> None:
    """The JWKS of a deleted, unknown or impossible tenant id is a 404 problem; the id
    created again publishes its new key (HS256: none) under a new kid."""
    kid = create_tenant(client, "acme", alg="ES256")["kid"]
    only_key(client, "acme", "ES256", kid)
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    for tenant_id in ("acme", "nobody", "ACME", "a"):
        assert_problem(get_jwks(client, tenant_id), 404, "not_found")
    create_tenant(client, "acme")
    assert published(client, "acme") == []
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    again = create_tenant(client, "acme", alg="ES256", private_key=pem(EC_OTHER))
    assert again["kid"] != kid
    only_key(client, "acme", "ES256", again["kid"])


def test_metadata_names_the_jwks_uri(client: FlaskClient) -> None:
    """The tenant's RFC 8414 metadata carries jwks_uri: the issuer's JWKS path, which serves
    the tenant's JWK Set."""
    kid = create_tenant(client, "acme", alg="EdDSA")["kid"]
    r = client.get("/v1/tenants/acme/.well-known/oauth-authorization-server")
    metadata = assert_json(r, 200)
    assert metadata["jwks_uri"] == f"{ISSUER}{jwks_path('acme')}"
    assert metadata["jwks_uri"] == f"{metadata['issuer']}/.well-known/jwks.json"
    only_key(client, "acme", "EdDSA", kid)


# --------------------------------------------------------------------------- refusals

_ED_JWK = private_jwk("EdDSA", ED_KEY)
_EC_JWK = private_jwk("ES256", EC_KEY)
_RSA_JWK = private_jwk("RS256", RSA_KEY)
_OVERSIZED_RSA_JWK = {
    "kty": "RSA",
    "n": b64url_uint((1 << 9000) | 1),
    "e": "AQAB",
    "d": _RSA_JWK["d"],
}
_GARBAGE_PEM = "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n"
_NON_ASCII_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\u00e9\n-----END PRIVATE KEY-----\n"
)
#: (case, body of create and rotate, a fragment the problem must hold).
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("alg-unknown", {"alg": "HS512"}, "alg"),
    ("alg-none", {"alg": "none"}, "alg"),
    ("alg-lowercase", {"alg": "es256"}, "alg"),
    ("alg-ed448", {"alg": "Ed448"}, "alg"),
    ("alg-null", {"alg": None}, "alg"),
    ("secret-with-eddsa", {"alg": "EdDSA", "secret": SECRET}, "secret is for HS256"),
    ("secret-with-es256", {"alg": "ES256", "secret": SECRET}, "secret is for HS256"),
    ("secret-with-rs256", {"alg": "RS256", "secret": SECRET}, "secret is for HS256"),
    ("private-key-without-alg", {"private_key": pem(ED_KEY)}, "needs a key-pair alg"),
    ("private-key-with-hs256", {"alg": "HS256", "private_key": pem(EC_KEY)}, "key-pair alg"),
    (
        "secret-and-private-key",
        {"alg": "ES256", "secret": SECRET, "private_key": pem(EC_KEY)},
        "not both",
    ),
    (
        "secret-and-private-key-hs256",
        {"alg": "HS256", "secret": SECRET, "private_key": pem(EC_KEY)},
        "not both",
    ),
    ("rsa-1024-pem", {"alg": "RS256", "private_key": pem(RSA_1024)}, "2048"),
    (
        "rsa-1024-traditional",
        {"alg": "RS256", "private_key": pem(RSA_1024, "traditional")},
        "2048",
    ),
    (
        "rsa-1024-jwk",
        {"alg": "RS256", "private_key": json.dumps(private_jwk("RS256", RSA_1024))},
        "2048",
    ),
    (
        "rsa-over-8192-jwk",
        {"alg": "RS256", "private_key": json.dumps(_OVERSIZED_RSA_JWK)},
        "8192",
    ),
    ("public-pem-ec", {"alg": "ES256", "private_key": public_pem(EC_KEY)}, "private key"),
    ("public-pem-rsa", {"alg": "RS256", "private_key": public_pem(RSA_KEY)}, "private key"),
    ("public-pem-ed", {"alg": "EdDSA", "private_key": public_pem(ED_KEY)}, "private key"),
    (
        "public-jwk-ed",
        {"alg": "EdDSA", "private_key": json.dumps(public_jwk("EdDSA", ED_KEY))},
        "public key cannot sign",
    ),
    (
        "public-jwk-rsa",
        {"alg": "RS256", "private_key": json.dumps(public_jwk("RS256", RSA_KEY))},
        "public key cannot sign",
    ),
    (
        "encrypted-pkcs8",
        {"alg": "ES256", "private_key": pem(EC_KEY, password=b"hunter22")},
        "encrypted",
    ),
    (
        "encrypted-traditional",
        {"alg": "RS256", "private_key": pem(RSA_KEY, "traditional", password=b"hunter22")},
        "encrypted",
    ),
    ("ed25519-as-es256", {"alg": "ES256", "private_key": pem(ED_KEY)}, "not an ES256"),
    ("p384-as-es256", {"alg": "ES256", "private_key": pem(EC_P384)}, "not an ES256"),
    (
        "p384-jwk-as-es256",
        {"alg": "ES256", "private_key": json.dumps(private_jwk("ES256", EC_P384))},
        "P-256",
    ),
    ("rsa-as-eddsa", {"alg": "EdDSA", "private_key": pem(RSA_KEY)}, "not an EdDSA"),
    ("ec-as-rs256", {"alg": "RS256", "private_key": pem(EC_KEY)}, "not an RS256"),
    ("ec-jwk-as-eddsa", {"alg": "EdDSA", "private_key": json.dumps(_EC_JWK)}, "not an EdDSA"),
    (
        "ed448-as-eddsa",
        {"alg": "EdDSA", "private_key": pem(ed448.Ed448PrivateKey.generate())},
        "not an EdDSA",
    ),
    (
        "x25519-as-eddsa",
        {"alg": "EdDSA", "private_key": pem(x25519.X25519PrivateKey.generate())},
        "not an EdDSA",
    ),
    (
        "jwk-okp-x-mismatch",
        {
            "alg": "EdDSA",
            "private_key": json.dumps({**_ED_JWK, "x": public_jwk("EdDSA", ED_OTHER)["x"]}),
        },
        "x does not belong",
    ),
    (
        "jwk-ec-y-mismatch",
        {
            "alg": "ES256",
            "private_key": json.dumps({**_EC_JWK, "y": public_jwk("ES256", EC_OTHER)["y"]}),
        },
        "y does not belong",
    ),
    (
        "jwk-rsa-n-mismatch",
        {
            "alg": "RS256",
            "private_key": json.dumps({**_RSA_JWK, "n": public_jwk("RS256", RSA_OTHER)["n"]}),
        },
        "not a valid RSA private key",
    ),
    ("jwk-not-json", {"alg": "ES256", "private_key": '{"kty": "EC",'}, "not JSON"),
    ("jwk-in-an-array", {"alg": "EdDSA", "private_key": json.dumps([_ED_JWK])}, "PEM"),
    (
        "jwk-kty-oct",
        {"alg": "ES256", "private_key": json.dumps({"kty": "oct", "k": "AAAA", "d": "AAAA"})},
        "kty",
    ),
    (
        "jwk-d-padded",
        {"alg": "EdDSA", "private_key": json.dumps({**_ED_JWK, "d": _ED_JWK["d"] + "="})},
        "base64url",
    ),
    (
        "jwk-d-not-a-string",
        {"alg": "ES256", "private_key": json.dumps({**_EC_JWK, "d": 12345})},
        "not a string",
    ),
    ("pem-garbage", {"alg": "ES256", "private_key": _GARBAGE_PEM}, "cannot be read"),
    ("pem-non-ascii", {"alg": "EdDSA", "private_key": _NON_ASCII_PEM}, "cannot be read"),
    ("private-key-empty", {"alg": "ES256", "private_key": ""}, "private_key"),
    ("private-key-oversized", {"alg": "RS256", "private_key": "x" * 16_385}, "at most 16384"),
    ("private-key-null", {"alg": "ES256", "private_key": None}, "private_key"),
    ("private-key-object", {"alg": "ES256", "private_key": _EC_JWK}, "private_key"),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "fragment"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_a_refused_key_is_a_422_on_create_and_rotate(
    client: FlaskClient, body: dict[str, Any], fragment: str
) -> None:
    """Each refused alg or key is a 422 problem naming what is wrong (never a 500, never
    echoing the key) on creation, which creates nothing, and on rotation of an HS256
    tenant, which changes nothing."""
    acme = create_tenant(client, "acme")
    token = issue(client, "acme")
    refused = [
        client.post(TENANTS, json={"id": "newco", "name": "N", **body}, headers=ADMIN),
        rotate(client, "acme", **body),
    ]
    for r in refused:
        problem = assert_problem(r, 422, "invalid_request")
        assert fragment in json.dumps(problem), problem
        key = body.get("private_key")
        if isinstance(key, str) and len(key) > 40:
            text = r.get_data(as_text=True)
            assert not any(len(line) > 8 and line in text for line in key.splitlines())
    assert_problem(client.get(f"{TENANTS}/newco", headers=ADMIN), 404, "not_found")
    assert show(client, "acme") == acme
    assert published(client, "acme") == []
    assert verify(client, token).status_code == 200


def test_rotating_a_key_pair_tenant_refuses_the_wrong_material(client: FlaskClient) -> None:
    """An ES256 tenant's rotation without alg keeps ES256, so a secret, or a key of another
    type, is a 422; so is a private_key with alg HS256. The published key stays."""
    kid = create_tenant(client, "acme", alg="ES256")["kid"]
    for body, fragment in (
        ({"secret": SECRET}, "secret is for HS256"),
        ({"private_key": pem(ED_KEY)}, "not an ES256"),
        ({"private_key": json.dumps(_RSA_JWK)}, "not an ES256"),
        ({"private_key": pem(EC_P384)}, "not an ES256"),
        ({"alg": "HS256", "private_key": pem(EC_KEY)}, "key-pair alg"),
        ({"alg": "RS256", "private_key": pem(RSA_1024)}, "2048"),
    ):
        problem = assert_problem(rotate(client, "acme", **body), 422, "invalid_request")
        assert fragment in problem["detail"], problem
    assert show(client, "acme")["key_version"] == 1
    only_key(client, "acme", "ES256", kid)


#: A private_key text of valid JSON nested 5,000 levels deep (10 kB, under the 16,384-character
#: bound): the request body itself is only two levels deep.
DEEP_JWK = '{"kty": "EC", "crv": "P-256", "d": ' + "[" * 5000 + "]" * 5000 + "}"


def test_a_deeply_nested_jwk_is_a_422_about_the_key(client: FlaskClient) -> None:
    """A private_key that is JSON nested thousands of levels deep is refused like any other
    unreadable JWK: a 422 problem about the key, on creation and on rotation."""
    create_tenant(client, "acme", alg="ES256")
    for r in (
        client.post(
            TENANTS,
            json={"id": "newco", "name": "N", "alg": "ES256", "private_key": DEEP_JWK},
            headers=ADMIN,
        ),
        rotate(client, "acme", private_key=DEEP_JWK),
    ):
        assert "JWK" in assert_problem(r, 422, "invalid_request")["detail"]
    assert_problem(client.get(f"{TENANTS}/newco", headers=ADMIN), 404, "not_found")
