"""OpenAPI helpers: security requirements and documented problem responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_smorest import Blueprint

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
    413: "The body exceeds 64 KiB.",
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
