"""Schema instances are shared, not copied, by ``deepcopy`` (api/schemas.py ``Schema``): what
that saves is import time; what it must not change is the served OpenAPI document."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
from pathlib import Path

import marshmallow as ma

import tenantauth.api
from tenantauth.api import discovery, introspection, oauth, schemas
from tenantauth.api.admin import admin_schemas
from tenantauth.api.schemas import Schema, TenantCreateRequestSchema

ROOT = Path(__file__).resolve().parents[2]
# Builds the app of ``role`` (embedded: SQLite in a temporary directory) in a fresh interpreter
# and prints its document; ``copies`` takes the share away before any API module is imported,
# so every decorator deep-copies schema instances as flask-smorest does by default.
DOCUMENT = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
if {copies!r}:
    from tenantauth.api import schemas
    del schemas.Schema.__deepcopy__
from tests.support import Backend, make_settings
from tenantauth.app import create_app
state = Path(tempfile.mkdtemp())
backend = Backend(name="sqlite", database_url=f"sqlite:///{{state}}/t.db", redis_url=None)
app = create_app(make_settings(backend, state, role={role!r}, metrics_port=0))
sys.stdout.write(app.test_client().get("/openapi.json").get_data(as_text=True))
"""


def _document(role: str, *, copies: bool) -> str:
    script = DOCUMENT.format(root=str(ROOT), copies=copies, role=role)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_deep_copy_of_a_schema_is_the_schema_and_its_container_is_new() -> None:
    """The instance is shared; the dicts and lists around it are still copied."""
    schema = TenantCreateRequestSchema()
    doc = {"responses": {200: [{"schema": schema}]}}
    copied = copy.deepcopy(doc)
    assert copied == doc and copied is not doc
    assert copied["responses"][200] is not doc["responses"][200]
    assert copied["responses"][200][0]["schema"] is schema


def test_the_served_document_is_byte_for_byte_the_one_copies_made() -> None:
    """Fails if any decorator or apispec changed a schema instance it had been handed a copy
    of: the shared instance would then carry the change into another view's documentation.
    (The ``all`` role documents every view; the other roles document subsets of them.)"""
    shared = _document("all", copies=False)
    assert len(json.loads(shared)["paths"]) > 20
    assert shared == _document("all", copies=True)


def test_every_api_schema_derives_from_the_shared_base() -> None:
    """A schema on marshmallow's own base would be copied again (no error, only slower)."""
    modules = (schemas, admin_schemas, oauth, discovery, introspection)
    found = [
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ma.Schema) and cls.__module__.startswith(tenantauth.api.__name__)
    ]
    assert len(found) > 30
    assert [cls for cls in found if not issubclass(cls, Schema)] == []
