"""The document's patterns (api/rules.py) say exactly what the domain checks behind them.

Each property compares a pattern (``fullmatch``, as the API reads it) with the domain function
that enforces the rule, on strings drawn from the pattern itself and from arbitrary text, so a
change on either side that the other does not follow fails here before schemathesis meets it.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantauth.api import rules
from tenantauth.crypto.secrets import decode_imported_secret
from tenantauth.domain import paging, tenants, users
from tenantauth.domain.admin import admin_keys, audit
from tenantauth.domain.oauth import clients, resource_servers
from tenantauth.domain.tokens import CONTROL_CHARACTERS, TokenRequest
from tenantauth.errors import InvalidRequestError, NotFoundError

_SPACE_CLASS = re.compile(f"[{rules.SPACE}]")


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _accepts(check: Callable[[], object]) -> bool:
    try:
        check()
    except (InvalidRequestError, NotFoundError):
        return False
    return True


def _strings(pattern: str, alphabet: str | None = None) -> st.SearchStrategy[str]:
    """Strings matching ``pattern``, arbitrary text, and text over a telling alphabet."""
    near = st.text(alphabet, max_size=80) if alphabet else st.nothing()
    return st.one_of(st.from_regex(pattern, fullmatch=True), st.text(max_size=80), near)


def test_space_class_is_python_whitespace_without_controls() -> None:
    """The whitespace in NAME/USERNAME is exactly what str.strip/isspace removes, less the
    control characters (which the patterns exclude anyway)."""
    for code in range(0x110000):
        char = chr(code)
        expected = char.isspace() and not CONTROL_CHARACTERS.match(char)
        assert (_SPACE_CLASS.fullmatch(char) is not None) == expected, hex(code)


@settings(max_examples=300)
@given(_strings(rules.USERNAME, " /\t\x85\u00e9e\u0301a\u3000"))
def test_username(value: str) -> None:
    """USERNAME (+ its NFC format, + 1..255 characters) is what check_username accepts."""
    documented = (
        _matches(rules.USERNAME, value)
        and unicodedata.normalize("NFC", value) == value
        and 1 <= len(value) <= users.MAX_USERNAME_LENGTH
    )
    assert documented == _accepts(lambda: users.check_username(value))


@settings(max_examples=300)
@given(_strings(rules.PRINTABLE, "a \x00\x1f\x7f\x9f\xa0"))
def test_subject(value: str) -> None:
    """PRINTABLE, 1..255 characters, is the ``sub`` an issue request accepts."""
    documented = _matches(rules.PRINTABLE, value) and len(value) <= 255
    assert documented == _accepts(lambda: TokenRequest("acme", value))


@settings(max_examples=300)
@given(_strings(rules.SCOPE, 'ab !"\\\x7f~'))
def test_scope(value: str) -> None:
    """SCOPE, at most 1024 characters, is the ``scope`` an issue request accepts."""
    documented = _matches(rules.SCOPE, value) and len(value) <= 1024
    assert documented == _accepts(lambda: TokenRequest("acme", "u", scope=value))


@settings(max_examples=300)
@given(_strings(rules.SCOPE_TOKEN, 'ab !"\\\x7f~'))
def test_scope_token(value: str) -> None:
    """SCOPE_TOKEN is one scope a client may be given."""
    documented = _matches(rules.SCOPE_TOKEN, value) and len(value) <= 1024
    assert documented == _accepts(lambda: clients.check_scopes([value]))


@pytest.mark.parametrize("name_check", [tenants._name, clients._name], ids=["tenant", "client"])
@given(value=_strings(rules.NAME, "a \t\x00\xa0\u3000"))
def test_name(name_check: Callable[[str], str], value: str) -> None:
    """NAME, 1..200 characters, is the name of a tenant or client the domain accepts."""
    documented = _matches(rules.NAME, value) and len(value) <= 200
    assert documented == _accepts(lambda: name_check(value))


@settings(max_examples=300)
@given(
    st.one_of(
        _strings(rules.SECRET, "Aa0_-=+/"),
        st.binary(min_size=28, max_size=520).map(
            lambda raw: base64.urlsafe_b64encode(raw).decode()
        ),
        st.binary(min_size=28, max_size=520).map(
            lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")
        ),
    )
)
def test_secret(value: str) -> None:
    """SECRET is the imported secret the domain decodes (base64url of 32..512 bytes)."""
    assert _matches(rules.SECRET, value) == _accepts(lambda: decode_imported_secret(value))


@settings(max_examples=300)
@given(_strings(rules.CURSOR, "AQgw_-=!"))
def test_cursor_pattern_is_necessary(value: str) -> None:
    """Every cursor the domain accepts matches CURSOR (it is the syntax; the format adds
    "one the service issued"), and every cursor it issues does."""
    if _accepts(lambda: paging.decode_cursor(value)):
        assert _matches(rules.CURSOR, value)


@given(st.text(min_size=1, max_size=80))
def test_issued_cursors_match(key: str) -> None:
    """A cursor issued for any key matches CURSOR."""
    assert _matches(rules.CURSOR, paging.encode_cursor(key))


@given(_strings(rules.AUDIT_CURSOR, "0123456789\u0661-+ "))
def test_audit_cursor(value: str) -> None:
    """AUDIT_CURSOR is exactly the audit listing's cursor."""
    assert _matches(rules.AUDIT_CURSOR, value) == _accepts(lambda: audit._seq_of(value))


@pytest.mark.parametrize(
    ("pattern", "check"),
    [
        (rules.TENANT_ID, tenants.require_tenant_id),
        (rules.KEY_ID, admin_keys._require_possible),
        (rules.CLIENT_ID, clients._require_possible),
        (rules.SERVER_ID, resource_servers.require_possible),
    ],
    ids=["tenant_id", "key_id", "client_id", "server_id"],
)
@given(data=st.data())
def test_path_ids(pattern: str, check: Callable[[str], None], data: st.DataObject) -> None:
    """The id patterns of the path parameters are the ids the domain would look up."""
    value = data.draw(_strings(pattern, "az09-_AFtr\n"))
    assert _matches(pattern, value) == _accepts(lambda: check(value))
