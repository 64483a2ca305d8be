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
