"""JSON request bodies: one strict parser for the whole app, and the blueprint that uses it.

Every JSON body is parsed by ``strict_loads``, at most once per request (``json_body``): by the
depth check of ``api.hygiene``, by ``BodyParser`` (the webargs parser of every ``Blueprint``
here, so of every view taking a body) and by Flask's ``request.get_json`` (app.py installs
``StrictJSONProvider`` as ``app.json``). ``api.strict_json`` says what it accepts and why.

A body the parser refuses is a 400; a body that is not JSON at all (by ``Content-Type``) a 415
naming ``application/json``; no body at all is an empty one, which each schema then judges.
"""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser

from tenantauth.api.strict_json import strict_loads
from tenantauth.errors import MalformedRequestError, UnsupportedMediaTypeError

JSON = "application/json"
_PARSED = "_tenantauth_json_body"


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
