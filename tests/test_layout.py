"""The map the README draws, checked: who may import what.

- `utils.py` is the notebooks' flat facade; the app, the core, the tests and the
  benchmarks import `digit_recognition` modules directly.
- tests/ and benchmarks/ never import each other; what both need lives in
  testing_support/, which the app never imports (it is not in the image).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "flask_app": {"utils", "tests", "benchmarks", "testing_support"},
    "digit_recognition": {"utils", "tests", "benchmarks", "testing_support", "flask_app"},
    "testing_support": {"utils", "tests", "benchmarks"},
    "tests": {"utils", "benchmarks"},
    "benchmarks": {"utils", "tests"},
}


def imported_top_level_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_map_allows(package):
    offending = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        wrong = imported_top_level_modules(path) & FORBIDDEN[package]
        if wrong:
            offending[str(path.relative_to(REPO_ROOT))] = sorted(wrong)
    assert not offending, offending


def test_the_import_scan_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import utils\nfrom tests.store_files import snapshot\nfrom . import sibling\n")
    assert imported_top_level_modules(sample) == {"utils", "tests"}
