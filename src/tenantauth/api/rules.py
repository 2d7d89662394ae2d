"""Input rules the API enforces, written once as JSON Schema patterns and checked as written.

Each rule is the ``pattern`` (or ``format``) the OpenAPI document shows for a rule the service
enforces, so a client or a generator such as schemathesis that follows the document sends only
what the service accepts (tests/schema runs schemathesis' positive-data acceptance and
negative-data rejection checks to hold us to that, and test_rules.py compares each pattern
with the domain check behind it). The domain keeps enforcing them, with details that name the
rule; the schema enforces only rules the domain does not have (``text(error=...)``).

Patterns are ECMA-262 as OpenAPI 3.1 reads them, and also valid Python ``re``. They are checked
with ``fullmatch``: Python's ``$`` would also accept a trailing newline.

Where JSON Schema cannot state a rule (Unicode NFC usernames, the NFKC password policy of the
settings, a cursor the server issued), the field carries a ``format`` naming it and the
description says it in words.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import validate

from tenantauth.crypto.jwt import TENANT_ID_RE
from tenantauth.domain.tokens import RESERVED_CLAIMS

# C0 controls, DEL and C1 controls (domain.tokens.CONTROL_CHARACTERS).
_CTRL = r"\x00-\x1f\x7f-\x9f"
# Whitespace as Python's str.isspace/strip sees it, less the controls above.
SPACE = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# RFC 6749 §3.3: NQCHAR = %x21 / %x23-5B / %x5D-7E.
_NQCHAR = r"\x21\x23-\x5b\x5d-\x7e"
_B64 = "[A-Za-z0-9_-]"

#: A tenant id: lowercase letters, digits and '-', 2 to 63 characters.
TENANT_ID = f"^{TENANT_ID_RE.pattern}$"
#: Text without control characters (``sub``, admin key names).
PRINTABLE = f"^[^{_CTRL}]+$"
#: A display name: no control characters and not only whitespace (tenant and client names).
NAME = f"^[^{_CTRL}]*[^{_CTRL}{SPACE}][^{_CTRL}]*$"
#: A username: no control characters or '/', no whitespace at either end.
USERNAME = f"^[^{_CTRL}{SPACE}/](?:[^{_CTRL}/]*[^{_CTRL}{SPACE}/])?$"
#: One RFC 6749 §3.3 scope-token.
SCOPE_TOKEN = f"^[{_NQCHAR}]+$"
#: An RFC 6749 §3.3 ``scope``: scope-tokens separated by single spaces.
SCOPE = f"^[{_NQCHAR}]+(?: [{_NQCHAR}]+)*$"
#: An imported HS256 secret: base64url (RFC 4648 §5) of 32 to 512 bytes (RFC 7518 §3.2),
#: unpadded or with its canonical padding. 10 quads + 3 characters is 32 bytes; 170 quads +
#: 3 characters is 512.
SECRET = (
    f"^(?:(?:{_B64}{{4}}){{10}}{_B64}{{3}}=?"
    f"|(?:{_B64}{{4}}){{11,170}}(?:{_B64}{{2}}(?:==)?|{_B64}{{3}}=?)?)$"
)
#: A list cursor: canonical unpadded base64url (the last character carries no stray bits).
CURSOR = f"^(?:{_B64}{{4}})*(?:{_B64}[AQgw]|{_B64}{{2}}[AEIMQUYcgkosw048])?$"
#: An audit cursor: the sequence number of the last entry shown.
AUDIT_CURSOR = "^[0-9]{1,18}$"
#: Path parameters other than the tenant id.
KEY_ID = "^[0-9a-f]{16}$"
CLIENT_ID = "^[A-Za-z0-9_-]{1,64}$"
SERVER_ID = "^tar_[A-Za-z0-9_-]{22}$"

#: Field metadata naming the Settings attribute that caps a field: the document shows the
#: configured ``maximum`` (api/docs.py), which the domain enforces, not the schema's bound.
MAXIMUM_SETTING = "maximum_setting"

#: ``format`` values for rules JSON Schema cannot state (their descriptions say them).
USERNAME_FORMAT = "tenantauth-username"
PASSWORD_FORMAT = "password"  # noqa: S105 - a format name (OpenAPI registry), not a password
CURSOR_FORMAT = "tenantauth-cursor"
PRIVATE_KEY_FORMAT = "tenantauth-private-key"


class Pattern(validate.Validator):
    """Accept strings that ``fullmatch`` an ECMA-262/Python pattern; refuse others."""

    def __init__(self, pattern: str, error: str) -> None:
        """Check against ``pattern``; ``error`` is the message of a refusal."""
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._message = error

    def __call__(self, value: str) -> str:
        """Return ``value``. Raises ``ValidationError`` unless the whole value matches."""
        if self._regex.fullmatch(value) is None:
            raise ma.ValidationError(self._message)
        return value


def text(
    pattern: str,
    *,
    length: tuple[int, int] | None = None,
    error: str | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """Return ``fields.String`` keyword arguments documenting ``pattern`` and ``length``.

    The domain enforces most rules itself, with a detail naming the rule (and
    tests/schema/test_rules.py holds each pattern to the domain's check); give ``error`` to
    have the schema enforce a rule the domain does not have.
    """
    checks: list[Any] = [validate.Length(*length)] if length else []
    if error is not None:
        checks.append(Pattern(pattern, error))
    return {"validate": checks, "metadata": {"pattern": pattern, **metadata}}


#: ``propertyNames`` of custom claims: 1 to 100 characters, none the service sets itself.
CLAIM_NAMES = {"minLength": 1, "maxLength": 100, "not": {"enum": sorted(RESERVED_CLAIMS)}}
CLAIMS_DESCRIPTION = (
    "Custom claims added to tokens: at most 2 KiB as compact JSON; names of 1 to 100 "
    "characters, none of the claims the service sets itself."
)
