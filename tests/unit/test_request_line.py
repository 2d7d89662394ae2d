"""The request line's own JSON renderer writes what the generic one writes, byte for byte
(observability/http.py ``request_json``; observability/logs.py ``renderer``)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from tenantauth.domain.telemetry import RequestFacts
from tenantauth.observability import http, logs

TIMESTAMP = "2026-12-07T11:21:23.533Z"
TEXTS = ("plain", 'quote " and \\ backslash', "ünïcödé ☃ 😀", "control \x00\x1f\n\t", "")


def _facts() -> list[RequestFacts]:
    """Facts of every shape ``_line`` makes: each optional field present or absent, with
    awkward text where a field is free text, None where it may be None."""
    made = []
    for tenant, rejected, code, text, rid, client, status in itertools.product(
        (None, "acme"),
        (False, True),
        (None, "invalid_token"),
        TEXTS,
        (None, "a" * 32),
        (None, "127.0.0.1", "::1"),
        (200, 401, 503),
    ):
        made.append(
            RequestFacts(
                route=f"/v1/{text}",
                method="GET",
                status=status,
                seconds=0.000123456,
                request_id=rid,
                client=client,
                verifier="verify",
                tenant_id=tenant,
                reject_kind="signature" if rejected else None,
                reject_reason=(text or None) if rejected else None,
                code=code,
            )
        )
    return made


def _generic(event: dict[str, Any]) -> str:
    return logs._json_line(None, event["level"], {"timestamp": TIMESTAMP, **event})


def test_every_request_line_is_written_as_the_generic_encoder_writes_it() -> None:
    """Same bytes for every shape, with escapes, non-ASCII text and None values."""
    count = 0
    for facts in _facts():
        event = http._line(facts)
        event.pop("_at")
        assert http.request_json(TIMESTAMP, dict(event)) == _generic(event), event
        count += 1
    assert count == 2 * 2 * 2 * len(TEXTS) * 2 * 3 * 3


@pytest.mark.parametrize("seconds", [0.0, 1e-9, 0.5, 12.3456789, 1e6])
def test_durations_are_written_as_the_generic_encoder_writes_them(seconds: float) -> None:
    """Floats through ``float.__repr__``, as json does."""
    facts = RequestFacts("/v1/verify", "GET", 200, seconds, "r", "127.0.0.1")
    event = http._line(facts)
    event.pop("_at")
    assert http.request_json(TIMESTAMP, dict(event)) == _generic(event)


def _event(**changes: Any) -> dict[str, Any]:
    event = http._line(RequestFacts("/v1/verify", "GET", 200, 0.001, "r", "127.0.0.1"))
    event.pop("_at")
    event.update(changes)
    return event


@pytest.mark.parametrize(
    "event",
    [
        _event(extra="x"),  # a key it does not know
        _event(status="200"),  # wrong types
        _event(status=True),
        _event(duration_ms=1),
        _event(duration_ms=math.nan),
        _event(duration_ms=math.inf),
        _event(client=["127.0.0.1"]),
        _event(event="other"),
        {"level": "info", "event": "request"},  # too few keys
        dict(reversed(_event().items())),  # the keys in another order
    ],
)
def test_other_shapes_are_left_to_the_generic_encoder(event: dict[str, Any]) -> None:
    """None for anything but a request event as ``_line`` makes it."""
    assert http.request_json(TIMESTAMP, event) is None


def test_the_json_renderer_uses_it_and_writes_the_same_line() -> None:
    """Through ``logs.renderer``: with the fast path and without, the same line; a standard
    logging record named "request" still takes the generic path."""
    fast = logs.renderer("json", colors=False, fast_json=http.request_json)
    plain = logs.renderer("json", colors=False)
    for facts in _facts()[:200]:
        event = http._line(facts)
        assert fast(dict(event)) == plain(dict(event))
    record = {"_at": 1.5, "level": "info", "logger": "x", "event": "request"}
    assert fast(dict(record)) == plain(dict(record))
