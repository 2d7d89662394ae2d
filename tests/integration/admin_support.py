"""Helpers of the admin-plane integration tests (no fixtures here)."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
from flask.testing import FlaskClient

from tests.integration.helpers import ADMIN, assert_json, bearer
from tests.support import Backend

KEYS = "/v1/admin/keys"
AUDIT = "/v1/admin/audit"
PASSWORD = "correct horse battery staple"


def make_key(client: FlaskClient, tenant_id: str | None = None, **body: Any) -> dict[str, Any]:
    """Create an admin key as the bootstrap admin; return the creation response body."""
    payload = {"name": f"key for {tenant_id or 'all'}", **body}
    if tenant_id is not None:
        payload["tenant_id"] = tenant_id
    return assert_json(client.post(KEYS, json=payload, headers=ADMIN), 201)  # type: ignore[no-any-return]


def key_headers(made: dict[str, Any]) -> dict[str, str]:
    """Return the Authorization header carrying a created key."""
    return bearer(made["key"])


def audit_items(client: FlaskClient, headers: dict[str, str] = ADMIN, **query: Any) -> list[Any]:
    """Return the audit entries visible to ``headers`` (newest first), one page of 500."""
    r = client.get(AUDIT, query_string={"limit": 500, **query}, headers=headers)
    return assert_json(r, 200)["items"]  # type: ignore[no-any-return]


def raw_sql(backend: Backend, statement: str) -> None:
    """Run one statement on the backend's database behind the service's back (tampering)."""
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.database_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement)
        conn.close()
    else:
        with psycopg.connect(backend.database_url, autocommit=True) as pg:
            pg.execute(statement.encode())


def without_volatile(body: dict[str, Any]) -> dict[str, Any]:
    """Return a problem body without the members that differ per request."""
    return {k: v for k, v in body.items() if k not in ("request_id", "instance")}
