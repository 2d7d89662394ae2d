"""The gunicorn settings ``tenantauth serve`` uses (src/tenantauth/gunicorn_conf.py)."""

from __future__ import annotations

import gc

from tenantauth import gunicorn_conf


def test_a_worker_freezes_what_the_app_allocated() -> None:
    """After the app is loaded, a worker moves its objects to the permanent generation, so
    full collections no longer scan them (they stalled requests for ~40 ms; see
    docs/design.md, "Garbage collection")."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(object())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
