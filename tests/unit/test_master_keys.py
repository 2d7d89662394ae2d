"""Master-key rotation: the keyring with older keys, MASTER_KEYS_OLD parsing, and the
rotate/status use cases on SQLite + fakeredis (both backends: tests/integration)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tenantauth.crypto.client_secrets import ClientSecretHasher
from tenantauth.crypto.envelope import (
    MasterKeyring,
    SealedSecret,
    SecretDecryptionError,
    generate_master_key,
    master_key_id,
)
from tenantauth.domain import tenants
from tenantauth.domain.admin import master_keys
from tenantauth.domain.admin.master_keys import RotationReport
from tenantauth.domain.services import Services
from tenantauth.errors import ConfigurationError
from tenantauth.settings import Settings
from tests.support import ADMIN_TOKEN, ISSUER, FixedClock
from tests.unit.helpers import ACME_SECRET, fake_cache, make_services, secret_text

OLD = bytes(range(32))  # tests.support.MASTER_KEY, which make_services uses
NEW = bytes(range(32, 64))
OTHER = bytes(range(64, 96))


def b64(key: bytes) -> str:
    """Encode a key as the settings read it."""
    return base64.b64encode(key).decode()


def env(**values: str) -> dict[str, str]:
    """Return a production environment with MASTER_KEY=NEW and ``values`` added."""
    base = {
        "TENANTAUTH_DATABASE_URL": "postgresql://u:p@db.internal/t",
        "TENANTAUTH_MASTER_KEY": b64(NEW),
        "TENANTAUTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "TENANTAUTH_ISSUER": ISSUER,
    }
    return base | {f"TENANTAUTH_{k}": v for k, v in values.items()}


def problems(environ: dict[str, str]) -> list[str]:
    """Return the problems Settings.from_env reports."""
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(environ)
    return info.value.problems


# --- keyring ------------------------------------------------------------------------------


def test_keyring_from_keys_opens_older_and_seals_current() -> None:
    """Blobs of an older key open; new seals use the current key; ids are reported."""
    old_blob = MasterKeyring(OLD).seal("acme", ACME_SECRET)
    ring = MasterKeyring.from_keys(NEW, [OLD, OTHER])
    assert ring.open("acme", old_blob) == ACME_SECRET
    assert ring.seal("acme", ACME_SECRET).key_id == master_key_id(NEW) == ring.current_id
    assert ring.older_ids == [master_key_id(OLD), master_key_id(OTHER)]


def test_keyring_refuses_the_current_key_among_older_ones() -> None:
    """Listing the current key as an older one is a configuration error, not a no-op."""
    with pytest.raises(ConfigurationError, match="must not be the current"):
        MasterKeyring.from_keys(NEW, [OLD, NEW])


def test_derive_gives_current_then_older_subkeys() -> None:
    """derive() keys a purpose by the current key, then by each older key, in order."""
    current, older = MasterKeyring.from_keys(NEW, [OLD, OTHER]).derive(b"p")
    assert current == MasterKeyring(NEW).derive(b"p")[0]
    assert older == [MasterKeyring(OLD).derive(b"p")[0], MasterKeyring(OTHER).derive(b"p")[0]]


def test_hasher_hashes_lists_the_current_key_first() -> None:
    """hashes() starts with hash() and covers each older key (lookups by hash)."""
    old_only = ClientSecretHasher(OLD)
    hasher = ClientSecretHasher(NEW, older_keys=[OLD])
    assert hasher.hashes("tart_x") == [hasher.hash("tart_x"), old_only.hash("tart_x")]


def test_generated_key_is_a_valid_master_key_setting() -> None:
    """`master-key generate` output parses as MASTER_KEY and differs each time."""
    text = generate_master_key()
    assert Settings.from_env(env(MASTER_KEY=text)).master_key == base64.b64decode(text)
    assert generate_master_key() != text


# --- settings -----------------------------------------------------------------------------


def test_master_keys_old_parses_a_comma_separated_list() -> None:
    """Several keys, spaces around commas allowed, keep their order; unset is empty."""
    settings = Settings.from_env(env(MASTER_KEYS_OLD=f"{b64(OLD)} , {b64(OTHER)}"))
    assert settings.master_keys_old == (OLD, OTHER)
    assert Settings.from_env(env()).master_keys_old == ()
    assert b64(OLD) not in repr(settings) and "master_keys_old" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (f"{b64(OLD)},not-base64!", "key 2: must be base64"),
        (f"{b64(OLD)},", "key 2 is empty"),  # a stray comma is reported, not skipped
        (base64.b64encode(b"short").decode(), "key 1: must decode to exactly 32 bytes (got 5)"),
    ],
)
def test_bad_older_key_is_named_by_position_and_not_echoed(value: str, fragment: str) -> None:
    """A bad entry is reported with its position; no key material appears in the message."""
    found = problems(env(MASTER_KEYS_OLD=value))
    [message] = [p for p in found if "MASTER_KEYS_OLD" in p]
    assert message.startswith(f"TENANTAUTH_MASTER_KEYS_OLD {fragment}")
    assert not any(b64(OLD) in p for p in found)


def test_current_key_in_master_keys_old_is_a_problem() -> None:
    """MASTER_KEYS_OLD naming MASTER_KEY is refused with a clear message."""
    found = problems(env(MASTER_KEYS_OLD=f"{b64(OLD)},{b64(NEW)}"))
    assert "TENANTAUTH_MASTER_KEYS_OLD must not contain TENANTAUTH_MASTER_KEY" in found


# --- rotate and status --------------------------------------------------------------------


def rekeyed(svc: Services, current: bytes, *older: bytes) -> Services:
    """Return the same storage and cache as ``svc`` with another keyring (another replica's
    configuration)."""
    return Services.build(
        storage=svc.storage,
        cache=svc.cache,
        clock=svc.clock,
        keyring=MasterKeyring.from_keys(current, older),
        tokens=svc.tokens,
        caching=svc.caching,
        admin_token=ADMIN_TOKEN,
        limiter=svc.limiter,
        passwords=svc.passwords,
        auth=svc.auth,
    )


@pytest.fixture
def old(tmp_path: Path) -> Services:
    """Services under the old master key only, on SQLite + fakeredis."""
    return make_services(tmp_path / "t.db", FixedClock(), fake_cache())


def create(svc: Services, *ids: str) -> None:
    """Create tenants (acme's secret imported, so tokens can be compared)."""
    for tenant_id in ids:
        tenants.create_tenant(svc, tenant_id, tenant_id, secret=secret_text(ACME_SECRET))


def test_rotate_rewraps_every_secret_and_is_idempotent(old: Services) -> None:
    """rotate re-seals each tenant under the new key (secret unchanged, generation bumped);
    status counts move from the old id to the new; a second run changes nothing."""
    create(old, "t1", "t2", "t3")
    new = rekeyed(old, NEW, OLD)
    assert master_keys.status(new).secrets_by_key == {master_key_id(OLD): 3}
    assert master_keys.status(new).pending == 3
    before = tenants.get_tenant(new, "t2")
    report = master_keys.rotate(new, batch=2)
    assert (report.rewrapped, report.already_current, report.failed) == (3, 0, [])
    after = tenants.get_tenant(new, "t2")
    assert after.generation > before.generation and after.key_version == before.key_version
    assert after.sealed_secret is not None
    assert MasterKeyring(NEW).open(after.key_binding, after.sealed_secret) == ACME_SECRET
    found = master_keys.status(new)
    assert (found.secrets_by_key, found.pending) == ({master_key_id(NEW): 3}, 0)
    again = master_keys.rotate(new, batch=2)
    assert (again.rewrapped, again.already_current, again.failed) == (0, 3, [])


def test_rotate_reports_progress_per_batch(old: Services) -> None:
    """progress is called after each page with the running counts."""
    create(old, "t1", "t2", "t3", "t4", "t5")
    seen: list[tuple[int, int]] = []

    def progress(report: RotationReport) -> None:
        seen.append((report.seen, report.rewrapped))

    master_keys.rotate(rekeyed(old, NEW, OLD), progress, batch=2)
    assert seen == [(2, 2), (4, 4), (5, 5)]


def test_tenant_under_an_unconfigured_key_fails_and_others_go_on(old: Services) -> None:
    """A secret no configured key opens is a failure with the reason; the walk continues,
    exactly that tenant stays pending, and status names the unknown id."""
    create(old, "a1", "b2", "c3")
    create(rekeyed(old, OTHER), "b1")  # sealed under a key the rotating process lacks
    new = rekeyed(old, NEW, OLD)
    report = master_keys.rotate(new)
    assert report.rewrapped == 3
    assert [f.tenant_id for f in report.failed] == ["b1"]
    assert master_key_id(OTHER) in report.failed[0].reason
    found = master_keys.status(new)
    assert found.unknown == {master_key_id(OTHER): 1} and found.pending == 1


def test_tenant_created_during_rotation_by_a_lagging_replica(old: Services) -> None:
    """A tenant created mid-walk under the old key by a replica not yet reconfigured is
    re-wrapped if the walk has not passed it, and caught by the next run if it has."""
    create(old, "m1", "m2", "m3", "m4")
    new = rekeyed(old, NEW, OLD)
    created: list[str] = []

    def progress(report: RotationReport) -> None:
        if not created:
            create(old, "a0", "z9")  # a0 sorts before the walk's position, z9 after
            create(new, "n5")  # a reconfigured replica seals with the new key
            created.append("done")

    first = master_keys.rotate(new, progress, batch=2)
    assert (first.rewrapped, first.already_current) == (5, 1)  # m1..m4, z9; n5
    assert master_keys.status(new).secrets_by_key == {master_key_id(OLD): 1, master_key_id(NEW): 6}
    second = master_keys.rotate(new, batch=2)
    assert (second.rewrapped, second.already_current) == (1, 6)
    assert master_keys.status(new).pending == 0


def test_deleted_tenants_are_not_walked(old: Services) -> None:
    """Tombstones hold no secret: they are neither counted nor re-wrapped."""
    create(old, "gone", "kept")
    tenants.delete_tenant(old, "gone")
    new = rekeyed(old, NEW, OLD)
    assert master_keys.status(new).secrets_by_key == {master_key_id(OLD): 1}
    assert master_keys.rotate(new).rewrapped == 1


def test_rotate_keeps_a_cached_tenant_verifiable_without_the_old_key(old: Services) -> None:
    """After rotate, a process configured with only the new key opens the tenant's secret,
    even though the shared cache held the old blob before (the re-wrap fences it)."""
    create(old, "acme")
    assert (
        old.keys.verification_key("acme").material == ACME_SECRET
    )  # the shared cache now holds the old blob
    only_new = rekeyed(old, NEW)
    with pytest.raises(SecretDecryptionError):  # fail closed before the re-wrap
        only_new.keys.verification_key("acme")
    master_keys.rotate(rekeyed(old, NEW, OLD))
    assert only_new.keys.verification_key("acme").material == ACME_SECRET


def test_sealed_secret_under_another_key_id_is_what_status_counts() -> None:
    """KeyStatus.pending and unknown derive from the counts and the configured ids."""
    found = master_keys.KeyStatus("new", ["old"], {"new": 2, "old": 3, "gone": 1})
    assert (found.pending, found.unknown) == (4, {"gone": 1})
    assert SealedSecret("x", b"").key_id == "x"
