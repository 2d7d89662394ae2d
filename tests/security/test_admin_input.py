"""Hostile admin input beyond the body, on SQLite and PostgreSQL + Redis (issue 12).

- Audit time filters whose UTC equivalent does not exist (``9999-12-31T23:59:59-14:00``)
  overflowed in the storage adapter (500): now a 422 naming the filter, for the API and the
  CLI's path alike.
- A request refused because a path segment held NUL was answered but not audited: PostgreSQL
  text cannot hold NUL. Entries now store such text percent-encoded, so every refusal is
  recorded, on both backends, and the chain still verifies.
- A subject holding ``/`` (or a dot segment) could not be logged out over HTTP: a path segment
  cannot carry it. ``POST …/subjects/revoke`` names it in the body.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient

from tenantauth.domain.admin import audit
from tenantauth.domain.admin.admin_models import AdminPrincipal, AuditQuery
from tenantauth.domain.services import Services
from tenantauth.errors import InvalidRequestError
from tests.integration.admin_support import AUDIT, PASSWORD, audit_items
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    create_tenant,
    issue,
    verify_status,
)

ACME = f"{TENANTS}/acme"
#: Times whose UTC equivalent is before year 1 or after year 9999.
OVERFLOWING_TIMES = [
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:00:00-01:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:59:59.999999+01:00",
]
#: The extremes that do exist in UTC.
EDGE_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T14:00:00+14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T09:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
]


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("when", OVERFLOWING_TIMES)
def test_audit_times_without_a_utc_equivalent_are_422(
    client: FlaskClient, name: str, when: str
) -> None:
    """A ``since``/``until`` that has no UTC equivalent is a 422 naming the filter and the
    range, never a 500 from the storage adapter."""
    create_tenant(client, "acme")
    problem = assert_problem(client.get(AUDIT, query_string={name: when}, headers=ADMIN), 422)
    assert "0001-01-01T00:00:00Z" in problem["errors"]["query"][name][0]


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_audit_times_at_the_edges_of_the_range_are_accepted(client: FlaskClient, when: str) -> None:
    """The first and last representable instants, with any offset keeping them in range,
    filter normally."""
    create_tenant(client, "acme")
    since = assert_json(client.get(AUDIT, query_string={"since": when}, headers=ADMIN), 200)
    until = assert_json(client.get(AUDIT, query_string={"until": when}, headers=ADMIN), 200)
    assert len(since["items"]) + len(until["items"]) == 1


@pytest.mark.parametrize("when", OVERFLOWING_TIMES)
def test_the_domain_refuses_the_same_times_for_the_cli(services: Services, when: str) -> None:
    """``list_entries`` (which ``tenantauth audit list --since`` calls) refuses the same
    times with InvalidRequestError before reaching storage."""
    viewer, parsed = AdminPrincipal("cli:test"), datetime.fromisoformat(when)
    for query in (AuditQuery(since=parsed), AuditQuery(until=parsed)):
        with pytest.raises(InvalidRequestError, match="0001-01-01T00:00:00Z"):
            audit.list_entries(services, viewer, query)


#: (method, path, JSON body or None, the expected status, the target as stored). Each
#: request is refused for a value holding a control character, "%" or a mangled byte.
REFUSED: list[tuple[str, str, Any, int, str | None]] = [
    ("POST", f"{TENANTS}/tb%00/users/x/revoke", None, 404, "x"),
    ("PATCH", f"{TENANTS}/t%0Ab", {"name": "n"}, 404, None),
    ("DELETE", f"{ACME}/users/a%00b", None, 404, "a%00b"),
    ("POST", f"{ACME}/users/a%1B%5B31m/revoke", None, 422, "a%1B[31m"),
    ("POST", f"{ACME}/clients/c%00/rotate-secret", None, 404, "c%00"),
    ("POST", "/v1/admin/keys/k%00/revoke", None, 404, "k%00"),
    ("POST", f"{ACME}/users", {"username": "a\x00b", "password": PASSWORD}, 422, "a%00b"),
    ("POST", f"{ACME}/subjects/revoke", {"sub": "100%\x7f"}, 422, "100%25%7F"),
]
#: The tenant each entry names, as stored.
REFUSED_TENANTS = ["tb%00", "t%0Ab", "acme", "acme", "acme", None, "acme", "acme"]


def test_refusals_of_hostile_text_are_audited_escaped(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """Each refused request whose path or body held NUL, another control character or '%'
    is recorded (none is "NOT recorded"), its text percent-encoded so that decoding gives
    back what was sent, and the chain verifies."""
    create_tenant(client, "acme")
    caplog.set_level(logging.ERROR, logger="tenantauth")
    for method, path, body, status, _ in REFUSED:
        assert_problem(client.open(path, method=method, json=body, headers=ADMIN), status)
    assert "NOT recorded" not in caplog.text
    entries = audit_items(client)[: len(REFUSED)][::-1]
    stored = [(e["tenant_id"], e["target"], e["outcome"]) for e in entries]
    expected = [(t, r[4], str(r[3])) for t, r in zip(REFUSED_TENANTS, REFUSED, strict=True)]
    assert stored == expected
    assert unquote(entries[0]["tenant_id"]) == "tb\x00"
    assert audit.verify_chain(services).broken_seq is None


def test_a_successful_action_on_a_name_with_percent_is_stored_escaped(
    client: FlaskClient,
) -> None:
    """A valid username holding '%' is stored as '%25' (a stored value holds '%' only as an
    escape, so decoding is exact) and the action itself is unaffected."""
    create_tenant(client, "acme")
    body = {"username": "50%off", "password": PASSWORD}
    assert assert_json(client.post(f"{ACME}/users", json=body, headers=ADMIN), 201)
    entry = audit_items(client)[0]
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "user.create",
        "50%25off",
        "success",
    )
    assert unquote(entry["target"]) == "50%off"


@pytest.mark.parametrize(
    "subject",
    ["team/alice", "/lead", "trail/", "a//b", ".", "..", "a?b#c", "50%", " spaced ", "José/Ñ"],
)
def test_every_subject_a_token_can_have_can_be_logged_out(
    client: FlaskClient, subject: str
) -> None:
    """A token issued to a subject a URL path would mangle (slashes, dot segments, '?', '#',
    '%') is revoked by POST …/subjects/revoke, and only that subject's; the action is
    audited with the subject as target."""
    create_tenant(client, "acme")
    token, bystander = issue(client, "acme", sub=subject), issue(client, "acme", sub="bystander")
    r = client.post(f"{ACME}/subjects/revoke", json={"sub": subject}, headers=ADMIN)
    assert assert_json(r, 200)["subject"] == subject
    assert (verify_status(client, token), verify_status(client, bystander)) == (401, 200)
    entry = audit_items(client)[0]
    assert (entry["action"], unquote(entry["target"])) == ("user.revoke_tokens", subject)
