"""Promotion: a code file's observations become threats once a loader is known to run it.

Used by the Python-source format (dataset scripts) and by `repo_checks` (files `auto_map` & co.
reach), after the whole repository was scanned.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...findings import Artefact, Finding, Kind, Location, Severity

if TYPE_CHECKING:
    from ...rules import RuleTable

OBSERVATION = "MS-PY-100"
DATASET_SCRIPT = "MS-PY-010"



def promote(artefact: Artefact, rules: "RuleTable", reached_by: str) -> Severity | None:
    """Turn the file's MS-PY-100 observations into threats at their loaded severity.

    Returns the highest active threat severity of the file afterwards (None if none).
    """
    out: list[Finding] = []
    for f in artefact.findings:
        if f.rule_id == OBSERVATION and "behaviour_rule" in f.evidence:
            ev = {k: v for k, v in f.evidence.items() if k not in ("behaviour_rule", "loaded_severity")}
            ev["reached_by"] = reached_by
            new = rules.finding(f.evidence["behaviour_rule"], f.location,
                                severity=Severity.parse(f.evidence["loaded_severity"]),
                                callable=f.callable, args=f.args, **ev)
            new.suppressed = f.suppressed
            out.append(new)
        else:
            out.append(f)
    artefact.findings[:] = out
    sev = [f.severity for f in out if f.kind is Kind.THREAT and f.active and f.rule_id != DATASET_SCRIPT]
    return max(sev) if sev else None


def mark_dataset_script(artefact: Artefact, rules: "RuleTable", builder: str, line: int | None) -> None:
    """Add MS-PY-010 to a dataset loading script, at the highest severity its code reaches."""
    if any(f.rule_id == DATASET_SCRIPT for f in artefact.findings):
        return
    worst = promote(artefact, rules, "datasets.load_dataset")
    sev = max(Severity.MEDIUM, worst) if worst is not None else Severity.MEDIUM
    detail = f"; its code reaches {sev} findings" if sev > Severity.MEDIUM else ""
    artefact.findings.append(rules.finding(DATASET_SCRIPT, Location(path=artefact.path, line=line),
                                           severity=sev, builder=builder, detail=detail))
