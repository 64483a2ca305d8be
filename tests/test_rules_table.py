"""The rule table is data: every rule well-formed, documented in docs/rules.md, referenced ids valid."""
from __future__ import annotations

import re
from pathlib import Path

from modelshield.scanner.findings import Kind, Severity
from modelshield.scanner.rules import load_rules, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_every_rule_is_well_formed():
    rules = list(load_rules())
    assert len(rules) >= 8
    for rule in rules:
        assert re.fullmatch(r"MS-[A-Z0-9]+-\d{3}", rule.id), rule.id
        assert isinstance(rule.severity, Severity) and isinstance(rule.kind, Kind)
        assert rule.title and rule.message and rule.recommendation, rule.id
        assert all(re.fullmatch(r"CWE-\d+", c) for c in rule.cwe), rule.id
        assert all(re.fullmatch(r"AML\.[TM]\d{4}(\.\d{3})?", a) for a in rule.atlas), rule.id
        assert all(re.fullmatch(r"CVE-\d{4}-\d+|GHSA(-[0-9a-z]{4}){3}", c) for c in rule.cve), rule.id
        if rule.kind is Kind.THREAT:
            assert rule.severity >= Severity.LOW, rule.id


def test_docs_rules_md_is_generated_from_the_data():
    doc = (ROOT / "docs" / "rules.md").read_text()
    assert doc == markdown_table(), "regenerate: modelshield rules --markdown > docs/rules.md"


def _rule_ids_used() -> dict[str, set[str]]:
    """Rule id -> files that use it: string constants of the packages' code (docstrings aside: a
    mention is not a use) and values of their data tables (the rule tables themselves aside)."""
    import ast
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    pattern = re.compile(r"MS-[A-Z0-9]+-\d{3}")

    def toml_strings(value: object):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from toml_strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from toml_strings(item)

    used: dict[str, set[str]] = {}
    for folder in ("scanner", "sbom", "advisories", "modelshield"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            if path.suffix == ".py":
                tree = ast.parse(path.read_text(encoding="utf-8"))
                docs = {id(n.body[0].value) for n in ast.walk(tree)
                        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                        and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
                strings = [n.value for n in ast.walk(tree)
                           if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]
            elif path.suffix == ".toml" and path.parent.name != "rules":
                strings = list(toml_strings(tomllib.loads(path.read_text(encoding="utf-8"))))
            else:
                continue
            for text in strings:
                for rule_id in pattern.findall(text):
                    used.setdefault(rule_id, set()).add(str(path.relative_to(ROOT)))
    return used


def test_every_rule_used_exists_and_every_rule_is_used():
    """A rule id in code or data must be in the table; a rule nothing raises is dead weight."""
    ids = {rule.id for rule in load_rules()}
    used = _rule_ids_used()
    unknown = {rule_id: sorted(files) for rule_id, files in used.items() if rule_id not in ids}
    assert not unknown, f"rule ids used but not in scanner/data/rules/: {unknown}"
    assert not ids - set(used), f"rules nothing raises: {sorted(ids - set(used))}"
