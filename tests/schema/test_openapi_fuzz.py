"""schemathesis against /openapi.json: the served document matches what the service does.

Runs on the production backend (PostgreSQL + Redis) through the WSGI app, as the admin, with
every schemathesis check: no 5xx; status codes, content types, headers and bodies conform to
the document; valid data is accepted (positive-data acceptance: the document states the input
rules, api/rules.py) and invalid data refused (negative cases). Whatever operations exist are
covered: the document is read at run time. ``MAX_EXAMPLES`` valid and as many invalid calls
per operation keep the module within about 20 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tenantauth.app import create_app
from tests.schema import formats
from tests.schema.cases import is_admin, keep_to_the_words, sendable
from tests.support import Backend, FixedClock, admin_headers, make_settings

MAX_EXAMPLES = 10
#: Checks left out, each with its reason (none: the document states every input rule the
#: service enforces, so schema-valid data must be accepted).
EXCLUDED_CHECKS: list[Any] = []


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
    formats.register()
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
    """Run every schemathesis check on ``MAX_EXAMPLES`` valid and as many invalid calls of
    ``operation`` (invalid ones must be refused: the negative-data-rejection check)."""
    for mode in GenerationMode:
        try:
            _fuzz_mode(operation.as_strategy(mode).filter(sendable))
        except Unsatisfiable:
            # Nothing to break: an operation without parameters or body has no invalid call.
            if mode is not GenerationMode.NEGATIVE:
                raise


def _fuzz_mode(cases: Any) -> None:
    """Run every check on ``MAX_EXAMPLES`` cases drawn from ``cases``."""

    @given(case=cases)
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
        keep_to_the_words(case)
        headers = admin_headers() if is_admin(case) else None
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

    run()
