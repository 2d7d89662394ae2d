"""OpenAPI helpers: security requirements and documented problem responses.

The served document must match what the service really answers (schemathesis checks it in
tests/schema): every error is an RFC 9457 problem, and every admin operation may be refused
by the admin rate limit.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, TypeVar

from apispec import BasePlugin
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response

from tenantauth.api.hygiene import ADMIN_PREFIX
from tenantauth.api.problems import PROBLEM_JSON
from tenantauth.api.schemas import ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
_DESCRIPTIONS = {
    400: "Malformed request (bad or too deeply nested JSON, several Authorization headers, "
    "a token sent both in the header and the body).",
    401: "Missing or invalid credentials or token.",
    404: "No such tenant, or no such user or client in it.",
    409: "Conflicts with the current state.",
    413: "The body exceeds the size limit (TENANTAUTH_MAX_BODY_BYTES, 64 KiB by default).",
    422: "The body or query failed validation; `errors` says where.",
    503: "A dependency is unavailable; nothing was changed (fail closed).",
}


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
        spec_kwargs = kwargs.pop("spec_kwargs", None) or {}
        spec_kwargs.setdefault("extra_plugins", [AdminRateLimitPlugin()])
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

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
