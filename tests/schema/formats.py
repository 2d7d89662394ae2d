"""Hypothesis strategies for the document's own ``format`` values (api/rules.py).

JSON Schema cannot state these rules, so the document names them with a ``format`` and says
them in words; these strategies generate exactly what the words allow, so schemathesis'
positive data is valid data. They follow the rules' text, not the code that checks them.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import jwt as pyjwt
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import strategies as st

from tenantauth.api import rules
from tenantauth.domain import paging

#: The default password policy (Settings: TENANTAUTH_PASSWORD_MIN_LENGTH/_MAX_LENGTH).
PASSWORD_MIN, PASSWORD_MAX = 12, 256
_USERNAME_RE = re.compile(rules.USERNAME)
# Unicode text: no surrogates (not UTF-8), no NUL (PostgreSQL text cannot hold it).
_TEXT = st.characters(exclude_categories=["Cs"], min_codepoint=1)


def _nfkc_length(text: str) -> int:
    return len(unicodedata.normalize("NFKC", text))


#: "Unicode NFC; no control characters or '/', no whitespace at either end", 1..255 characters.
USERNAMES = (
    st.text(_TEXT, min_size=1, max_size=40)
    .map(lambda u: unicodedata.normalize("NFC", u))
    .filter(lambda u: 1 <= len(u) <= 255 and _USERNAME_RE.fullmatch(u) is not None)
)
#: "min..max characters after NFKC, not only whitespace" (not the username: a generated
#: username equal to it is vanishingly rare).
PASSWORDS = st.text(_TEXT, min_size=PASSWORD_MIN, max_size=64).filter(
    lambda p: PASSWORD_MIN <= _nfkc_length(p) <= PASSWORD_MAX and p.strip() != ""
)
#: "the next_cursor of a previous page": a cursor the service issues, for any resume key.
CURSORS = st.text(_TEXT, min_size=1, max_size=60).map(paging.encode_cursor)


#: The audit filters' words: "RFC 3339, with an offset; in UTC within 0001-01-01T00:00:00Z to
#: 9999-12-31T23:59:59.999999Z" (``date-time`` appears in no other input). Any date, any
#: offset RFC 3339 allows (under a day), kept when its UTC instant lies in that range.
_FIRST, _LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
TIMES = (
    st.builds(
        lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
        st.datetimes(),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    )
    .filter(lambda moment: _FIRST <= moment <= _LAST)
    .map(datetime.isoformat)
)


#: The words of ``private_key``: "unencrypted PEM (PKCS#8 or the traditional form) or a
#: private JWK as JSON text, of the type alg names (Ed25519; EC P-256; RSA of 2048 to 8192
#: bits)". Two keys of each type (made once: RSA takes a while), in each form; ``KEY_ALGS``
#: says which alg each text is for, which ``cases.keep_to_the_words`` applies.
KEY_ALGS: dict[str, str] = {}
_MAKERS = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def _key_texts() -> list[str]:
    if not KEY_ALGS:
        for alg, make in _MAKERS.items():
            for _ in range(2):
                key = make()
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                jwk = pyjwt.algorithms.get_default_algorithms()[alg].to_jwk(key)
                KEY_ALGS.update({pem: alg, str(jwk): alg})
    return sorted(KEY_ALGS)


PRIVATE_KEYS = st.deferred(lambda: st.sampled_from(_key_texts()))


def register() -> None:
    """Register the strategies with schemathesis (global, idempotent)."""
    schemathesis.openapi.format(rules.USERNAME_FORMAT, USERNAMES)
    schemathesis.openapi.format(rules.PASSWORD_FORMAT, PASSWORDS)
    schemathesis.openapi.format(rules.CURSOR_FORMAT, CURSORS)
    schemathesis.openapi.format("date-time", TIMES)
    schemathesis.openapi.format(rules.PRIVATE_KEY_FORMAT, PRIVATE_KEYS)
