"""The Dockerfile passes hadolint with every rule on, and each inline ignore says why."""

from __future__ import annotations

import re

from tests.deploy.tools import ROOT, run, tool

#: An inline ignore (`# hadolint ignore=DL3008`) must sit under a comment line giving its reason.
IGNORE = re.compile(r"^#\s*hadolint\s+ignore=")


#: No HADOLINT_* variables and no user config (~/.config/hadolint.yaml): either could ignore rules.
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no finding at any level (style included) on the Dockerfile."""
    run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", "Dockerfile"],
        ROOT,
        CLEAN_ENV,
    )


def test_no_config_file_ignores_rules() -> None:
    """No .hadolint.yaml silences rules outside the Dockerfile, where a reason cannot be seen."""
    assert not list(ROOT.glob(".hadolint.y*ml")), "ignore rules inline, with a reason"


def test_every_inline_ignore_is_explained() -> None:
    """Each `# hadolint ignore=` line follows a comment line that gives the reason."""
    lines = [
        line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    ]
    for number, line in enumerate(lines):
        if IGNORE.match(line):
            above = lines[number - 1] if number else ""
            reason = above.startswith("#") and not IGNORE.match(above) and len(above) > 12
            assert reason, f"Dockerfile line {number + 1}: say why above `{line}`"
