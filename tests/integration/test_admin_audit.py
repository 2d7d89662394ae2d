"""The audit log over HTTP and its chain, on both backends: what is recorded, how it is
filtered and paged, and that editing, deleting or reordering a row is detected."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from tenantauth.domain.admin import audit
from tenantauth.domain.services import Services
from tests.integration.admin_support import (
    AUDIT,
    KEYS,
    PASSWORD,
    audit_items,
    key_headers,
    make_key,
    raw_sql,
)
from tests.integration.helpers import ADMIN, TENANTS, assert_json, assert_problem, create_tenant
from tests.support import Backend


def entry_of(items: list[Any], action: str) -> dict[str, Any]:
    """Return the newest entry of ``action``."""
    return next(e for e in items if e["action"] == action)


def test_each_admin_action_is_recorded_with_its_context(client: FlaskClient) -> None:
    """Tenant, user, client, key and revocation actions each leave one entry naming actor,
    tenant, target, the response's request id and the outcome; reads leave none."""
    create_tenant(client, "acme")
    made = make_key(client, "acme")
    headers = key_headers(made)
    users = f"{TENANTS}/acme/users"
    r = client.post(users, json={"username": "alice", "password": PASSWORD}, headers=headers)
    assert_json(r, 201)
    client.patch(f"{users}/alice", json={"status": "disabled"}, headers=headers)
    client.post(f"{users}/alice/revoke", headers=headers)
    client.post(f"{TENANTS}/acme/rotate", headers=headers)
    client.get(f"{users}/alice", headers=headers)
    client.post(f"{KEYS}/{made['id']}/revoke", headers=ADMIN)
    items = audit_items(client)
    assert [e["action"] for e in items] == [
        "admin_key.revoke",
        "tenant.rotate",
        "user.revoke_tokens",
        "user.update",
        "user.create",
        "admin_key.create",
        "tenant.create",
    ]
    created = entry_of(items, "user.create")
    assert {k: created[k] for k in ("actor", "tenant_id", "target", "outcome")} == {
        "actor": made["id"],
        "tenant_id": "acme",
        "target": "alice",
        "outcome": "success",
    }
    assert created["request_id"] == r.headers["X-Request-Id"]
    assert entry_of(items, "tenant.create")["actor"] == "bootstrap"
    assert entry_of(items, "admin_key.create")["target"] == made["id"]
    assert [e["seq"] for e in items] == list(range(len(items), 0, -1))


def test_refusals_and_failures_are_recorded_with_their_status(client: FlaskClient) -> None:
    """A 403 out of scope, a 404, a 409 and a 422 are recorded with that status; a 401 (no
    actor) is not recorded at all."""
    create_tenant(client, "acme")
    headers = key_headers(make_key(client, "acme"))
    body = {"username": "alice", "password": PASSWORD}
    client.post(f"{TENANTS}/beta/users", json=body, headers=headers)  # 403
    client.delete(f"{TENANTS}/acme/users/nobody", headers=headers)  # 404
    client.post(TENANTS, json={"id": "acme", "name": "Again"}, headers=ADMIN)  # 409
    client.post(f"{TENANTS}/acme/users", json={"username": "x"}, headers=headers)  # 422
    before = len(audit_items(client))
    client.post(TENANTS, json={"id": "gamma", "name": "G"}, headers={"Authorization": "Bearer x"})
    items = audit_items(client)
    assert len(items) == before
    outcomes = [(e["action"], e["tenant_id"], e["outcome"]) for e in items[:4]]
    assert outcomes == [
        ("user.create", "acme", "422"),
        ("tenant.create", "acme", "409"),
        ("user.delete", "acme", "404"),
        ("user.create", "beta", "403"),
    ]


def test_filters_and_cursor_pagination(client: FlaskClient) -> None:
    """tenant, action, actor and time filters combine; limit + next_cursor visit each match
    once, newest first; malformed filters and cursors are 422."""
    for tid in ("acme", "beta", "gamma"):
        create_tenant(client, tid)
        client.post(f"{TENANTS}/{tid}/rotate", headers=ADMIN)
    key = make_key(client)
    client.post(f"{TENANTS}/beta/rotate", headers=key_headers(key))
    assert [e["tenant_id"] for e in audit_items(client, action="tenant.rotate")] == [
        "beta",
        "gamma",
        "beta",
        "acme",
    ]
    assert len(audit_items(client, tenant="beta", action="tenant.rotate")) == 2
    assert [e["tenant_id"] for e in audit_items(client, actor=key["id"])] == ["beta"]
    first = audit_items(client)[-1]["occurred_at"]
    assert len(audit_items(client, since=first, until=first)) == 8
    assert audit_items(client, until="2000-01-01T00:00:00+00:00") == []
    seen: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = assert_json(client.get(AUDIT, query_string=query, headers=ADMIN), 200)
        seen += [e["seq"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == list(range(8, 0, -1))
    for bad in ({"since": "yesterday"}, {"since": "2027-01-01T00:00:00"}, {"cursor": "YQ"}):
        assert_problem(client.get(AUDIT, query_string=bad, headers=ADMIN), 422)


@pytest.mark.parametrize(
    ("tamper", "broken_seq", "words"),
    [
        (["UPDATE audit_log SET outcome = '500' WHERE seq = 2"], 2, "does not match"),
        (["UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"], 3, "does not match"),
        (["DELETE FROM audit_log WHERE seq = 2"], 2, "missing"),
        (
            [
                "UPDATE audit_log SET seq = 100 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 100",
            ],
            2,
            "does not link",
        ),
    ],
    ids=["edit-outcome", "edit-actor", "delete", "reorder"],
)
def test_tampering_is_detected(  # noqa: PLR0917 - pytest passes fixtures positionally
    client: FlaskClient,
    services: Services,
    backend: Backend,
    tamper: list[str],
    broken_seq: int,
    words: str,
) -> None:
    """An intact chain verifies; after one edited, deleted or swapped row, verification
    names the first broken entry."""
    create_tenant(client, "acme")
    client.post(f"{TENANTS}/beta/rotate", headers=key_headers(make_key(client, "acme")))
    client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)
    intact = audit.verify_chain(services)
    assert (intact.checked, intact.broken_seq) == (4, None)
    for statement in tamper:
        raw_sql(backend, statement)
    report = audit.verify_chain(services)
    assert report.broken_seq == broken_seq, report
    assert report.reason is not None and words in report.reason


def test_verification_walks_in_batches(client: FlaskClient, services: Services) -> None:
    """A chain longer than one batch verifies whole (the batch boundary keeps the link)."""
    create_tenant(client, "acme")
    for _ in range(6):
        client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)
    report = audit.verify_chain(services, batch=2)
    assert (report.checked, report.head_seq, report.broken_seq) == (7, 7, None)


def test_a_lost_audit_write_does_not_undo_the_reply(
    client: FlaskClient, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """If the entry cannot be written after the action committed, the client still gets the
    action's response and the entry is logged at ERROR (the documented trade-off)."""
    # Renamed, not dropped, and put back: the PostgreSQL database is shared by the whole run.
    raw_sql(backend, "ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        with caplog.at_level(logging.ERROR, logger="tenantauth.api.admin.auditing"):
            created = create_tenant(client, "acme")
    finally:
        raw_sql(backend, "ALTER TABLE audit_log_away RENAME TO audit_log")
    assert created["id"] == "acme"
    assert any(
        "audit entry NOT recorded" in r.getMessage() and "tenant.create" in r.getMessage()
        for r in caplog.records
    )


def _published_heads(caplog: pytest.LogCaptureFixture) -> list[audit.PublishedHead]:
    """The heads the service published in its log, oldest first (`audit head SEQ:HASH`)."""
    return [
        audit.PublishedHead.parse(r.getMessage().removeprefix("audit head "))
        for r in caplog.records
        if r.name == "tenantauth.audit.head"
    ]


@pytest.mark.parametrize(
    ("cut", "statement"),
    [(1, "DELETE FROM audit_log WHERE seq > 11"), (10, "DELETE FROM audit_log WHERE seq > 2")],
    ids=["newest-1", "newest-10"],
)
def test_a_published_head_catches_the_newest_entries_cut_off(  # noqa: PLR0917 - fixtures
    client: FlaskClient,
    services: Services,
    backend: Backend,
    caplog: pytest.LogCaptureFixture,
    cut: int,
    statement: str,
) -> None:
    """Every change logs the new head; deleting the newest 1 or 10 entries leaves a chain that
    verifies on its own, but not against the last published head."""
    caplog.set_level(logging.INFO, logger="tenantauth.audit.head")
    create_tenant(client, "acme")
    for _ in range(11):
        client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)
    heads = _published_heads(caplog)
    assert [h.seq for h in heads] == list(range(1, 13))
    newest = heads[-1]
    assert audit.verify_chain(services, published=newest).broken_seq is None
    raw_sql(backend, statement)
    alone = audit.verify_chain(services)
    assert (alone.broken_seq, alone.head_seq) == (None, 12 - cut)  # the known limit
    report = audit.verify_chain(services, published=newest)
    assert report.broken_seq == 13 - cut, report
    assert report.reason is not None and "truncated" in report.reason
    assert audit.verify_chain(services, published=heads[11 - cut]).broken_seq is None


def test_a_published_head_catches_a_rewritten_tail(
    client: FlaskClient, services: Services, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Cutting the newest entry and appending another in its place keeps the chain linked,
    but the entry at the published seq is no longer the published one."""
    caplog.set_level(logging.INFO, logger="tenantauth.audit.head")
    create_tenant(client, "acme")
    client.post(f"{TENANTS}/acme/rotate", headers=ADMIN)
    published = _published_heads(caplog)[-1]
    assert published.seq == 2
    raw_sql(backend, "DELETE FROM audit_log WHERE seq = 2")
    client.patch(f"{TENANTS}/acme", json={"name": "Other"}, headers=ADMIN)
    assert audit.verify_chain(services).broken_seq is None
    report = audit.verify_chain(services, published=published)
    assert report.broken_seq == published.seq
    assert report.reason is not None and "not the one published" in report.reason


@pytest.mark.parametrize("text", ["", "0:" + "0" * 64, "1:abc", "x:" + "0" * 64, "1:" + "g" * 64])
def test_a_published_head_must_be_seq_colon_hash(text: str) -> None:
    """A head is SEQ:HASH with seq >= 1 and 64 hex digits; anything else is refused."""
    with pytest.raises(ValueError, match="SEQ:HASH"):
        audit.PublishedHead.parse(text)
