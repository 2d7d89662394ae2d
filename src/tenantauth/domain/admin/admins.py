"""Authenticating admin callers: the bootstrap admin token and admin API keys.

An admin API key is ``ta_adm_<id>_<secret>``: ``id`` (16 hex digits) is public and names the
row; ``secret`` is 256 random bits, stored only as HMAC-SHA256 under a key derived from the
master key (the scheme of client secrets, docs/design.md "Client secrets and passwords"). The
prefix lets secret scanners and humans recognise a leaked key. Every failure — missing, wrong,
unknown, expired or revoked — raises the same ``AuthenticationError``, so a caller cannot tell
which keys exist or have been revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tenantauth.crypto.client_secrets import ClientSecretHasher
from tenantauth.domain.admin.admin_models import BOOTSTRAP_ACTOR, AdminPrincipal
from tenantauth.errors import AuthenticationError

if TYPE_CHECKING:  # services.py imports this module for AdminAuthenticator
    from tenantauth.domain.services import Services

ADMIN_KEY_PREFIX = "ta_adm_"
KEY_ID_BYTES = 8
KEY_SECRET_BYTES = 32
#: HKDF ``info`` of the admin-key hashing key (RFC 5869 §3.2: one key per purpose).
ADMIN_KEY_PURPOSE = b"tenantauth/admin-key-hmac/v1"
_KEY_RE = re.compile(r"ta_adm_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
#: ``last_used_at`` is refreshed at most this often, so a busy key is not a write per request.
TOUCH_INTERVAL = timedelta(seconds=60)
_REFUSED = "A valid admin bearer token is required."
# Compared against when the key id is unknown, so that path costs the same HMAC as the others.
_NO_HASH = bytes(32)


class AdminAuthenticator:
    """Checks a presented admin bearer token against the configured one in constant time."""

    def __init__(self, admin_token: str) -> None:
        """Keep only a digest: equal-length digests make the comparison length-independent."""
        self._digest = _digest(admin_token)

    def matches(self, presented: str) -> bool:
        """Return whether ``presented`` is the bootstrap admin token (constant time)."""
        return hmac.compare_digest(_digest(presented), self._digest)

    def authenticate(self, presented: str | None) -> None:
        """Return if ``presented`` is the admin token.

        Raises ``AuthenticationError`` otherwise (missing or wrong alike).
        """
        if presented is None or not self.matches(presented):
            raise AuthenticationError(_REFUSED)


def authenticate(svc: Services, presented: str | None) -> AdminPrincipal:
    """Return the admin that ``presented`` (a bearer token) authenticates.

    The bootstrap token is a global admin (actor ``bootstrap``); an admin API key is the admin
    its row says, and its ``last_used_at`` is refreshed. Raises ``AuthenticationError`` with one
    message for every failure, ``StorageUnavailableError`` if the key cannot be looked up.
    """
    if presented is None:
        raise AuthenticationError(_REFUSED)
    if svc.admins.matches(presented):
        return AdminPrincipal(BOOTSTRAP_ACTOR)
    match = _KEY_RE.fullmatch(presented)
    if match is None:
        raise AuthenticationError(_REFUSED)
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    hasher = key_hasher(svc)
    with svc.storage.transaction() as tx:
        key = tx.admin_keys.get(match[1])
        # Always one HMAC comparison, found or not (the secret is what is guessed).
        valid = hasher.verify(presented, key.key_hash if key else _NO_HASH)
        if key is None or not valid or not key.usable_at(now):
            raise AuthenticationError(_REFUSED)
        tx.admin_keys.touch(key.id, now, now - TOUCH_INTERVAL)
        current = hasher.hash(presented)
        if not hmac.compare_digest(current, key.key_hash):
            # Hashed under an older master key: move it to the current one, so the old key can
            # be dropped once every key was used (docs/design.md, "Master-key rotation").
            tx.admin_keys.rehash(key.id, key.key_hash, current)
    return AdminPrincipal(key.id, key.tenant_id)


def key_hasher(svc: Services) -> ClientSecretHasher:
    """Return the keyed hash of admin keys (current master key, older ones still verify)."""
    current, older = svc.keyring.derive(ADMIN_KEY_PURPOSE)
    return ClientSecretHasher(current, older_keys=older)


def generate_admin_key() -> tuple[str, str]:
    """Return a new (key id, full key ``ta_adm_<id>_<secret>``) from the CSPRNG."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    return key_id, f"{ADMIN_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
