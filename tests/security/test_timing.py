"""Tenant enumeration by timing: an unknown tenant must cost what a bad signature costs.

VERIFIER-CHECKLIST #6 (and python-jose CVE-2016-7036, a non-constant-time HMAC comparison):
a token naming a tenant that does not exist must not be told apart from a known tenant's token
with a wrong signature — not by status, not by body, and not by latency (the verifier runs one
HMAC with a dummy key for unknown tenants; the lookup of either is one cache round trip).

This is the one timing assertion in the suite (issue 5 asks for it). To be robust on a loaded
2-core machine it compares medians, interleaves the two kinds in a shuffled order so load
spikes hit both alike, warms both paths up first, and allows 1 ms — far above the tens of
microseconds a real difference in work (a storage query, a key decryption) would still show.
"""

from __future__ import annotations

import gc
import random
import secrets
import statistics
import time

from flask.testing import FlaskClient

from tests.integration.helpers import create_tenant
from tests.security.forge import b64url, claims, forge, header

ROUNDS = 2000  # requests of each kind, measured
WARMUP = 200
TOLERANCE_NS = 1_000_000  # ~1 ms, as issue 5 states
HEADERS = {"X-Request-Id": "timing"}


def _tokens(kid: str, n: int) -> list[str]:
    """``n`` distinct well-formed tokens for ``kid``, each signed with a random wrong key."""
    return [
        forge(header(kid=kid), claims(tid=kid, jti=f"j{i}"), key=secrets.token_bytes(32))
        for i in range(n)
    ]


def _timed(client: FlaskClient, token: str) -> tuple[int, bytes, int]:
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    start = time.perf_counter_ns()
    response = client.get("/v1/verify", headers=headers)
    elapsed = time.perf_counter_ns() - start
    return elapsed, response.get_data(), response.status_code


def test_unknown_tenant_costs_what_a_bad_signature_costs(client: FlaskClient) -> None:
    """Unknown tenant vs known tenant + bad signature: same status and body, medians within
    1 ms (runs on both backends through the ``client`` fixture)."""
    create_tenant(client, "acme", secret=b64url(secrets.token_bytes(32)))
    kinds = {"unknown": _tokens("ghost", 64), "bad-signature": _tokens("acme", 64)}
    for name in [*kinds] * WARMUP:
        _timed(client, kinds[name][0])
    schedule = [*kinds] * ROUNDS
    random.Random(5).shuffle(schedule)
    samples: dict[str, list[int]] = {name: [] for name in kinds}
    answers: set[tuple[int, bytes]] = set()
    gc.collect()
    for i, name in enumerate(schedule):
        elapsed, body, status = _timed(client, kinds[name][i % 64])
        samples[name].append(elapsed)
        answers.add((status, body))
    assert len(answers) == 1, answers  # one status, one byte-identical body for both kinds
    assert next(iter(answers))[0] == 401
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"\nverify medians (µs): { {k: round(v / 1000, 1) for k, v in medians.items()} }")
    assert abs(medians["unknown"] - medians["bad-signature"]) <= TOLERANCE_NS, medians
