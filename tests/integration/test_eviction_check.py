"""The start-up eviction-policy check of `tenantauth serve` (docs/design.md, "Readiness").

The refusal of an evicting Redis needs a Redis of our own: tests/faults/test_readiness.py
(R5, R6). The shared Redis is only read here, never reconfigured.
"""

from __future__ import annotations

import pytest

from tenantauth.cache.redis import RedisCache
from tenantauth.cli.serve import check_eviction_policy

DEAD_REDIS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once


def test_noeviction_passes_silently(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The test Redis runs noeviction: the check reads it and says nothing."""
    cache = RedisCache(redis_url, timeout=1.0)
    try:
        assert cache.eviction_policy() == "noeviction"
        check_eviction_policy(cache)
    finally:
        cache.close()
    assert capsys.readouterr().err == ""


def test_an_unreachable_redis_is_a_warning_not_a_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Redis down at start-up: a loud warning, and serve goes on (it works without Redis)."""
    cache = RedisCache(DEAD_REDIS, timeout=0.1)
    try:
        check_eviction_policy(cache)
    finally:
        cache.close()
    err = capsys.readouterr().err
    assert "WARNING" in err and "maxmemory-policy is not checked" in err
