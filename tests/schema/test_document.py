"""The served OpenAPI document states the input rules and error texts (api/docs.py, rules.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantauth.api import rules
from tenantauth.app import create_app
from tests.support import Backend, FixedClock, make_settings

FORBIDDEN = "The admin key is limited to another tenant, or this needs a global admin."


def _document(backend: Backend, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    app = create_app(make_settings(backend, tmp_path, **overrides), clock=FixedClock())
    try:
        return app.test_client().get("/openapi.json").get_json()  # type: ignore[no-any-return]
    finally:
        app.extensions["tenantauth"]["services"].close()


@pytest.fixture
def document(sqlite_backend: Backend, tmp_path: Path) -> dict[str, Any]:
    """The document of an app with a non-default token lifetime cap (1 hour)."""
    return _document(sqlite_backend, tmp_path, max_token_ttl=3600)


def _responses(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                for status, response in operation["responses"].items():
                    yield f"{method.upper()} {path}", status, response


def test_every_error_response_has_a_text(document: dict[str, Any]) -> None:
    """No documented response is the bare placeholder "Error"; 403 says why it happens."""
    described = list(_responses(document))
    assert [(op, s) for op, s, r in described if r.get("description") == "Error"] == []
    forbidden = [r["description"] for _, s, r in described if s == "403"]
    assert forbidden, "no operation documents 403"
    assert set(forbidden) == {FORBIDDEN}


def test_path_parameters_carry_their_patterns(document: dict[str, Any]) -> None:
    """tenant_id, username, client_id, key_id and server_id path parameters state their
    patterns (the protected request's path a gateway appends to /v1/verify/ is any path: no
    pattern)."""
    expected = {
        "tenant_id": rules.TENANT_ID,
        "username": rules.USERNAME,
        "client_id": rules.CLIENT_ID,
        "key_id": rules.KEY_ID,
        "forwarded": None,
        "server_id": rules.SERVER_ID,
    }
    seen = {}
    for item in document["paths"].values():
        for parameter in item.get("parameters", []):
            seen.setdefault(parameter["name"], set()).add(parameter["schema"].get("pattern"))
    assert seen == {name: {pattern} for name, pattern in expected.items()}


def test_bodies_state_their_rules(document: dict[str, Any]) -> None:
    """Secrets, names, scopes, claims and cursors carry their rules; token lifetimes show the
    configured cap; form bodies take each unknown parameter once, as a string."""
    schemas = document["components"]["schemas"]
    tenant = schemas["TenantCreateRequest"]["properties"]
    assert tenant["secret"]["pattern"] == rules.SECRET
    assert tenant["name"]["pattern"] == rules.NAME
    assert tenant["max_token_ttl"]["maximum"] == 3600
    assert schemas["TokenIssueRequest"]["properties"]["ttl"]["maximum"] == 3600
    issue = schemas["TokenIssueRequest"]["properties"]
    assert issue["scope"]["pattern"] == rules.SCOPE
    assert issue["sub"]["pattern"] == rules.PRINTABLE
    assert issue["claims"]["propertyNames"] == rules.CLAIM_NAMES
    scopes = schemas["ClientCreateRequest"]["properties"]["scopes"]
    assert (scopes["items"]["pattern"], scopes["uniqueItems"]) == (rules.SCOPE_TOKEN, True)
    for form in ("TokenForm", "TokenFormat", "IntrospectionForm"):
        assert schemas[form]["additionalProperties"] == {"type": "string"}
    listing = document["paths"]["/v1/admin/tenants"]["get"]["parameters"]
    cursor = next(p for p in listing if p["name"] == "cursor")["schema"]
    assert (cursor["pattern"], cursor["format"]) == (rules.CURSOR, rules.CURSOR_FORMAT)
