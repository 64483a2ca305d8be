"""The rule table: stable ids with severity, kind, CWE/ATLAS/CVE references and message templates.

Rules are data (`data/rules/*.toml`, one file per area) loaded once. Code creates findings only
through `Rules.finding(rule_id, ...)`, so every finding carries its rule's metadata.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterator

from .findings import Finding, Kind, Location, Severity
from . import datafiles



@dataclass(frozen=True)
class Rule:
    """One row of the rule table."""

    id: str
    title: str
    severity: Severity
    kind: Kind
    message: str  # str.format template over the finding's fields
    recommendation: str = ""
    cwe: tuple[str, ...] = ()
    atlas: tuple[str, ...] = ()
    cve: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    area: str = ""


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class RuleTable:
    """All rules by id."""

    rules: dict[str, Rule] = field(default_factory=dict)

    def __getitem__(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def __iter__(self) -> Iterator[Rule]:
        return iter(sorted(self.rules.values(), key=lambda r: r.id))

    def finding(self, rule_id: str, location: Location, *, severity: Severity | None = None,
                callable: str | None = None, args: list[Any] | None = None,
                cve: list[str] | None = None, **evidence: Any) -> Finding:
        """Build a finding for `rule_id`; `evidence` fills the message template and is kept."""
        rule = self.rules[rule_id]
        fmt = _SafeDict(evidence, callable=callable or "", args=args if args is not None else "")
        return Finding(
            rule_id=rule.id, severity=severity if severity is not None else rule.severity,
            kind=rule.kind, title=rule.title, message=rule.message.format_map(fmt),
            location=location, callable=callable, args=args, cwe=list(rule.cwe),
            atlas=list(rule.atlas), cve=sorted(set(rule.cve) | set(cve or ())),
            references=list(rule.references), recommendation=rule.recommendation.format_map(fmt),
            evidence=evidence,
        )


def _parse(area: str, raw: dict[str, Any]) -> Rule:
    return Rule(
        id=raw["id"], title=raw["title"], severity=Severity.parse(raw["severity"]),
        kind=Kind(raw["kind"]), message=raw["message"], recommendation=raw.get("recommendation", ""),
        cwe=tuple(raw.get("cwe", ())), atlas=tuple(raw.get("atlas", ())), cve=tuple(raw.get("cve", ())),
        references=tuple(raw.get("references", ())), area=area,
    )


@functools.lru_cache(maxsize=1)
def load_rules() -> RuleTable:
    """Load every `data/rules/*.toml` file shipped in the package (cached)."""
    table = RuleTable()
    for entry in sorted(datafiles.path("rules").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        data = datafiles.load("rules", entry.name)
        area = entry.name[:-5]
        for raw in data.get("rule", []):
            rule = _parse(area, raw)
            if rule.id in table.rules:
                raise ValueError(f"duplicate rule id {rule.id} in {entry.name}")
            table.rules[rule.id] = rule
    return table


RULES = load_rules


def markdown_table() -> str:
    """docs/rules.md, generated from the data: `modelshield rules --markdown > docs/rules.md`."""
    lines = ["# Rules", "",
             "Generated from `scanner/data/rules/*.toml` by `modelshield rules --markdown > docs/rules.md`; "
             "do not edit by hand. Rule ids are stable: a retired id is never reused. "
             "`modelshield rules RULE_ID` explains one rule (message, why, fix, references, an example).", "",
             "| id | severity | kind | title | CWE | MITRE ATLAS | CVE |", "|---|---|---|---|---|---|---|"]
    for r in load_rules():
        anchor = f'<a id="{r.id.lower()}"></a>'
        lines.append(f"| {anchor}{r.id} | {r.severity} | {r.kind.value} | {r.title} | {', '.join(r.cwe)} | "
                     f"{', '.join(r.atlas)} | {', '.join(r.cve)} |")
    return "\n".join(lines) + "\n"



def explain(rule_id: str) -> str:
    """`modelshield rules RULE_ID`: what the rule reports, why it matters, the fix, references
    and an example of the finding and of a waiver. KeyError naming the id when unknown."""
    table = load_rules()
    rule = table.rules.get(rule_id.strip().upper())
    if rule is None:
        raise KeyError(f"unknown rule {rule_id!r}; `modelshield rules` lists them")
    names = datafiles.load("references.toml")
    example = rule.message.format_map(_Placeholders())
    refs = [f"{c}  {names['cwe'].get(c, '')}  https://cwe.mitre.org/data/definitions/{c[4:]}.html" for c in rule.cwe]
    refs += [f"{a}  {names['atlas'].get(a, '')}  https://atlas.mitre.org/techniques/{a}" for a in rule.atlas]
    refs += [f"{c}  https://www.cve.org/CVERecord?id={c}" if c.startswith("CVE-") else c for c in rule.cve]
    refs += list(rule.references)
    lines = [f"{rule.id}  {rule.title}", f"severity: {rule.severity}   kind: {rule.kind.value}   area: {rule.area}", "",
             "What it reports:", f"  {rule.message}", "",
             "Why it matters:", f"  {names['kind'][rule.kind.value]}", "",
             "Fix:", f"  {rule.recommendation or '-'}", ""]
    if refs:
        lines += ["References:", *(f"  {r}" for r in refs), ""]
    lines += ["Example (text output):", "  path/to/file:",
              f"    {str(rule.severity).upper():<8} {rule.id} {example}", "",
              "Waive it for some files (a reason and an expiry date are mandatory), in modelshield.toml:",
              "  [[suppress]]", f'  rule = "{rule.id}"', '  path = "vendor/*"',
              '  reason = "why this is acceptable, and who decided"', "  expires = 2027-03-31"]
    return "\n".join(lines) + "\n"


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"
