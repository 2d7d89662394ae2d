"""JSON request bodies: one strict parser for the whole app, and the blueprint that uses it.

Every JSON body is parsed by ``strict_loads``, at most once per request (``json_body``): by the
depth check of ``api.hygiene``, by ``BodyParser`` (the webargs parser of every ``Blueprint``
here, so of every view taking a body) and by Flask's ``request.get_json`` (app.py installs
``StrictJSONProvider`` as ``app.json``). It accepts RFC 8259 JSON with the limits of RFC 7493
(I-JSON) that keep every later step safe:

- UTF-8 only (RFC 8259 §8.1; RFC 7493 §2.1), no byte order mark;
- numbers of at most ``MAX_NUMBER_LENGTH`` characters (RFC 8259 §9 lets a parser limit their
  range): Python refuses to convert integers of more than 4,300 digits
  (``sys.get_int_max_str_digits``) with a ``ValueError``, and long ones cost quadratic time;
- finite numbers only: ``NaN`` and ``Infinity`` are not JSON (RFC 8259 §6), and ``1e999``
  would become an infinity that no JSON document can carry onwards (into a token, say);
- no lone surrogates (``"\\ud800"``, RFC 7493 §2.1): they are not Unicode text, so no UTF-8
  consumer (PostgreSQL, SQLite, a log line, a token) could take them;
- no repeated member names (RFC 7493 §2.3): two parsers that resolve them differently are a
  smuggling vector, as ``crypto.jwt`` says of token headers.

A body the parser refuses is a 400; a body that is not JSON at all (by ``Content-Type``) a 415
naming ``application/json``; no body at all is an empty one, which each schema then judges.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import flask_smorest
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser

from tenantauth.errors import MalformedRequestError, UnsupportedMediaTypeError

JSON = "application/json"
#: The longest number literal accepted: a 128-bit integer has 39 digits, a double's exact
#: decimal form about 25 characters; no field or sane claim needs more.
MAX_NUMBER_LENGTH = 100
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PARSED = "_tenantauth_json_body"


def strict_loads(data: str | bytes) -> Any:
    """Return the value of the JSON text ``data`` under the rules of this module.

    Raises ``ValueError`` (``json.JSONDecodeError`` and ``UnicodeDecodeError`` are ones) with
    the reason, or ``RecursionError`` for nesting deeper than the interpreter's stack.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    value = json.loads(
        text,
        parse_int=_integer,
        parse_float=_fraction,
        parse_constant=_constant,
        object_pairs_hook=_object,
    )
    # A decoded UTF-8 text holds no surrogate; only a \u escape can make one.
    if "\\u" in text and _has_lone_surrogate(value):
        raise ValueError("a string holds a lone surrogate (RFC 7493 section 2.1)")
    return value


def is_json(mimetype: str) -> bool:
    """Return whether ``mimetype`` is JSON: ``application/json`` or ``application/*+json``
    (the types webargs and Flask parse as JSON)."""
    return mimetype == JSON or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def json_body() -> Any:
    """Return this request's body parsed by ``app.json`` (so ``strict_loads``), parsing it
    only the first time in a request.

    Raises what ``strict_loads`` raises, each time it is called; ``RequestEntityTooLarge``
    (413) for a body over ``MAX_CONTENT_LENGTH``.
    """
    if not hasattr(g, _PARSED):
        parsed: tuple[Any, ValueError | RecursionError | None]
        try:
            parsed = (current_app.json.loads(request.get_data(cache=True)), None)
        except (ValueError, RecursionError) as exc:
            parsed = (None, exc)
        setattr(g, _PARSED, parsed)
    value, error = getattr(g, _PARSED)
    if error is not None:
        raise error
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``strict_loads`` for ``loads`` (``request.get_json``), and
    its encoder built once for ``dumps`` without arguments."""

    def __init__(self, app: Any) -> None:
        """Build the encoder ``DefaultJSONProvider.dumps`` would build on every call (with
        ``default`` given, ``json.dumps`` makes a new ``JSONEncoder`` each time: ~3 µs of a
        body, which the lean verify path writes for every first-seen token)."""
        super().__init__(app)
        self._encoder = json.JSONEncoder(
            default=self.default, ensure_ascii=self.ensure_ascii, sort_keys=self.sort_keys
        )

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Return ``obj`` as JSON, as ``DefaultJSONProvider.dumps`` writes it."""
        if kwargs:
            return super().dumps(obj, **kwargs)
        return self._encoder.encode(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Return ``strict_loads(s)``; keyword arguments are not supported (none are used)."""
        return strict_loads(s)


class BodyParser(FlaskParser):
    """The webargs parser of our blueprints: JSON bodies through ``json_body``."""

    def load_json(self, req: Any, schema: Any) -> Any:
        """Return the parsed JSON body, or ``missing`` when there is no body.

        Raises ``UnsupportedMediaTypeError`` (415) for a body that is not JSON by its
        ``Content-Type`` (a missing one included), ``MalformedRequestError`` (400) for a body
        ``strict_loads`` refuses.
        """
        if not req.get_data(cache=True):
            return core.missing
        if not is_json(req.mimetype):
            raise UnsupportedMediaTypeError(
                f"Send the body as {JSON} (with Content-Type: {JSON}).", accept=JSON
            )
        try:
            return json_body()
        except ValueError as exc:
            reason = f"Invalid JSON body: {exc}."
            raise MalformedRequestError(reason, errors={"json": [reason]}) from None


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest is untyped
    """flask-smorest's ``Blueprint`` whose ``arguments`` parse bodies with ``BodyParser``."""

    ARGUMENTS_PARSER = BodyParser()


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number is longer than {MAX_NUMBER_LENGTH} characters")
    return int(literal)


def _fraction(literal: str) -> float:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number is longer than {MAX_NUMBER_LENGTH} characters")
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError("a number is too large for a double (RFC 8259 section 6)")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 section 6)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a member name is repeated in an object (RFC 7493 section 2.3)")
    return obj


def _has_lone_surrogate(value: Any) -> bool:
    """Return whether a string (member names included) in ``value`` holds a lone surrogate.

    Iterative, so any depth the parser produced can be walked.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
