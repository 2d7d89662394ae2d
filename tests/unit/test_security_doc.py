"""docs/security.md stays true to the code: its checklist map is complete and every reference
it makes to a source file, function, class or test still exists.

A reference is a path under ``src/``, ``tests/`` or ``scripts/`` ending in ``.py``, optionally
followed by ``::name`` (a function, class or module-level constant) or ``::Class.name`` (a
method). Names are looked up with ``ast``, so a renamed or deleted test or function breaks
this test instead of leaving the document pointing at nothing.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
CHECKLIST_HEADING = "## VERIFIER-CHECKLIST: where each point is enforced and tested"
CHECKLIST_ITEMS = range(1, 17)
#: VERIFIER-CHECKLIST #15: PyJWT 2.12–2.15.0 carry published advisories.
PYJWT_MINIMUM = Version("2.15.1")
REFERENCE = re.compile(r"\b((?:src|tests|scripts)/[\w./-]+?\.py)(?:::([A-Za-z_][\w.]*))?")


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """Return the body of the ``## `` section called ``heading`` (up to the next one)."""
    start = text.index(heading + "\n") + len(heading) + 1
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def _checklist_rows() -> dict[int, dict[str, str]]:
    """Return the checklist table's rows by number, each as {column title: cell text}.

    Fails if a number appears in more than one row.
    """
    lines = [line for line in _section(_doc(), CHECKLIST_HEADING).splitlines() if line[:1] == "|"]
    titles = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[int, dict[str, str]] = {}
    for line in lines[2:]:  # after the header and its |---| delimiter row
        cells = dict(zip(titles, (c.strip() for c in line.strip("|").split("|")), strict=True))
        number = int(cells["#"])
        assert number not in rows, f"checklist item #{number} has two rows"
        rows[number] = cells
    return rows


@cache
def _names_in(path: Path) -> frozenset[str]:
    """Return what ``path`` defines: functions, classes and assigned names at module level,
    and ``Class.member`` for what a class body defines."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names.update(_defined(node))
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{member}" for sub in node.body for member in _defined(sub))
    return frozenset(names)


def _defined(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _references(text: str) -> list[tuple[str, str | None]]:
    return [(m[1], m[2]) for m in REFERENCE.finditer(text)]


def _missing(path: str, name: str | None) -> str | None:
    """Return why the reference ``path::name`` does not resolve, or None if it does."""
    file = ROOT / path
    if not file.is_file():
        return f"{path}: no such file"
    if name is not None and name not in _names_in(file):
        return f"{path}::{name}: no def, class or assignment of that name"
    return None


def _make_recipe(target: str) -> str:
    """Return the recipe lines of ``target`` in the Makefile (tab-indented, after its rule)."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line)
    return "\n".join(recipe)


@pytest.mark.parametrize("number", CHECKLIST_ITEMS)
def test_every_checklist_item_has_a_row_with_code_and_tests(number: int) -> None:
    """Each VERIFIER-CHECKLIST item #1–#16 has one row naming its code and named tests."""
    row = _checklist_rows().get(number)
    assert row is not None, f"checklist item #{number} has no row in docs/security.md"
    enforced = _references(row["Enforced in"])
    tested = _references(row["Tested by"])
    assert any(path.startswith("src/") for path, _ in enforced), f"#{number}: no src/ reference"
    assert any(path.startswith("tests/") and name for path, name in tested), (
        f"#{number}: no tests/...py::name reference"
    )


def test_the_checklist_table_has_no_other_rows() -> None:
    """The table holds exactly items #1–#16 (so a renumbered checklist shows up here)."""
    assert sorted(_checklist_rows()) == list(CHECKLIST_ITEMS)


def test_every_reference_in_the_document_exists() -> None:
    """Every src/, tests/ and scripts/ path the document names exists, and so does every
    ``::name`` after it (a function, class, method or module-level constant)."""
    references = _references(_doc())
    assert len(references) > 50, "the reference pattern no longer finds the document's links"
    broken = sorted({why for ref in references if (why := _missing(*ref)) is not None})
    assert not broken, "docs/security.md points at what does not exist:\n" + "\n".join(broken)


def test_pyjwt_is_at_least_the_checklist_minimum() -> None:
    """Checklist #15: pyproject requires PyJWT >= 2.15.1, that is what is installed, and
    `make lint` runs the dependency audit."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pyjwt = next(
        Requirement(dep)
        for dep in project["project"]["dependencies"]
        if Requirement(dep).name.lower() == "pyjwt"
    )
    assert Version("2.15.0") not in pyjwt.specifier
    assert PYJWT_MINIMUM in pyjwt.specifier
    assert Version(importlib.metadata.version("PyJWT")) >= PYJWT_MINIMUM
    assert "scripts/audit-deps.py" in _make_recipe("lint")
