"""The one strict JSON parser of the service: request bodies (``api.bodies``) and the CLI's
JSON arguments read JSON alike. Stdlib only, so the CLI parses as the API does without loading
the web framework.

It accepts RFC 8259 JSON with the limits of RFC 7493 (I-JSON) that keep every later step safe:

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
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: The longest number literal accepted: a 128-bit integer has 39 digits, a double's exact
#: decimal form about 25 characters; no field or sane claim needs more.
MAX_NUMBER_LENGTH = 100
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
