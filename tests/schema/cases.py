"""Which generated cases the schema tests send: the rules the document can only say in words.

A few rules cannot be JSON Schema (one property bounded by another, a value bounded by stored
state, a header syntax a security scheme cannot state). Their words are in the document's
descriptions; ``keep_to_the_words`` edits a *valid* (positive) case so it keeps to them, so
that schemathesis' "valid data must be accepted" holds against the whole document. Invalid
(negative) cases are never edited: they must be refused whatever they break.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from schemathesis.core.parameters import ParameterLocation

from tests.schema.formats import KEY_ALGS


def keep_to_the_words(case: Any) -> None:
    """Edit a positive case in place so it keeps to the rules said only in words:

    - ``access_token_ttl`` at most ``max_token_ttl``: swapped when reversed. A PATCH changing
      only one of them is held to the other's *stored* value, which no document can know, so
      the one is dropped (the service answers 422 there, where 409 "conflicts with the
      current state" would fit: reported to the domain's owner);
    - a token's ``ttl`` at most its tenant's *stored* ``max_token_ttl`` (POST …/tokens): no
      document can know it, so a ``ttl`` becomes 1, within every tenant's bound (found when
      a newer schemathesis generated a ttl above a tenant's max in a call sequence);
    - a password is not the username (NIST SP 800-63B §5.1.1.2, cross-field): made longer;
    - a bearer credential is an RFC 6750 §2.1 b64token: a comma in it reads as two folded
      Authorization headers (RFC 9110 §5.3) and is refused with 400; a security scheme has
      no pattern to say so: the comma becomes a dot;
    - a tenant's key (create, rotate): ``secret`` only with HS256, ``private_key`` only with
      the key-pair alg of its type, not both. A ``private_key`` sets ``alg`` to its type and
      drops ``secret``; a ``secret`` makes ``alg`` HS256 (a rotation without alg keeps the
      tenant's *stored* one, which no document can know);
    - a rollover policy's ``publish_ahead`` is less than its ``every``: set to ``every − 1``.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if isinstance(case.body, dict):
        case.body = _ahead_of_every(_one_key(_ttls_in_order(case.method, dict(case.body))))
        if "ttl" in case.body and str(case.path).endswith("/tokens"):
            case.body["ttl"] = 1
        username = case.body.get("username") or (case.path_parameters or {}).get("username")
        if _same_password(case.body.get("password"), username):
            case.body = {**case.body, "password": case.body["password"] + " (not the name)"}
    authorization = (case.headers or {}).get("Authorization", "")
    if "," in authorization:
        case.headers = {**case.headers, "Authorization": authorization.replace(",", ".")}


def sendable(case: Any) -> bool:
    """Return False for a negative case of an admin operation whose fault is in its headers:
    the only header there is Authorization, which the tests replace with the admin token, so
    the call would not be invalid after all."""
    if case.meta is None or case.meta.generation.mode.is_positive:
        return True
    return not (is_admin(case) and case.meta.is_negative_at(ParameterLocation.HEADER))


def is_admin(case: Any) -> bool:
    """Return whether the case calls the admin API (authenticated with the admin token)."""
    return str(case.path).startswith("/v1/admin/")


def _ttls_in_order(method: str, body: dict[str, Any]) -> dict[str, Any]:
    access, maximum = body.get("access_token_ttl"), body.get("max_token_ttl")
    if access is not None and maximum is not None and access > maximum:
        body["access_token_ttl"], body["max_token_ttl"] = maximum, access
    elif method.upper() == "PATCH" and (access is None) != (maximum is None):
        body.pop("access_token_ttl", None)
        body.pop("max_token_ttl", None)
    return body


def _ahead_of_every(body: dict[str, Any]) -> dict[str, Any]:
    every, ahead = body.get("every"), body.get("publish_ahead")
    numbers = (int, float)  # JSON does not tell 60 from 60.0, nor does the document
    if isinstance(every, numbers) and isinstance(ahead, numbers) and ahead >= every:
        body["publish_ahead"] = int(every) - 1
    return body


def _one_key(body: dict[str, Any]) -> dict[str, Any]:
    if "private_key" in body:
        body.pop("secret", None)
        body["alg"] = KEY_ALGS.get(body["private_key"], body.get("alg"))
    elif "secret" in body:
        body["alg"] = "HS256"
    return body


def _same_password(password: Any, username: Any) -> bool:
    """Return whether the password policy would call them the same (NFKC, case-folded)."""
    if not (isinstance(password, str) and isinstance(username, str)):
        return False
    fold = [unicodedata.normalize("NFKC", v).casefold() for v in (password, username)]
    return fold[0] == fold[1]
