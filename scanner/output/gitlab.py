"""GitLab security report (SAST report format 15.0.6) for `artifacts:reports:sast`.

GitLab's security dashboard and merge-request widget ingest this JSON. Active threats become
vulnerabilities with their severity; inconclusive results become vulnerabilities of severity
`Unknown` (something could not be checked: GitLab's word for it); waived and info findings are
left out (the SARIF and JSON reports keep them). Target errors and policy notes are scan
messages. GitLab renders descriptions as markdown, so artefact strings are escaped for markdown.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from ..findings import Finding, Kind, Report, Severity
from ..rules import load_rules
from . import escape
from .sarif import RULES_DOC, _fingerprint, _uri
from .text import call_text, where

SCHEMA_VERSION = "15.0.6"
SCHEMA_URL = ("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
              "v15.0.6/dist/sast-report-format.json")
_NAMESPACE = uuid.UUID("8f0c6d2e-4b1a-5c3d-9e7f-2a6b8c0d1e3f")  # modelshield's, for stable ids
_SEVERITY = {Severity.CRITICAL: "Critical", Severity.HIGH: "High", Severity.MEDIUM: "Medium",
             Severity.LOW: "Low", Severity.INFO: "Info"}


def render(report: Report) -> str:
    """The report as a GitLab SAST security report."""
    tool = {"id": "modelshield", "name": "modelshield", "version": report.tool_version or "0",
            "vendor": {"name": "modelshield"}, "url": "https://github.com/modelshield/modelshield"}
    messages = [{"level": "fatal" if not report.artefacts else "warn", "value": escape.text(e)} for e in report.errors]
    messages += [{"level": "info", "value": escape.text(n)} for n in (report.policy or {}).get("notes") or ()]
    vulnerabilities = []
    for target, artefact, finding in report.all_findings():
        if not finding.active or finding.kind is Kind.INFO:
            continue
        vulnerabilities.append(_vulnerability(finding, _uri(target, artefact.path if artefact else "."),
                                              artefact.path if artefact else target.target))
    doc: dict[str, Any] = {
        "version": SCHEMA_VERSION, "schema": SCHEMA_URL,
        "scan": {"analyzer": tool, "scanner": tool, "type": "sast",
                 "start_time": _time(report.started), "end_time": _time(report.finished),
                 "status": "failure" if report.errors else "success", "messages": messages},
        "vulnerabilities": vulnerabilities,
    }
    return json.dumps(doc, indent=2) + "\n"


def _vulnerability(f: Finding, uri: str, path: str) -> dict[str, Any]:
    rule = load_rules()[f.rule_id]
    identifiers = [{"type": "modelshield_rule_id", "name": f"modelshield {f.rule_id}", "value": f.rule_id,
                    "url": f"{RULES_DOC}#{f.rule_id.lower()}"}]
    identifiers += [{"type": "cwe", "name": cwe, "value": cwe.split("-", 1)[1],
                     "url": f"https://cwe.mitre.org/data/definitions/{cwe.split('-', 1)[1]}.html"} for cwe in f.cwe]
    identifiers += [{"type": "cve", "name": cve, "value": cve} for cve in f.cve]
    lines = [escape.markdown_text(f.message)]
    call = call_text(f)
    if call:
        lines.append(f"Call: {escape.markdown_code(call, escaped=True)}")
    at = where(f)
    if at:
        lines.append(f"At: {escape.markdown_code(', '.join(at), escaped=True)}")
    location: dict[str, Any] = {"file": path}
    if f.location.line is not None and not f.location.member:
        location["start_line"] = max(f.location.line, 1)
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, _fingerprint(uri, f))),
        "name": rule.title[:255],
        "description": "\n\n".join(lines)[:1_000_000],
        "severity": "Unknown" if f.kind is Kind.INCONCLUSIVE else _SEVERITY[f.severity],
        "solution": f.recommendation[:7000] or rule.recommendation[:7000],
        "identifiers": identifiers,
        "location": location,
    }
    links = [{"url": r} for r in f.references if r.startswith(("http://", "https://"))]
    if links:
        out["links"] = links
    return out


def _time(iso: str) -> str:
    """GitLab wants yyyy-mm-ddThh:mm:ss (UTC, no zone suffix)."""
    return (iso or "1970-01-01T00:00:00Z")[:19]
