"""The request-body JSON parser (api/bodies.py) and the escaping of audit text
(domain/admin/audit_input.py): pure functions, no app."""

from __future__ import annotations

import datetime
import importlib
import json
import pkgutil
import sys
import uuid
from typing import Any
from urllib.parse import unquote

import flask_smorest
import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

import tenantauth.api
from tenantauth.api.bodies import Blueprint, BodyParser, StrictJSONProvider
from tenantauth.api.strict_json import MAX_NUMBER_LENGTH, strict_loads
from tenantauth.domain.admin.audit_input import escape


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": [1, -2, 3.5, 1e308, 5e-324, true, null, "\\ud83d\\ude00"]}', None),
        ("9" * MAX_NUMBER_LENGTH, int("9" * MAX_NUMBER_LENGTH)),
        ("-" + "9" * (MAX_NUMBER_LENGTH - 1), -int("9" * (MAX_NUMBER_LENGTH - 1))),
        ("1e-999", 0.0),
        ('"\\u00e9"', "é"),
    ],
)
def test_ordinary_json_reads_as_the_stdlib_reads_it(text: str, value: Any) -> None:
    """Valid JSON within the bounds gives exactly what json.loads gives."""
    assert strict_loads(text) == json.loads(text)
    assert strict_loads(text.encode()) == json.loads(text)
    if value is not None:
        assert strict_loads(text) == value


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("1" * (sys.get_int_max_str_digits() + 1), "longer than"),
        ("1" * (MAX_NUMBER_LENGTH + 1), "longer than"),
        ("0." + "1" * MAX_NUMBER_LENGTH, "longer than"),
        ("1e999", "too large"),
        ("[-1e999]", "too large"),
        ("NaN", "not a JSON value"),
        ('{"a": Infinity}', "not a JSON value"),
        ("-Infinity", "not a JSON value"),
        ('"\\ud800"', "lone surrogate"),
        ('[{"\\udfff": 1}]', "lone surrogate"),
        ('{"a": 1, "a": 1}', "repeated"),
        (b"\xef\xbb\xbf{}", "BOM"),
        ('{"a": 1}'.encode("utf-16"), "utf-8"),
        ('{"a": 1}'.encode("utf-16-le"), "Expecting"),
        (b'"\xff"', "utf-8"),
        ("{", "Expecting"),
    ],
    ids=repr,
)
def test_refused_json_raises_value_error_with_the_reason(data: str | bytes, reason: str) -> None:
    """Each refusal is a ValueError saying why (never Python's int-limit error or a value)."""
    with pytest.raises(ValueError, match=reason):
        strict_loads(data)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("alice", "alice"),
        ("José/Ñ", "José/Ñ"),
        ("tb\x00", "tb%00"),
        ("a\nb\x7f\x85", "a%0Ab%7F%C2%85"),
        ("50%off", "50%25off"),
        ("%00", "%2500"),
        ("\ud800x", "%ED%A0%80x"),
    ],
)
def test_audit_text_is_percent_encoded_only_where_needed(value: str, stored: str) -> None:
    """Control characters, surrogates and '%' are percent-encoded; decoding gives the value
    back exactly (so a stored '%' is always an escape)."""
    assert escape(value) == stored
    assert unquote(stored, errors="surrogatepass") == value
    assert escape(None) is None


def test_every_blueprint_parses_bodies_with_the_strict_parser() -> None:
    """Every ``bp`` of an ``api`` module is ``api.bodies.Blueprint``, so no view can read a
    JSON body with webargs' default parser (which would let a 5,001-digit number reach a 500)."""
    blueprints = {}
    for info in pkgutil.walk_packages(tenantauth.api.__path__, "tenantauth.api."):
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "bp", None), flask_smorest.Blueprint):
            blueprints[info.name] = module.bp
    assert len(blueprints) >= 10
    assert all(isinstance(bp, Blueprint) for bp in blueprints.values()), blueprints
    assert all(isinstance(bp.ARGUMENTS_PARSER, BodyParser) for bp in blueprints.values())


@pytest.mark.parametrize(
    "value",
    [
        {"active": True, "claims": {"sub": "ünï ☃", "z": 1, "a": [1.5, None, 'x\n"y']}},
        {"b": {"d": 1, "c": 2}, "a": datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)},
        [uuid.UUID(int=1), datetime.date(2026, 12, 7)],
        "text",
    ],
)
def test_the_providers_dumps_writes_what_flasks_writes(value: Any) -> None:
    """``StrictJSONProvider.dumps`` (its encoder built once) writes the bytes of Flask's own
    ``DefaultJSONProvider.dumps``, with or without arguments."""
    app = Flask(__name__)
    ours, flasks = StrictJSONProvider(app), DefaultJSONProvider(app)
    assert ours.dumps(value) == flasks.dumps(value)
    assert ours.dumps(value, indent=2) == flasks.dumps(value, indent=2)
