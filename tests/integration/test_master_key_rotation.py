"""Master-key rotation over HTTP on both backends: replicas configured before, during and after
a rotation share one database (and Redis), as a rolling deployment does (README, "Master-key
rotation")."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tenantauth.app import create_app
from tenantauth.crypto.envelope import master_key_id
from tenantauth.domain.admin import audit, master_keys
from tenantauth.domain.admin.admin_models import AuditEvent
from tenantauth.domain.admin.admins import key_hasher as admin_key_hasher
from tenantauth.domain.services import Services
from tests.integration.admin_support import raw_sql
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_problem,
    bearer,
    create_tenant,
    issue,
    verify_status,
)
from tests.integration.test_cli import (  # noqa: F401 - embedded and production are fixtures
    embedded,
    production,
)
from tests.integration.test_cli import ok as cli_ok
from tests.integration.test_cli import ok_json as cli_json
from tests.integration.test_cli import run as cli_run
from tests.integration.test_oauth_endpoints import basic, ok, post
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, add_client, add_user
from tests.support import MASTER_KEY, Backend, FixedClock, make_settings

OLD = MASTER_KEY  # what the `app`/`client`/`services` fixtures run with: the "before" replica
NEW = bytes(range(32, 64))
TOKEN = "/v1/tenants/acme/token"
Replica = Callable[..., tuple[FlaskClient, Services]]


@pytest.fixture
def replica(backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Replica]:
    """Build more replicas on the same database and Redis: ``replica(current, *older)``."""
    apps: list[Flask] = []

    def build(current: bytes, *older: bytes) -> tuple[FlaskClient, Services]:
        settings = make_settings(backend, tmp_path, master_key=current, master_keys_old=older)
        app = create_app(settings, clock=clock)
        apps.append(app)
        return app.test_client(), app.extensions["tenantauth"]["services"]

    yield build
    for app in apps:
        app.extensions["tenantauth"]["services"].close()


@pytest.fixture
def acme(client: FlaskClient, services: Services) -> None:
    """Tenant acme, created under the old key, with client tac_app and user alice."""
    create_tenant(client, "acme")
    add_client(services, "acme")
    add_user(services, "acme")


def stored_client_hash(svc: Services) -> bytes:
    """Return tac_app's stored secret hash."""
    with svc.storage.transaction() as tx:
        stored = tx.clients.get("acme", CLIENT_ID)
    assert stored is not None
    return stored.secret_hash


def client_credentials(client: FlaskClient) -> int:
    """Return the status of a client_credentials request as tac_app."""
    return post(client, TOKEN, {"grant_type": "client_credentials"}, headers=basic()).status_code


def refresh(client: FlaskClient, token: str) -> str:
    """Exchange a refresh token (must succeed); return its successor."""
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]  # type: ignore[no-any-return]


def refresh_error(client: FlaskClient, token: str) -> str:
    """Exchange a refresh token that must fail with 400; return the OAuth error."""
    form = {"grant_type": "refresh_token", "refresh_token": token}
    r = post(client, TOKEN, form, headers=basic())
    assert r.status_code == 400, r.get_data(as_text=True)
    return r.get_json()["error"]  # type: ignore[no-any-return]


def login(client: FlaskClient) -> str:
    """Password grant for alice; return the refresh token."""
    form = {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    return ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]  # type: ignore[no-any-return]


def test_tokens_survive_rotation_and_dropping_the_old_key(
    client: FlaskClient, replica: Replica
) -> None:
    """Tokens issued before stay valid on a replica with both keys, through the re-wrap, and
    on a replica with only the new key afterwards; status counts move to the new id."""
    for tenant_id in ("acme", "beta", "gamma"):
        create_tenant(client, tenant_id)
    tokens = [issue(client, t) for t in ("acme", "beta", "gamma")]
    both, svc = replica(NEW, OLD)
    assert [verify_status(both, t) for t in tokens] == [200, 200, 200]  # warms Redis: old blobs
    assert master_keys.status(svc).secrets_by_key == {master_key_id(OLD): 3}
    report = master_keys.rotate(svc)
    assert (report.rewrapped, report.failed) == (3, [])
    assert master_keys.status(svc).secrets_by_key == {master_key_id(NEW): 3}
    only_new, _ = replica(NEW)
    assert [verify_status(only_new, t) for t in tokens] == [200, 200, 200]
    assert verify_status(only_new, issue(only_new, "beta")) == 200
    again = master_keys.rotate(svc)
    assert (again.rewrapped, again.already_current) == (0, 3)


@pytest.mark.usefixtures("acme")
def test_client_secret_is_rehashed_under_the_new_key_on_use(
    services: Services, replica: Replica
) -> None:
    """A client secret hashed under the old key authenticates on a replica holding both keys,
    which stores its hash under the new key; a new-key-only replica then accepts it too."""
    before = stored_client_hash(services)
    both, svc = replica(NEW, OLD)
    assert client_credentials(both) == 200
    after = stored_client_hash(services)
    assert after != before and after == svc.client_secrets.hash(CLIENT_SECRET)
    master_keys.rotate(svc)
    only_new, _ = replica(NEW)
    assert client_credentials(only_new) == 200


@pytest.mark.usefixtures("acme")
def test_unused_client_secret_fails_once_the_old_key_is_dropped(replica: Replica) -> None:
    """The documented cost: a secret never used since the rotation is invalid_client (401)
    on a replica without the old key, and rotating it fixes that."""
    only_new, _ = replica(NEW)
    master_keys.rotate(replica(NEW, OLD)[1])  # tenant secrets are not the issue here
    assert client_credentials(only_new) == 401
    r = only_new.post(f"{TENANTS}/acme/clients/{CLIENT_ID}/rotate-secret", headers=ADMIN)
    assert r.status_code == 200, r.get_data(as_text=True)
    secret = r.get_json()["client_secret"]
    form = {"grant_type": "client_credentials"}
    assert post(only_new, TOKEN, form, headers=basic(CLIENT_ID, secret)).status_code == 200


@pytest.mark.usefixtures("acme")
def test_refresh_token_from_before_is_found_and_its_successor_is_under_the_new_key(
    client: FlaskClient, replica: Replica
) -> None:
    """A refresh token hashed under the old key is exchanged on a replica with both keys; its
    successor is stored under the new key, so a new-key-only replica takes it; a token
    nobody used is invalid_grant there (it must wait out REFRESH_TOKEN_TTL or re-login)."""
    first, idle = login(client), login(client)
    both, svc = replica(NEW, OLD)
    second = refresh(both, first)
    with svc.storage.transaction() as tx:
        assert tx.refresh_tokens.get("acme", svc.refresh_hasher.hash(second)) is not None
    master_keys.rotate(svc)
    only_new, _ = replica(NEW)
    assert refresh(only_new, second)
    assert refresh_error(only_new, idle) == "invalid_grant"


@pytest.mark.usefixtures("acme")
def test_refresh_token_from_before_can_be_revoked_and_introspected(
    client: FlaskClient, replica: Replica
) -> None:
    """Revocation (RFC 7009) and introspection (RFC 7662) find an old-key refresh token too."""
    token = login(client)
    both, _ = replica(NEW, OLD)
    form = {"token": token}
    seen = ok(post(both, "/v1/tenants/acme/introspect", form, headers=basic()))
    assert seen["active"] is True
    assert post(both, "/v1/tenants/acme/revoke", form, headers=basic()).status_code == 200
    assert refresh_error(both, token) == "invalid_grant"


def test_replica_without_the_old_key_fails_closed_before_the_rewrap(
    client: FlaskClient, replica: Replica
) -> None:
    """A replica configured without the old key answers 503 (secret_decryption_failed) for
    a not-yet-rewrapped tenant: verify and issue, cold and with a warm cache; never 200/500."""
    create_tenant(client, "acme")
    token = issue(client, "acme")
    only_new, _ = replica(NEW)
    for _ in range(2):  # the first answer may fill the cache, the second reads it
        assert_problem(only_new.get("/v1/verify", headers=bearer(token)), 503)
        assert_problem(
            only_new.post(f"{TENANTS}/acme/tokens", json={"sub": "u"}, headers=ADMIN), 503
        )
    body = assert_problem(only_new.get("/v1/verify", headers=bearer(token)), 503)
    assert body["code"] == "secret_decryption_failed"
    assert verify_status(client, token) == 200  # the old replica is unaffected


# --------------------------------------------------------------------------- the CLI


def b64(key: bytes) -> str:
    """Encode a key as TENANTAUTH_MASTER_KEY reads it."""
    return base64.b64encode(key).decode()


def test_cli_procedure_in_embedded_mode(
    embedded: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """generate → deploy new+old → rotate (progress, summary, audited) → status shows no
    secret left under the old id → tokens from before verify with the new key alone."""
    cli_ok("tenant", "create", "acme", "--name", "Acme")
    cli_ok("tenant", "create", "beta", "--name", "Beta")
    token = cli_ok("token", "issue", "acme", "--sub", "u1").stdout.strip()
    old = (embedded / "master.key").read_text().strip()
    generated = cli_ok("master-key", "generate")
    new = generated.stdout.strip()
    assert generated.stdout == new + "\n" and len(base64.b64decode(new)) == 32
    monkeypatch.setenv("TENANTAUTH_MASTER_KEY", new)
    monkeypatch.setenv("TENANTAUTH_MASTER_KEYS_OLD", old)
    before = cli_json("master-key", "status")
    old_id = master_key_id(base64.b64decode(old))
    assert (before["tenant_secrets"], before["pending"]) == ({old_id: 2}, 2)
    assert before["older_ids"] == [old_id] and "REFRESH_TOKEN_TTL" in before["note"]
    rotated = cli_run("master-key", "rotate", "--batch", "1", "--json")
    assert rotated.exit_code == 0, rotated.output
    summary = json.loads(rotated.stdout)
    assert (summary["rewrapped"], summary["already_current"], summary["failed"]) == (2, 0, [])
    progress, checkpointed = rotated.stderr.splitlines()[:2], rotated.stderr.splitlines()[2:]
    assert progress == [
        "1 tenant(s) seen: 1 re-wrapped, 0 already current, 0 failed",
        "2 tenant(s) seen: 2 re-wrapped, 0 already current, 0 failed",
    ]
    assert len(checkpointed) == 1 and checkpointed[0].startswith("audit chain checkpointed")
    after = cli_json("master-key", "status")
    assert (after["tenant_secrets"], after["pending"]) == ({summary["current_id"]: 2}, 0)
    assert cli_ok("audit", "verify").stdout.startswith("audit chain intact")  # old key still set
    monkeypatch.delenv("TENANTAUTH_MASTER_KEYS_OLD")
    assert cli_ok("token", "verify", token).stdout.startswith("VALID")


def test_audit_chain_verifies_after_the_old_key_is_dropped(
    embedded: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An audit chain written before a master-key rotation still verifies after the old key
    is dropped: `master-key rotate` ends with a checkpoint under the new key."""
    cli_ok("admin-keys", "create", "--name", "ops")  # audited under the old key
    monkeypatch.setenv("TENANTAUTH_MASTER_KEY", b64(NEW))
    monkeypatch.setenv("TENANTAUTH_MASTER_KEYS_OLD", (embedded / "master.key").read_text().strip())
    cli_ok("master-key", "rotate")
    monkeypatch.delenv("TENANTAUTH_MASTER_KEYS_OLD")
    assert cli_ok("audit", "verify").stdout.startswith("audit chain intact")


def test_cli_rotate_exits_1_naming_a_tenant_it_cannot_open(
    embedded: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tenant under a key the process lacks: the others are re-wrapped, the failure is
    named on stderr, the exit status is 1, and status flags the unknown id."""
    cli_ok("tenant", "create", "acme", "--name", "Acme")
    monkeypatch.setenv("TENANTAUTH_MASTER_KEY", b64(bytes(range(64, 96))))
    cli_ok("tenant", "create", "lost", "--name", "Lost")
    monkeypatch.setenv("TENANTAUTH_MASTER_KEY", b64(NEW))
    monkeypatch.setenv("TENANTAUTH_MASTER_KEYS_OLD", (embedded / "master.key").read_text().strip())
    result = cli_run("master-key", "rotate")
    assert result.exit_code == 1
    assert "1 re-wrapped, 0 already current, 1 failed" in result.stdout
    assert "error: tenant lost: no master key with id" in result.stderr
    status = cli_ok("master-key", "status")
    assert "NOT CONFIGURED" in status.stdout and "cannot be verified (503)" in status.stderr


def test_cli_help_states_the_procedure() -> None:
    """`master-key --help` and `rotate --help` list the five steps and the refresh caveat."""
    for args in (("master-key", "--help"), ("master-key", "rotate", "--help")):
        text = " ".join(cli_ok(*args).stdout.split())
        for step in ("1. tenantauth master-key generate", "3. tenantauth master-key rotate"):
            assert step in text
        assert "TENANTAUTH_MASTER_KEYS_OLD=<old>" in text and "REFRESH_TOKEN_TTL" in text


@pytest.mark.usefixtures("production")
def test_cli_rotate_in_production_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL + Redis the same commands re-wrap and report."""
    cli_ok("tenant", "create", "acme", "--name", "Acme")
    monkeypatch.setenv("TENANTAUTH_MASTER_KEY", b64(NEW))
    monkeypatch.setenv("TENANTAUTH_MASTER_KEYS_OLD", b64(OLD))
    assert cli_json("master-key", "rotate")["rewrapped"] == 1
    assert cli_json("master-key", "status")["pending"] == 0


def test_admin_key_is_rehashed_under_the_new_key_on_use(
    client: FlaskClient, services: Services, replica: Replica
) -> None:
    """An admin API key created under the old master key works on a replica holding both
    keys, which moves its hash to the new key; a new-key-only replica then accepts it too."""
    r = client.post("/v1/admin/keys", json={"name": "ops"}, headers=ADMIN)
    assert r.status_code == 201, r.get_data(as_text=True)
    key, key_id = r.get_json()["key"], r.get_json()["id"]
    bearer = {"Authorization": f"Bearer {key}"}
    only_new, _ = replica(NEW)
    assert only_new.get(TENANTS, headers=bearer).status_code == 401  # not moved yet
    both, svc = replica(NEW, OLD)
    assert both.get(TENANTS, headers=bearer).status_code == 200
    with services.storage.transaction() as tx:
        stored = tx.admin_keys.get(key_id)
    assert stored is not None and stored.key_hash == admin_key_hasher(svc).hash(key)
    assert only_new.get(TENANTS, headers=bearer).status_code == 200


def _checkpointed(client: FlaskClient, replica: Replica) -> Services:
    """Audit entries under the old key, a master-key rotation ending in a checkpoint; return
    the services of a replica holding only the new key."""
    create_tenant(client, "acme")
    client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)
    _, both = replica(NEW, OLD)
    master_keys.rotate(both)
    audit.checkpoint(both, AuditEvent("cli", None, "x", None, "cli-test", "success"))
    client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)  # and one more under the old replica
    return replica(NEW)[1]


def test_a_checkpoint_vouches_for_entries_of_a_dropped_key(
    client: FlaskClient, replica: Replica
) -> None:
    """Entries keyed by the old master key verify without it, through the checkpoint."""
    only_new = _checkpointed(client, replica)
    report = audit.verify_chain(only_new)
    # The last entry was written by a replica still on the old key, after the checkpoint:
    # nothing covers it yet, which is reported (run the rotation's last step again).
    assert report.broken_seq == report.checked, report
    assert report.reason is not None and "no later checkpoint" in report.reason
    audit.checkpoint(replica(NEW, OLD)[1], AuditEvent("cli", None, "x", None, "r2", "success"))
    assert audit.verify_chain(only_new).broken_seq is None


def test_editing_an_entry_of_a_dropped_key_breaks_the_checkpoint(
    client: FlaskClient, replica: Replica, backend: Backend
) -> None:
    """The checkpoint's digest covers the content: an edit behind it is detected."""
    only_new = _checkpointed(client, replica)
    raw_sql(backend, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1")
    report = audit.verify_chain(only_new)
    assert report.broken_seq is not None and report.broken_seq > 1, report
    assert report.reason is not None and "do not match checkpoint" in report.reason


def test_without_a_checkpoint_a_dropped_key_is_reported(
    client: FlaskClient, replica: Replica
) -> None:
    """No checkpoint: entries of a dropped key cannot be vouched for, and verify says so."""
    create_tenant(client, "acme")
    report = audit.verify_chain(replica(NEW)[1])
    assert report.broken_seq == 1, report
