"""Tenant signing secrets: generation and the validation of imported ones."""

from __future__ import annotations

import base64

import pytest

from tenantauth.crypto.secrets import (
    MAX_SECRET_BYTES,
    MIN_SECRET_BYTES,
    decode_imported_secret,
    generate_secret,
)
from tenantauth.errors import InvalidRequestError


def _b64url(raw: bytes, *, padded: bool = False) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def test_generated_secret_is_32_fresh_bytes() -> None:
    """generate_secret returns 32 bytes (256 bits), different each time."""
    first, second = generate_secret(), generate_secret()
    assert len(first) == len(second) == MIN_SECRET_BYTES == 32
    assert first != second


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("length", [32, 33, 34, 64, MAX_SECRET_BYTES])
def test_imported_secret_decodes_base64url(length: int, padded: bool) -> None:
    """A base64url secret of 32..512 bytes decodes to its bytes, padded or not."""
    raw = bytes((i * 7 + 251) % 256 for i in range(length))
    assert decode_imported_secret(_b64url(raw, padded=padded)) == raw


def test_imported_secret_uses_url_alphabet() -> None:
    """Secrets whose encoding holds '-' and '_' decode (the URL-safe alphabet)."""
    raw = b"\xfb\xff" * 16
    text = _b64url(raw)
    assert "-" in text
    assert "_" in text
    assert decode_imported_secret(text) == raw


@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_too_short_secret_rejected(length: int) -> None:
    """Secrets shorter than 32 bytes (31 included) are refused (RFC 7518 §3.2)."""
    with pytest.raises(InvalidRequestError):
        decode_imported_secret(_b64url(b"k" * length))


def test_too_long_secret_rejected() -> None:
    """Secrets longer than 512 bytes are refused."""
    with pytest.raises(InvalidRequestError):
        decode_imported_secret(_b64url(b"k" * (MAX_SECRET_BYTES + 1)))


def test_standard_base64_alphabet_rejected() -> None:
    """Standard base64 with '+' or '/' is refused: imports are base64url."""
    text = base64.b64encode(b"\xfb\xff" * 16).decode()
    assert "+" in text
    assert "/" in text
    with pytest.raises(InvalidRequestError):
        decode_imported_secret(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_b64url(b"k" * 32) + "!", id="punctuation"),
        pytest.param(" " + _b64url(b"k" * 32), id="leading-space"),
        pytest.param(_b64url(b"k" * 32) + "\n", id="trailing-newline"),
        pytest.param(_b64url(b"k" * 33) + "A", id="impossible-length"),
        pytest.param("=" * 44, id="only-padding"),
        pytest.param(_b64url(b"k" * 32) + "===", id="three-pads"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_secret_text_rejected(text: str) -> None:
    """Text that is not base64url (stray characters, whitespace, bad length) is refused."""
    with pytest.raises(InvalidRequestError):
        decode_imported_secret(text)
