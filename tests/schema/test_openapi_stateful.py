"""schemathesis' stateful mode over /openapi.json: sequences of calls, each using what an
earlier one returned (a tenant just created, then its users, clients, tokens ...).

The document declares no OpenAPI links: schemathesis 4 infers the transitions between
operations from their parameters and response schemas (about 90 here). Every check runs on
every response, as in test_openapi_fuzz.py, on PostgreSQL + Redis.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.schema import formats
from tests.schema.cases import keep_to_the_words
from tests.schema.test_openapi_fuzz import fuzz_app  # noqa: F401 - a fixture
from tests.support import ADMIN_TOKEN, Backend, empty_database, empty_redis

MAX_EXAMPLES = 40
STEPS = 10
MIN_TRANSITIONS = 50


def test_call_sequences_conform(fuzz_app: Flask, postgres_backend: Backend) -> None:  # noqa: F811
    """Chains of calls that reuse earlier responses get no 5xx and no answer the document
    does not describe, and valid data is accepted along the way."""
    formats.register()
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)

    @schema.auth().apply_to(path_regex="^/v1/admin/")
    class AdminToken:
        """The admin token on admin operations only (elsewhere a header changes meaning)."""

        def get(self, case: Any, ctx: Any) -> str:
            return ADMIN_TOKEN

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    machine = schema.as_state_machine()
    assert schema.statistic.transitions.selected >= MIN_TRANSITIONS, "links were lost"

    class Sequences(machine):  # type: ignore[valid-type, misc]
        def before_call(self, case: Any) -> None:
            keep_to_the_words(case)

        def teardown(self) -> None:
            # Each sequence starts from empty stores: which calls can follow which depends
            # on earlier answers, and Hypothesis replays a sequence expecting the same ones.
            _empty(postgres_backend)

    run_state_machine_as_test(
        Sequences,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )


def _empty(backend: Backend) -> None:
    """Empty every table but the migrations' and our Redis DB's tenantauth keys (as the
    pg_url and redis_url fixtures do before each test)."""
    empty_database(backend.database_url)
    empty_redis(str(backend.redis_url))
