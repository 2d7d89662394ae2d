"""OpenAPI helpers: security requirements and documented problem responses.

The served document must match what the service really answers (schemathesis checks it in
tests/schema): every error is an RFC 9457 problem, every admin operation may be refused by the
admin rate limit, and the input rules the service enforces are stated (api/rules.py), path
parameters included.
"""

from __future__ import annotations

import http
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from apispec import BasePlugin
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response

from tenantauth.api import rules
from tenantauth.api.context import EXTENSION
from tenantauth.api.hygiene import ADMIN_PREFIX
from tenantauth.api.problems import PROBLEM_JSON
from tenantauth.api.schemas import ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
_DESCRIPTIONS = {
    400: "Malformed request: JSON that is invalid or refused (too deeply nested, a number "
    "longer than 100 characters or not finite, a lone surrogate, a repeated member name), "
    "several Authorization headers, a token sent both in the header and the body.",
    401: "Missing or invalid credentials or token.",
    403: "The admin key is limited to another tenant, or this needs a global admin.",
    404: "No such tenant, or no such user or client in it (or no such key or resource server).",
    405: "The method is not allowed here; `Allow` lists those that are.",
    409: "Conflicts with the current state.",
    413: "The body exceeds the size limit (TENANTAUTH_MAX_BODY_BYTES, 64 KiB by default).",
    415: "The body is not JSON: send it with `Content-Type: application/json` "
    "(`Accept-Post`/`Accept-Patch` names the type).",
    422: "The body or query failed validation; `errors` says where.",
    429: "Too many requests; `Retry-After` says when to try again.",
    500: "An unexpected error; it is logged with the request id, never shown.",
    503: "A dependency is unavailable; nothing was changed (fail closed).",
}
#: Rules of the path parameters, by name (the routes use Flask's plain string converter).
#: Each is enforced: a value outside it cannot name anything, so it is a 404.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "tenant_id": {"pattern": rules.TENANT_ID},
    "username": {
        "pattern": rules.USERNAME,
        "maxLength": 255,
        "format": rules.USERNAME_FORMAT,
    },
    "client_id": {"pattern": rules.CLIENT_ID},
    "key_id": {"pattern": rules.KEY_ID},
    "server_id": {"pattern": rules.SERVER_ID},
}
#: JSON Schema keywords apispec does not copy from field metadata (it keeps an allow-list).
_EXTRA_KEYWORDS = ("propertyNames",)
FORM = "application/x-www-form-urlencoded"


def errors_doc(bp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the problem responses a view can return."""

    def decorate(view: F) -> F:
        for status in statuses:
            view = bp.alt_response(
                status,
                schema=ProblemSchema,
                content_type=PROBLEM_JSON,
                description=_DESCRIPTIONS.get(status, "Error"),
            )(view)
        return view

    return decorate


class ProblemApi(Api):  # type: ignore[misc]  # flask-smorest is untyped
    """flask-smorest's ``Api`` whose default error responses are our problems.

    flask-smorest documents undeclared errors (its ``default`` response and the per-status
    components) as its own ``Error`` schema in ``application/json``; we never send that, so
    an OpenAPI client or checker would reject our real error bodies.
    """

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: Any = None, **kwargs: Any) -> None:
        """As ``Api``, plus the plugin documenting the admin rate limit."""
        # Blueprints registered with Flask whose views are not yet in the spec (``spec``).
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._documenting = threading.Lock()
        spec_kwargs = kwargs.pop("spec_kwargs", None) or {}
        spec_kwargs.setdefault(
            "extra_plugins", [AdminRateLimitPlugin(), PathParameterPlugin(), FormBodyPlugin()]
        )
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """As ``Api.register_blueprint`` (flask-smorest 0.46/0.47, pinned), except that the
        blueprint's views are added to the OpenAPI document when it is first read (``spec``).

        Documenting every view deep-copies its doc (marshmallow schemas included): 66 of the
        92 ms ``create_app`` took, paid by every worker at start and by every test's app,
        while only ``/openapi.json`` and the docs tools ever read the document.
        """
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        with self._documenting:
            self._undocumented.append((blp, name, parameters))

    @property
    def spec(self) -> Any:
        """The OpenAPI document (apispec's ``APISpec``), the views of every blueprint
        registered so far in it, in registration order (so the document is as eager
        registration made it)."""
        with self._documenting:
            while self._undocumented:
                blp, name, parameters = self._undocumented.pop(0)
                blp.register_views_in_doc(
                    self, self._app, self._spec, name=name, parameters=parameters
                )
                self._spec.tag({"name": name, "description": blp.description})
            return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        """Set by ``Api._init_spec``."""
        self._spec = value

    def _init_spec(self, *args: Any, **kwargs: Any) -> None:
        """As ``Api._init_spec``, then teach the field converter ``_EXTRA_KEYWORDS``.

        Overrides a private method of flask-smorest 0.46/0.47 (pinned), like
        ``_register_responses``: the converter exists only once the spec does.
        """
        super()._init_spec(*args, **kwargs)
        self.ma_plugin.converter.add_attribute_function(extra_keywords)
        settings = self._app.extensions.get(EXTENSION, {}).get("settings")
        if settings is not None:
            self.ma_plugin.converter.add_attribute_function(settings_maximum(settings))

    def _register_responses(self) -> None:
        """Register flask-smorest's per-status and default responses as problem+json.

        Overrides a private method of flask-smorest 0.46/0.47 (pinned in pyproject.toml):
        its only other hook, ``DEFAULT_RESPONSE_CONTENT_TYPE``, would retype success bodies too.
        """
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An error (RFC 9457 problem).", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


class AdminRateLimitPlugin(BasePlugin):
    """Adds the 429 of the admin rate limit (``api.hygiene``) to every admin operation."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Document 429 (a reference to the problem response) on operations under /v1/admin/."""
        if not (path or "").startswith(ADMIN_PREFIX.rstrip("/")):
            return
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            if 429 not in responses and "429" not in responses:
                responses["429"] = http.HTTPStatus.TOO_MANY_REQUESTS.name


class PathParameterPlugin(BasePlugin):
    """States the rules of path parameters (``PATH_PARAMETERS``) in the document."""

    def path_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add the pattern (and bounds) of each known path parameter to its schema."""
        for parameter in parameters or []:
            rule = PATH_PARAMETERS.get(parameter.get("name", ""))
            if rule and parameter.get("in") == "path":
                parameter.setdefault("schema", {}).update(rule)


def extra_keywords(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: copy ``_EXTRA_KEYWORDS`` from a field's metadata."""
    return {k: field.metadata[k] for k in _EXTRA_KEYWORDS if k in field.metadata}


def settings_maximum(settings: Any) -> Callable[..., dict[str, Any]]:
    """Return an apispec attribute function showing the configured cap of a field whose
    metadata names it (``rules.MAXIMUM_SETTING``) as its ``maximum``."""

    def settings_bounds(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
        name = field.metadata.get(rules.MAXIMUM_SETTING)
        return {"maximum": getattr(settings, name)} if name else {}

    return settings_bounds


class FormBodyPlugin(BasePlugin):
    """States that a form body's unknown parameters are ignored but, like every parameter,
    sent at most once (RFC 6749 §3.1): ``additionalProperties: {"type": "string"}``.

    Without it a generator may send an unknown parameter twice (an array, in the document's
    form encoding), which the service rightly refuses.
    """

    def init_spec(self, spec: Any) -> None:
        """Keep the spec: the body schemas are components by the time operations are seen."""
        self._spec = spec

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Mark the schema of each ``application/x-www-form-urlencoded`` body."""
        for operation in (operations or {}).values():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get(FORM, {}).get("schema", {}).get("$ref", "")
            schema = self._spec.components.schemas.get(ref.rsplit("/", 1)[-1])
            if schema is not None and "additionalProperties" not in schema:
                schema["additionalProperties"] = {"type": "string"}
