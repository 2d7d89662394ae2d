"""User passwords: argon2id hashing, rehash detection, dummy verification and the policy."""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

import argon2
import pytest

from tenantauth.crypto.passwords import PasswordHasher, check_password_policy
from tenantauth.errors import ConfigurationError, InvalidRequestError

# Low parameters keep the suite fast; one test below uses the real defaults.
FAST = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
PASSWORD = "correct horse battery staple"


@pytest.fixture
def hasher() -> PasswordHasher:
    """A hasher with cheap parameters (t=1, 8 MiB, p=1)."""
    return PasswordHasher(**FAST)


def test_hash_is_argon2id_with_the_given_parameters(hasher: PasswordHasher) -> None:
    """hash() returns a PHC argon2id string carrying the constructor's m, t and p."""
    assert hasher.hash(PASSWORD).startswith("$argon2id$v=19$m=8192,t=1,p=1$")


def test_hash_is_salted(hasher: PasswordHasher) -> None:
    """Two hashes of one password differ (fresh salt) and both verify."""
    first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
    assert first != second
    assert hasher.verify(first, PASSWORD)
    assert hasher.verify(second, PASSWORD)


def test_verify_rejects_a_wrong_password(hasher: PasswordHasher) -> None:
    """A wrong password gives False, without raising."""
    stored = hasher.hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD + "!") is False
    assert hasher.verify(stored, "") is False


def test_verify_normalises_unicode(hasher: PasswordHasher) -> None:
    """A password typed with a combining accent matches the precomposed one (NFKC)."""
    composed = "caf\u00e9 au lait, s'il vous pla\u00eet"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "$argon2id$v=19$m=8192,t=1,p=1$garbage$garbage",
        "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=8192,t=1,p=1$s\u00e4lt$h\u00e4sh",
    ],
    ids=["empty", "text", "garbage-parts", "no-digest", "bcrypt", "non-ascii"],
)
def test_malformed_stored_hash_is_false_and_logged_without_the_hash(
    hasher: PasswordHasher, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored hash argon2 cannot use gives False and one warning that omits the hash."""
    with caplog.at_level(logging.WARNING, logger="tenantauth.crypto.passwords"):
        assert hasher.verify(stored, PASSWORD) is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "malformed" in warnings[0].getMessage()
    if stored:
        assert stored not in caplog.text
    assert PASSWORD not in caplog.text


def test_malformed_stored_hash_still_costs_a_verification(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed stored hash runs the dummy verification, keeping the timing uniform."""
    calls: list[str] = []
    monkeypatch.setattr(hasher, "verify_dummy", calls.append)
    assert hasher.verify("not-a-hash", PASSWORD) is False
    assert calls == [PASSWORD]


def test_verify_dummy_runs_a_real_verification_with_current_parameters(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify_dummy is False and verifies against a hash made with the current parameters."""
    seen: list[str] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, stored: Any, password: Any) -> Any:
        seen.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    assert hasher.verify_dummy(PASSWORD) is False
    assert hasher.verify_dummy("") is False
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert hasher.needs_rehash(seen[0]) is False


def test_needs_rehash_is_false_for_own_hashes(hasher: PasswordHasher) -> None:
    """A hash made with the current parameters needs no rehash."""
    assert hasher.needs_rehash(hasher.hash(PASSWORD)) is False


@pytest.mark.parametrize(
    "other",
    [{"time_cost": 2}, {"memory_cost": 16384}, {"parallelism": 2}],
    ids=["time", "memory", "parallelism"],
)
def test_needs_rehash_when_any_parameter_changed(
    hasher: PasswordHasher, other: dict[str, int]
) -> None:
    """A hash made with another t, m or p needs a rehash, and still verifies meanwhile."""
    old = PasswordHasher(**{**FAST, **other}).hash(PASSWORD)
    assert hasher.needs_rehash(old) is True
    assert hasher.verify(old, PASSWORD) is True


def test_needs_rehash_for_another_argon2_variant(hasher: PasswordHasher) -> None:
    """An argon2i hash with the same numbers still needs a rehash to argon2id."""
    old = argon2.PasswordHasher(
        time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    assert hasher.needs_rehash(old) is True
    assert hasher.verify(old, PASSWORD) is True


def test_needs_rehash_for_malformed_hash(hasher: PasswordHasher) -> None:
    """A malformed stored hash needs replacing; needs_rehash says so instead of raising."""
    assert hasher.needs_rehash("not-a-hash") is True


def test_default_parameters_and_rehash_detection() -> None:
    """The defaults are t=3, 64 MiB, p=1; hashes made with cheaper ones need a rehash."""
    default = PasswordHasher()
    stored = default.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert default.needs_rehash(stored) is False
    cheap = PasswordHasher(**FAST).hash(PASSWORD)
    assert default.needs_rehash(cheap) is True
    assert default.verify(cheap, PASSWORD) is True
    assert PasswordHasher(**FAST).needs_rehash(stored) is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"time_cost": 0}, "time_cost"),
        ({"parallelism": 0}, "parallelism"),
        ({"memory_cost": 7}, "at least 8 KiB per lane"),
        ({"memory_cost": 15, "parallelism": 2}, "16 KiB here"),
    ],
)
def test_invalid_parameters_are_a_configuration_error(params: dict[str, int], message: str) -> None:
    """Parameters outside RFC 9106 §3.1 fail at construction with a precise message."""
    with pytest.raises(ConfigurationError, match=message):
        PasswordHasher(**{**FAST, **params})


# --- the policy --------------------------------------------------------------------------------


def policy_problems(password: str, username: str = "alice") -> list[str]:
    """Return the problems the policy reports (bounds 12..64), or [] if it passes."""
    try:
        check_password_policy(password, username, min_length=12, max_length=64)
    except InvalidRequestError as exc:
        assert isinstance(exc.errors, dict)
        assert exc.detail == "; ".join(exc.errors["password"]) + "."
        return exc.errors["password"]  # type: ignore[no-any-return]
    return []


@pytest.mark.parametrize("password", ["x" * 12, "x" * 64, PASSWORD, " leading and trailing "])
def test_policy_accepts_passwords_within_bounds(password: str) -> None:
    """Passwords of 12 to 64 characters that are not the username pass."""
    assert policy_problems(password) == []


def test_policy_too_short_names_the_minimum() -> None:
    """An 11-character password is refused with the minimum and the actual length."""
    assert policy_problems("x" * 11) == ["password must be at least 12 characters long (got 11)"]


def test_policy_too_long_names_the_maximum() -> None:
    """A 65-character password is refused with the maximum and the actual length."""
    assert policy_problems("x" * 65) == ["password must be at most 64 characters long (got 65)"]


@pytest.mark.parametrize(
    "password", ["alice-in-wonderland", "ALICE-IN-WONDERLAND", "Alice-In-Wonderland"]
)
def test_policy_refuses_the_username_in_any_case(password: str) -> None:
    """A password equal to the username, ignoring case, is refused."""
    assert policy_problems(password, "Alice-in-Wonderland") == [
        "password must not be the same as the username"
    ]


def test_policy_allows_a_password_containing_the_username() -> None:
    """Only equality is refused: a longer password that contains the username passes."""
    assert policy_problems("alice-in-wonderland-2024", "alice-in-wonderland") == []


@pytest.mark.parametrize("password", [" " * 12, "\t\n" * 8, "\u3000" * 12])
def test_policy_refuses_whitespace_only(password: str) -> None:
    """A password of whitespace only (ASCII or Unicode) is refused."""
    assert policy_problems(password) == ["password must not consist only of whitespace"]


def test_policy_reports_every_problem_at_once() -> None:
    """Three spaces are both too short and whitespace only: both are reported."""
    assert policy_problems("   ") == [
        "password must be at least 12 characters long (got 3)",
        "password must not consist only of whitespace",
    ]


def test_policy_counts_characters_after_normalisation() -> None:
    """Length counts NFKC characters: 12 decomposed accents are 12 characters, not 24."""
    assert policy_problems("e\u0301" * 12) == []
    assert policy_problems("e\u0301" * 11) == [
        "password must be at least 12 characters long (got 11)"
    ]


def test_policy_never_echoes_the_password() -> None:
    """The error text says what is wrong without repeating the password."""
    with pytest.raises(InvalidRequestError) as info:
        check_password_policy("hunter2", "bob", min_length=12, max_length=64)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.errors)
