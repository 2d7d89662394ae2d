"""User passwords: argon2id hashing (argon2-cffi) and the password policy.

Parameters come from settings (``TENANTAUTH_ARGON2_*``). The defaults, t=3 passes over 64 MiB
with one lane, are the second recommended option of RFC 9106 §4 and above the OWASP Password
Storage Cheat Sheet minimum (argon2id, m=19 MiB, t=2, p=1).

Passwords are NFKC-normalised before hashing and before the policy counts their characters
(NIST SP 800-63B §5.1.1.2), so the same password typed on two keyboards that compose accents
differently still matches.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import unicodedata

import argon2
import argon2.exceptions

from tenantauth.errors import ConfigurationError, DependencyUnavailableError, InvalidRequestError

log = logging.getLogger(__name__)

#: RFC 9106 §3.1: the tag (hash) length; 256 bits as in RFC 9106 §4.
HASH_BYTES = 32
#: RFC 9106 §3.1 recommends a 128-bit salt.
SALT_BYTES = 16
#: RFC 9106 §3.1: the memory size must be at least 8 KiB per lane.
MIN_MEMORY_KIB_PER_LANE = 8
#: RFC 9106 §3.1: the degree of parallelism is at most 2^24 - 1.
MAX_PARALLELISM = 2**24 - 1


def normalize_password(password: str) -> str:
    """Return ``password`` in Unicode NFKC form (NIST SP 800-63B §5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing with the parameters of the constructor.

    ``verify`` and ``verify_dummy`` cost the same for the current parameters, so a login for an
    unknown username takes as long as one with a wrong password (OWASP Authentication Cheat
    Sheet, "Authentication Responses"). Hashes made with older parameters still verify; ask
    ``needs_rehash`` after a successful login and store a new hash when it says so.
    """

    def __init__(self, *, time_cost: int = 3, memory_cost: int = 65_536, parallelism: int = 1):
        """Build a hasher; ``memory_cost`` is in KiB.

        Raises ``ConfigurationError`` if the parameters break RFC 9106 §3.1 (time_cost ≥ 1,
        1 ≤ parallelism < 2^24, memory_cost ≥ 8 × parallelism).
        """
        problems = []
        if time_cost < 1:
            problems.append("argon2 time_cost must be at least 1 (RFC 9106 §3.1)")
        if not 1 <= parallelism <= MAX_PARALLELISM:
            problems.append(f"argon2 parallelism must be between 1 and {MAX_PARALLELISM}")
        elif memory_cost < MIN_MEMORY_KIB_PER_LANE * parallelism:
            problems.append(
                f"argon2 memory_cost must be at least {MIN_MEMORY_KIB_PER_LANE} KiB per lane "
                f"({MIN_MEMORY_KIB_PER_LANE * parallelism} KiB here; RFC 9106 §3.1)"
            )
        if problems:
            raise ConfigurationError(problems)
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=HASH_BYTES,
            salt_len=SALT_BYTES,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        """Return the PHC-format argon2id hash (``$argon2id$v=19$m=…``) of ``password``.

        A fresh random salt each time, so equal passwords hash differently. Raises
        ``DependencyUnavailableError`` if hashing itself fails (e.g. memory cannot be
        allocated): we fail closed rather than store anything else.
        """
        try:
            return self._hasher.hash(normalize_password(password))
        except argon2.exceptions.HashingError as exc:
            log.exception("argon2 hashing failed")
            raise DependencyUnavailableError("password hashing failed") from exc

    def verify(self, stored_hash: str, password: str) -> bool:
        """Return whether ``password`` matches ``stored_hash``.

        Raises nothing: a mismatch is False, and so is a malformed or non-argon2 stored hash
        (logged as a warning, without the hash; a dummy verification then keeps the timing).
        """
        try:
            return self._hasher.verify(stored_hash, normalize_password(password))
        except argon2.exceptions.VerifyMismatchError:
            return False
        except (argon2.exceptions.VerificationError, ValueError):
            # InvalidHashError is a ValueError; so is a stored hash that is not ASCII.
            log.warning("stored password hash is malformed; treating it as a mismatch")
            self.verify_dummy(password)
            return False

    def verify_dummy(self, password: str) -> bool:
        """Spend the time of one verification with the current parameters; return False.

        Call it when the username is unknown, so that answer takes as long as a wrong
        password (OWASP Authentication Cheat Sheet). The dummy hash is of a random value
        nobody knows, made on first use.
        """
        if self._dummy_hash is None:
            # A race here only makes two dummies, both valid: no lock needed.
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        with contextlib.suppress(argon2.exceptions.VerificationError):
            self._hasher.verify(self._dummy_hash, normalize_password(password))
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Return whether ``stored_hash`` was made with other parameters (or another variant).

        A malformed hash also returns True (it should be replaced); nothing is raised.
        """
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except ValueError:
            return True


def check_password_policy(
    password: str, username: str, *, min_length: int, max_length: int
) -> None:
    """Check a new password against the policy; return None if it passes.

    The rules are NIST SP 800-63B §5.1.1.2 and the OWASP Authentication Cheat Sheet: length
    bounds counted in Unicode characters after NFKC normalisation (no composition rules), not
    only whitespace, and not the username (compared case-insensitively).

    Raises ``InvalidRequestError`` whose detail names every rule broken, with the bound, and
    whose ``errors`` is ``{"password": [messages]}``. The password itself is never echoed.
    """
    normalized = normalize_password(password)
    problems = []
    if len(normalized) < min_length:
        problems.append(
            f"password must be at least {min_length} characters long (got {len(normalized)})"
        )
    if len(normalized) > max_length:
        problems.append(
            f"password must be at most {max_length} characters long (got {len(normalized)})"
        )
    if not normalized.strip():
        problems.append("password must not consist only of whitespace")
    elif normalized.casefold() == normalize_password(username).casefold():
        problems.append("password must not be the same as the username")
    if problems:
        raise InvalidRequestError("; ".join(problems) + ".", errors={"password": problems})
