"""SARIF 2.1.0 for code-scanning dashboards: one run, one rule per rule id, one result per finding."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..findings import Finding, Kind, Location, Report, Severity, TargetResult
from ..rules import load_rules
from . import escape

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}
# GitHub code scanning ranks results by this 0.0-10.0 property.
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0", Severity.INFO: "0.0"}
RULES_DOC = "https://github.com/modelshield/modelshield/blob/main/docs/rules.md"


def render(report: Report) -> str:
    rules = load_rules()
    used = sorted({f.rule_id for _, _, f in report.all_findings()})
    index = {rule_id: i for i, rule_id in enumerate(used)}
    sarif_rules = []
    for rule_id in used:
        rule = rules[rule_id]
        tags = ["security", *rule.cwe, *rule.atlas]
        sarif_rules.append({
            "id": rule.id, "name": rule.title.title().replace(" ", "").replace("-", ""),
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.recommendation or rule.title},
            "helpUri": f"{RULES_DOC}#{rule.id.lower()}",
            "help": {"text": rule.recommendation or rule.title},
            "defaultConfiguration": {"level": LEVEL[rule.severity] if rule.kind is not Kind.INFO else "note"},
            "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY[rule.severity],
                           "kind": rule.kind.value},
        })
    results = []
    artifacts: dict[str, int] = {}
    for target, artefact, finding in report.all_findings():
        uri = _uri(target, artefact.path if artefact else (finding.location.path or "."))
        if uri not in artifacts:
            artifacts[uri] = len(artifacts)
        result = _result(finding, uri, artifacts[uri], index[finding.rule_id])
        result["partialFingerprints"] = {"modelshieldFinding/v1": _fingerprint(uri, finding)}
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "modelshield", "version": report.tool_version or "0",
                            "informationUri": "https://github.com/modelshield/modelshield",
                            "rules": sarif_rules}},
        "artifacts": [{"location": {"uri": uri}} for uri in artifacts],
        "results": results,
        "invocations": [{"executionSuccessful": not any(t.error for t in report.targets),
                         "startTimeUtc": report.started or None, "endTimeUtc": report.finished or None}],
        "properties": {"verdict": report.verdict.value, "summary": report.summary()},
    }
    run["invocations"] = [{k: v for k, v in inv.items() if v is not None} for inv in run["invocations"]]
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2) + "\n"


def _uri(target: TargetResult, path: str) -> str:
    """Where a code-scanning UI finds the file: relative to the working folder for local files
    inside it, a file:// URI for other local files, the Hub's blob URL for Hub files."""
    prov = target.provenance or {}
    if target.kind == "hf" and prov.get("endpoint") and prov.get("commit"):
        prefix = "datasets/" if prov.get("repo_type") == "dataset" else ""
        base = f"{prov['endpoint']}/{prefix}{escape.uri_path(prov['repo_id'])}"
        return base if path == "." else f"{base}/blob/{prov['commit']}/{escape.uri_path(path)}"
    url = prov.get("url")
    if target.kind == "url" and url:
        return url
    if target.root is None:
        return escape.uri_path(path)
    full = os.path.normpath(os.path.join(target.root, path))
    rel = os.path.relpath(full, os.getcwd())
    if not rel.startswith(".."):
        return escape.uri_path(rel.replace(os.sep, "/"))
    return Path(full).as_uri()  # percent-encodes the path's bytes (RFC 3986)


def _fingerprint(uri: str, finding: Finding) -> str:
    """Stable across runs for the same problem at the same place (GitHub de-duplicates on it)."""
    loc = finding.location
    key = "|".join(str(x) for x in (finding.rule_id, uri, loc.member, loc.stream, finding.callable, loc.line))
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _site(loc: Location, uri: str, artifact_index: int, i: int) -> dict[str, Any]:
    """One aggregated repeat of a finding, as a SARIF related location."""
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "index": artifact_index}}
    if loc.line is not None and not loc.member:
        physical["region"] = {"startLine": max(loc.line, 1)}
    elif loc.offset is not None and not loc.member:
        physical["region"] = {"byteOffset": loc.offset}
    where = {k: v for k, v in (("member", loc.member), ("offset", loc.offset), ("position", loc.position),
                                ("stream", loc.stream)) if v is not None}
    return {"id": i, "physicalLocation": physical, "properties": where}


def _result(finding: Finding, uri: str, artifact_index: int, rule_index: int) -> dict[str, Any]:
    loc = finding.location
    logical = []
    if loc.member:
        logical.append({"fullyQualifiedName": escape.text(loc.member), "kind": "member"})
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "index": artifact_index}}
    if loc.line is not None and not loc.member:
        physical["region"] = {"startLine": max(loc.line, 1)}
    elif loc.offset is not None and not loc.member:
        physical["region"] = {"byteOffset": loc.offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    if logical:
        location["logicalLocations"] = logical
    props: dict[str, Any] = {"severity": str(finding.severity), "kind": finding.kind.value}
    for key in ("callable", "args"):
        if getattr(finding, key) is not None:
            props[key] = getattr(finding, key)
    for key in ("offset", "position", "stream", "member"):
        if getattr(loc, key) is not None:
            props[key] = getattr(loc, key)
    props.update({k: v for k, v in (("cwe", finding.cwe), ("atlas", finding.atlas), ("cve", finding.cve)) if v})
    result: dict[str, Any] = {
        "ruleId": finding.rule_id, "ruleIndex": rule_index,
        "level": LEVEL[finding.severity] if finding.kind is not Kind.INFO else "note",
        "message": {"text": escape.text(finding.message + (f" {finding.recommendation}" if finding.recommendation
                                                           else ""))},
        "locations": [location], "properties": json.loads(json.dumps(props, default=str)),
    }
    if finding.occurrences > 1:
        result["occurrenceCount"] = finding.occurrences
        result["relatedLocations"] = [_site(site, uri, artifact_index, i) for i, site in enumerate(finding.sites)]
    if finding.suppressed:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": escape.text(f"{finding.suppressed.reason} "
                                                                f"(expires {finding.suppressed.expires})")}]
    return result
