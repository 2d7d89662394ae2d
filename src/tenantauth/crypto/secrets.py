"""Tenant signing secrets: generation and validation of imported ones."""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from tenantauth.errors import InvalidRequestError

#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_SECRET_BYTES = 32
#: Imported secrets longer than this are refused: nothing legitimate needs more, and it bounds
#: what an admin request can make us store.
MAX_SECRET_BYTES = 512
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def generate_secret() -> bytes:
    """Return 32 fresh random bytes from the OS CSPRNG (256 bits, RFC 8725 §3.5)."""
    return secrets.token_bytes(MIN_SECRET_BYTES)


def decode_imported_secret(text: str) -> bytes:
    """Decode an operator-supplied base64url secret.

    Returns the raw bytes. Raises ``InvalidRequestError`` if the text is not base64url or decodes
    to fewer than 32 or more than 512 bytes (RFC 7518 §3.2).
    """
    if not _B64URL.fullmatch(text):
        raise InvalidRequestError("secret must be base64url (RFC 4648 §5).")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError("secret must be base64url (RFC 4648 §5).") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise InvalidRequestError(
            f"secret must decode to at least {MIN_SECRET_BYTES} bytes (got {len(raw)}); "
            "HS256 keys need 256 bits (RFC 7518 §3.2)."
        )
    if len(raw) > MAX_SECRET_BYTES:
        raise InvalidRequestError(f"secret must decode to at most {MAX_SECRET_BYTES} bytes.")
    return raw
