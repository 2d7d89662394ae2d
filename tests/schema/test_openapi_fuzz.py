"""schemathesis against /openapi.json: the served document matches what the service does.

Runs on the production backend (PostgreSQL + Redis) through the WSGI app, as the admin, with
every schemathesis check (no 5xx, status codes, content types, headers and bodies conform to
the document, ...). Whatever operations exist are covered: the document is read at run time.
Bounded by ``MAX_EXAMPLES`` per operation so the module stays within about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tenantauth.app import create_app
from tests.support import Backend, FixedClock, admin_headers, make_settings

MAX_EXAMPLES = 10
#: Checks left out, each with its reason.
#: - positive_data_acceptance: the document does not yet state every domain rule as a schema
#:   constraint, so some schema-valid bodies are (rightly) refused with 422: base64url
#:   ``secret``, opaque list ``cursor``, claim-name length of ``claims`` keys, RFC 6749 §3.3
#:   scope tokens, control characters in ``sub``/usernames. The refusals are correct; the
#:   document is incomplete (issue 5, reported to the schemas owner). Every other check,
#:   including no 5xx and response conformance, runs.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture
def fuzz_app(postgres_backend: Backend, tmp_path: Path) -> Iterator[Flask]:
    """The app on PostgreSQL + Redis with a fixed clock and room for every generated call."""
    settings_ = make_settings(
        postgres_backend, tmp_path, admin_rate_limit=100_000, admin_ip_rate_limit=100_000
    )
    application = create_app(settings_, clock=FixedClock())
    yield application
    application.extensions["tenantauth"]["services"].close()


def _operations(app: Flask) -> list[Any]:
    """Return every operation of the app's served document, loaded by schemathesis (WSGI).

    schemathesis' own pytest integration (``from_fixture``) does not work with pytest 9, so
    the test drives Hypothesis itself, one operation at a time.
    """
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_conforms(fuzz_app: Flask) -> None:
    """Generated requests (valid and invalid) to every documented operation never get a 5xx
    or an answer the document does not describe (status, content type, headers, body)."""
    operations = _operations(fuzz_app)
    assert len(operations) >= 20, "the document lost operations"
    failures = []
    for operation in operations:
        try:
            _fuzz(operation)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all findings
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation: Any) -> None:
    """Run every schemathesis check on ``MAX_EXAMPLES`` generated calls of ``operation``."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        # The admin token only where the document asks for it: elsewhere an Authorization
        # header changes the request (a bearer token for verify, client auth for OAuth).
        headers = admin_headers() if case.path.startswith("/v1/admin/") else None
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

    run()
