"""The test suite's own rules: helpers come from the `helpers` package, expected failures are strict marks."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in sorted(TESTS.rglob("*.py"))]


def test_no_test_imports_conftest():
    """conftest.py is pytest's, loaded once by pytest; a second import makes a second copy of its state."""
    bad = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(TESTS)}:{node.lineno}" for n in names if n.split(".")[-1] == "conftest"]
    assert not bad, bad


def test_no_imperative_xfail():
    """`pytest.xfail(...)` inside a test turns any later failure into a pass that nobody reads; an
    expected failure is a strict `@pytest.mark.xfail(strict=True)` (it fails once fixed)."""
    bad = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "xfail"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest"):
                bad.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert not bad, bad


def test_xfail_marks_are_strict():
    bad = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "xfail"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "mark"
                    and not any(k.arg == "strict" and isinstance(k.value, ast.Constant) and k.value.value is True
                                for k in node.keywords)):
                bad.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert not bad, bad
