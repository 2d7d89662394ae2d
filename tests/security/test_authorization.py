"""How the bearer token may arrive: Authorization header variants and several methods at once.

Rules (RFC 6750 §2.1 and §3.1, RFC 9110 §11.1 and §5.3), as docs/security.md states them:
the scheme is case-insensitive and followed by one or more spaces. On the gateway endpoint
``GET /v1/verify`` everything that cannot be accepted — a header that is no Bearer credential,
two credentials, a token in the query, a bad token — is the one uniform 401 ``invalid_token``
(nginx ``auth_request`` turns any other 4xx into a 500). On the JSON ``POST`` a token sent by
more than one method is a 400 ``invalid_request`` (RFC 6750 §3.1).
"""

from __future__ import annotations

import base64

import pytest

from tests.integration.helpers import assert_problem
from tests.security.forge import forge
from tests.security.probe import INVALID_TOKEN_CHALLENGE, REQUEST_ID, World

VALID = forge()
BAD = forge(key=b"\x04" * 32)
ACCEPTED_HEADERS = {
    "canonical": f"Bearer {VALID}",
    "lowercase-scheme": f"bearer {VALID}",
    "uppercase-scheme": f"BEARER {VALID}",
    "mixed-case-scheme": f"bEaReR {VALID}",
    "two-spaces": f"Bearer  {VALID}",
    "ten-spaces": f"Bearer{' ' * 10}{VALID}",
    # RFC 9110 §5.5: whitespace around a field value is not part of it.
    "outer-spaces": f"  Bearer {VALID}  ",
    "outer-tabs": f"\tBearer {VALID}\t",
}
UNAUTHENTICATED_HEADERS = {
    "scheme-only": "Bearer",
    "scheme-and-space": "Bearer ",
    "no-space": f"Bearer{VALID}",
    "tab": f"Bearer\t{VALID}",
    "basic-with-token": "Basic " + base64.b64encode(VALID.encode()).decode(),
    "basic-user-password": "Basic dXNlcjpwYXNzd29yZA==",
    "token-scheme": f"Token {VALID}",
    "jwt-scheme": f"JWT {VALID}",
    "bare-token": VALID,
    "two-tokens-space": f"Bearer {VALID} {VALID}",
    "bearer-bearer": f"Bearer Bearer {VALID}",
    "quoted-token": f'Bearer "{VALID}"',
    "auth-param-form": f'Bearer token="{VALID}"',
    "empty": "",
}
TWO_CREDENTIAL_HEADERS = {
    "comma-joined": f"Bearer {VALID}, Bearer {VALID}",
    "comma-after-token": f"Bearer {VALID},",
    "bearer-and-basic": f"Bearer {VALID}, Basic dXNlcjpwYXNzd29yZA==",
}


@pytest.mark.parametrize("value", ACCEPTED_HEADERS.values(), ids=ACCEPTED_HEADERS.keys())
def test_bearer_spellings_that_are_accepted(world: World, value: str) -> None:
    """RFC 6750 §2.1 / RFC 9110 §11.1: any scheme case, one or more spaces."""
    assert world.get(value).status_code == 200


@pytest.mark.parametrize(
    "value", UNAUTHENTICATED_HEADERS.values(), ids=UNAUTHENTICATED_HEADERS.keys()
)
def test_headers_without_a_bearer_credential_are_the_uniform_401(world: World, value: str) -> None:
    """Anything but `Bearer 1*SP b64token` is the uniform invalid_token 401 on the gateway
    endpoint (an empty field counts as no credential: no error code in the challenge)."""
    r = world.get(value)
    assert_problem(r, 401, "invalid_token")
    assert r.get_data() == world.refs["invalid"].get_data()
    if value:
        assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


@pytest.mark.parametrize(
    "value", TWO_CREDENTIAL_HEADERS.values(), ids=TWO_CREDENTIAL_HEADERS.keys()
)
def test_several_credentials_in_one_header_are_the_uniform_401(world: World, value: str) -> None:
    """A comma means several credentials (RFC 9110 §5.3): the uniform 401 on GET."""
    r = world.get(value)
    assert r.status_code == 401
    assert r.get_data() == world.refs["invalid"].get_data()


@pytest.mark.parametrize("token", [VALID, BAD], ids=["valid", "bad"])
def test_two_authorization_headers_are_the_uniform_401(world: World, token: str) -> None:
    """Two Authorization fields are the uniform 401 on GET, whatever they hold."""
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {VALID}")]
    r = world.client.get("/v1/verify", headers=[*headers, ("X-Request-Id", REQUEST_ID)])
    assert_problem(r, 401, "invalid_token")
    assert r.get_data() == world.refs["invalid"].get_data()


@pytest.mark.parametrize("token", [VALID, BAD], ids=["valid", "bad"])
def test_token_in_header_and_body_is_400(world: World, token: str) -> None:
    """RFC 6750 §2: one method per request; header plus body is 400 even if both are good."""
    r = world.client.post(
        "/v1/verify", json={"token": VALID}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(r, 400, "invalid_request")


@pytest.mark.parametrize("token", [VALID, BAD], ids=["valid", "bad"])
def test_token_in_the_query_is_refused(world: World, token: str) -> None:
    """RFC 6750 §2.3 (URI query) is not supported, alone or beside another method: the
    uniform 401 on the gateway endpoint GET, a 400 invalid_request on the JSON POST."""
    query = {"access_token": token}
    for headers in ({"Authorization": f"Bearer {VALID}"}, {}):
        r = world.client.get(
            "/v1/verify", query_string=query, headers={**headers, "X-Request-Id": REQUEST_ID}
        )
        assert_problem(r, 401, "invalid_token")
        assert r.get_data() == world.refs["invalid"].get_data()
    r = world.client.post("/v1/verify", query_string=query, json={"token": VALID})
    assert_problem(r, 400, "invalid_request")


def test_post_refuses_query_parameters(world: World) -> None:
    """POST /v1/verify takes nothing from the query: an audience there is not silently dropped."""
    r = world.client.post(
        "/v1/verify", query_string={"audience": "elsewhere"}, json={"token": VALID}
    )
    assert_problem(r, 422, "invalid_request")


def test_bearer_header_on_introspection_is_not_client_authentication(world: World) -> None:
    """Introspection wants client credentials; a bearer token there is invalid_client (401)."""
    r = world.client.post(
        "/v1/tenants/acme/introspect",
        data={"token": VALID},
        headers={"Authorization": f"Bearer {VALID}"},
    )
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_client"
