"""The documentation stays true to the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tenantauth.observability.metrics import PrometheusTelemetry
from tenantauth.settings import PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_readme_configuration_table_lists_every_setting(setting: object) -> None:
    """Every TENANTAUTH_* setting has a row in the README table, with its default."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    name = PREFIX + setting.name  # type: ignore[attr-defined]
    rows = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"{name} needs exactly one row in the README table"
    default = setting.default  # type: ignore[attr-defined]
    assert (f"`{default}`" if default else "—") in rows[0]


def test_design_doc_states_the_revocation_guarantee() -> None:
    """docs/design.md carries the one-sentence guarantee and the race arguments."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert "## The revocation guarantee" in design
    assert "### Why each race is impossible" in design


def test_observability_doc_lists_every_metric() -> None:
    """Every metric family tenantauth exports has a row in docs/observability.md, under the
    name Prometheus shows (counters with ``_total``)."""
    doc = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    metrics = PrometheusTelemetry(CollectorRegistry())
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"| `{name}` |" in doc, f"{name} needs a row in docs/observability.md"
