"""Scan findings -> `vulnerabilities[]` with a VEX `analysis` that depends on the phase.

Development (the artefact as adopted): an active threat is `exploitable`, anything else
`in_triage` (a matching waiver is reported in `detail`, not applied: intake has not decided yet).
Deployment (what ships) applies waivers, saying plainly what each one means:
- a waiver with a `vex_justification` gives its `vex_state` (default `not_affected`) with that
  justification;
- a waiver without one accepts the risk: `exploitable` with `response: ["will_not_fix"]`
  (`not_affected` without a justification would claim something nobody showed);
- an expired waiver no longer applies: the finding keeps its unwaived state and `detail` and a
  `modelshield:waiver:expired` property say which waiver lapsed and when.
`firstIssued` comes from the previous BOM (`--from-bom`) when it held the same finding, else
this BOM's time; `lastUpdated` is this BOM's time.
Info findings are observations, not vulnerabilities: they become `modelshield:observation`
properties of the component they concern.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

from cyclonedx.model import Property, XsUri
from cyclonedx.model.impact_analysis import (ImpactAnalysisJustification, ImpactAnalysisResponse,
                                             ImpactAnalysisState)
from cyclonedx.model.vulnerability import (BomTarget, Vulnerability, VulnerabilityAnalysis, VulnerabilityRating,
                                           VulnerabilityReference, VulnerabilityScoreSource, VulnerabilitySeverity,
                                           VulnerabilitySource)

from modelshield.scanner.findings import Finding, Kind
from . import advisory_vulns
from .context import BomContext, ref_of

# No URL: the rule table ships inside the package (`modelshield rules`, docs/rules.md), not at a
# web address anyone can resolve; a made-up URL would point a reader nowhere.
SOURCE = VulnerabilitySource(name="modelshield")
_CWE = re.compile(r"^CWE-(\d+)$", re.I)


def provider(ctx: BomContext) -> None:
    """Every non-info finding of every entry (target-level ones affect the entry's component)."""
    previous = _previous_issues(ctx.from_bom or {})
    for entry in ctx.entries:
        for finding in entry.findings:
            if finding.kind is Kind.INFO:  # e.g. MS-HUB-005 custom code: an observation of the model
                entry.component.properties.add(Property(name="modelshield:observation",
                                                        value=f"{finding.rule_id}: {finding.message}"))
                continue
            _add(ctx, finding, entry.ref, entry.name, previous)
        for path, artefact in sorted(entry.artefacts.items()):
            ref = ref_of(entry.files[path])
            for finding in artefact.findings:
                if finding.kind is Kind.INFO:
                    entry.files[path].properties.add(Property(name="modelshield:observation",
                                                              value=f"{finding.rule_id}: {finding.message}"))
                    continue
                _add(ctx, finding, ref, path, previous)


def _previous_issues(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(rule id, affected component name) -> analysis.firstIssued of a previous BOM."""
    names: dict[str, str] = {}

    def walk(items: list[Any]) -> None:
        for comp in items:
            if isinstance(comp, dict):
                names[str(comp.get("bom-ref"))] = str(comp.get("name"))
                walk(comp.get("components") or [])

    walk([doc.get("metadata", {}).get("component") or {}] + list(doc.get("components") or []))
    out: dict[tuple[str, str], str] = {}
    for vuln in doc.get("vulnerabilities") or []:
        first = (vuln.get("analysis") or {}).get("firstIssued") if isinstance(vuln, dict) else None
        for target in (vuln.get("affects") or []) if first else []:
            out.setdefault((str(vuln.get("id")), names.get(str(target.get("ref")), "")), str(first))
    return out


def _add(ctx: BomContext, finding: Finding, affects: str, name: str, previous: dict[tuple[str, str], str]) -> None:
    index = sum(1 for v in ctx.vulnerabilities if v.affects and next(iter(v.affects)).ref == affects)
    cwes = [int(m.group(1)) for c in finding.cwe if (m := _CWE.match(c.strip()))]
    refs = [VulnerabilityReference(id=cve, source=VulnerabilitySource(
        name="NVD", url=XsUri(f"https://nvd.nist.gov/vuln/detail/{cve}"))) for cve in finding.cve]
    props = [Property(name="modelshield:kind", value=finding.kind.value),
             Property(name="modelshield:location", value=location(finding)),
             Property(name="modelshield:rule", value=finding.rule_id)]
    props += [Property(name="modelshield:atlas", value=a) for a in finding.atlas]
    if finding.callable:
        props.append(Property(name="modelshield:callable", value=finding.callable))
    if finding.args is not None:
        props.append(Property(name="modelshield:args", value=_short(json.dumps(finding.args, default=repr))))
    props += [Property(name="modelshield:reference", value=u) for u in finding.references]
    expired = finding.evidence.get("expired_suppression") if isinstance(finding.evidence, dict) else None
    if expired:
        props.append(Property(name="modelshield:waiver:expired", value=str(expired)))
    state = analysis(finding, ctx.phase)
    if ctx.timestamp is not None:
        first = previous.get((finding.rule_id, name))
        state.first_issued = _parse_time(first) or ctx.timestamp
        state.last_updated = ctx.timestamp
    if advisory_vulns.applies(finding):  # an OSV advisory match: its own id, loader + files affected
        ctx.vulnerabilities.append(advisory_vulns.vulnerability(ctx, finding, affects, state, props))
        return
    vuln = Vulnerability(
        bom_ref=f"vuln:{finding.rule_id}:{affects}:{index}", id=finding.rule_id, source=SOURCE,
        references=refs, cwes=cwes,
        ratings=[VulnerabilityRating(source=SOURCE, severity=VulnerabilitySeverity(str(finding.severity)),
                                     method=VulnerabilityScoreSource.OTHER)],
        description=finding.message or finding.title, detail=detail(finding),
        recommendation=finding.recommendation or None,
        analysis=state, affects=[BomTarget(ref=affects)], properties=props)
    ctx.vulnerabilities.append(vuln)


def detail(finding: Finding) -> str:
    """The longer text: what the rule is about, where exactly, and the facts the analysis recovered."""
    parts = [f"{finding.title or finding.rule_id} (rule {finding.rule_id}, {finding.kind.value}, "
             f"severity {finding.severity})", f"Location: {location(finding)}."]
    if finding.callable:
        parts.append(f"Callable resolved statically: {finding.callable}"
                     + (f" with arguments {_short(json.dumps(finding.args, default=repr), 300)}."
                        if finding.args is not None else "."))
    if finding.cwe or finding.atlas:
        parts.append("Weakness and technique: " + ", ".join(list(finding.cwe) + list(finding.atlas)) + ".")
    return " ".join(parts)


def analysis(finding: Finding, phase: str) -> VulnerabilityAnalysis:
    """The VEX analysis for one finding in one phase (see the module docstring)."""
    waiver = finding.suppressed
    default = ImpactAnalysisState.EXPLOITABLE if finding.kind is Kind.THREAT else ImpactAnalysisState.IN_TRIAGE
    expired = finding.evidence.get("expired_suppression") if isinstance(finding.evidence, dict) else None
    if waiver is None:
        if expired:
            return VulnerabilityAnalysis(state=default, detail=f"a waiver for this finding expired on {expired}; "
                                                               "it no longer applies")
        return VulnerabilityAnalysis(state=default)
    detail_text = f"waiver: {waiver.reason}" + (f" (expires {waiver.expires})" if waiver.expires else "")
    if phase == "development":
        return VulnerabilityAnalysis(state=default, detail=f"proposed {detail_text}; applied in the deployment BOM")
    state = _enum(ImpactAnalysisState, waiver.vex_state) or ImpactAnalysisState.NOT_AFFECTED
    justification = _enum(ImpactAnalysisJustification, waiver.vex_justification)
    if state is ImpactAnalysisState.NOT_AFFECTED and justification is None:
        return VulnerabilityAnalysis(state=ImpactAnalysisState.EXPLOITABLE,
                                     responses=[ImpactAnalysisResponse.WILL_NOT_FIX],
                                     detail=f"risk accepted, not shown unaffected: {detail_text}")
    return VulnerabilityAnalysis(state=state, justification=justification, detail=detail_text)


def _enum(cls: Any, value: str | None) -> Any:
    if not value:
        return None
    try:
        return cls(value.strip().lower().replace("-", "_"))
    except ValueError:
        return None


def _parse_time(text: str | None) -> _dt.datetime | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def location(f: Finding) -> str:
    """`path, member m, offset n...` of a finding."""
    loc = f.location
    parts = [loc.path]
    if loc.member:
        parts.append(f"member {loc.member}")
    for name in ("stream", "offset", "position", "line"):
        value = getattr(loc, name)
        if value is not None:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
