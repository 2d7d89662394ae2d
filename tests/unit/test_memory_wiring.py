"""How the composition root wires a server's memory (bootstrap.build_services)."""

from __future__ import annotations

import gc
from pathlib import Path

from tenantauth.bootstrap import build_services
from tests.support import Backend, make_settings

#: Nothing listens there: building opens no connection (pools open lazily).
NOWHERE = Backend("postgres", "postgresql://127.0.0.1:1/none", "redis://127.0.0.1:1/0")


def test_warmed_tenants_are_kept_out_of_full_collections(tmp_path: Path) -> None:
    """A server verifying from memory hands its warmer ``gc.freeze`` as ``retain``: what a
    warming loads lives as long as the worker, and without the freeze every full collection
    scanned it (150-280 ms stalls at 100,000 tenants; docs/design.md, "Garbage
    collection")."""
    settings = make_settings(NOWHERE, tmp_path, verify_memory=True, auto_migrate=False)
    services = build_services(settings, verify_memory=True)
    try:
        warmer = services.keys._warmer  # the wiring is the subject
        assert warmer is not None
        assert warmer._retain is gc.freeze
    finally:
        services.close()
