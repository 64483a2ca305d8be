"""Scan findings -> `vulnerabilities[]` with a VEX `analysis` that depends on the phase.

Development (the artefact as adopted): an active threat is `exploitable`, anything else
`in_triage` (a matching waiver is reported in `detail`, not applied: intake has not decided yet).
Deployment (what ships): a waiver's `vex_state`/`vex_justification`, reason and expiry are applied;
unwaived threats stay `exploitable`, unwaived inconclusive findings `in_triage`.
Info findings are observations, not vulnerabilities: they become `modelshield:observation`
properties of the file they concern.
"""
from __future__ import annotations

import json
import re
from typing import Any

from cyclonedx.model import Property, XsUri
from cyclonedx.model.impact_analysis import ImpactAnalysisJustification, ImpactAnalysisState
from cyclonedx.model.vulnerability import (BomTarget, Vulnerability, VulnerabilityAnalysis, VulnerabilityRating,
                                           VulnerabilityReference, VulnerabilityScoreSource, VulnerabilitySeverity,
                                           VulnerabilitySource)

from modelshield.scanner.findings import Finding, Kind
from .context import BomContext

SOURCE = VulnerabilitySource(name="modelshield", url=XsUri("https://github.com/modelshield/modelshield"))
_CWE = re.compile(r"^CWE-(\d+)$", re.I)


def provider(ctx: BomContext) -> None:
    """Every non-info finding of every target (target-level ones affect the model component)."""
    for entry in ctx.models:
        for finding in entry.target.findings:
            if finding.kind is Kind.INFO:  # e.g. MS-HUB-005 custom code: an observation of the model
                entry.component.properties.add(Property(name="modelshield:observation",
                                                        value=f"{finding.rule_id}: {finding.message}"))
                continue
            _add(ctx, finding, entry.ref, None)
        for path, artefact in sorted(entry.artefacts.items()):
            ref = entry.files[path].bom_ref.value
            for finding in artefact.findings:
                if finding.kind is Kind.INFO:
                    entry.files[path].properties.add(Property(name="modelshield:observation",
                                                              value=f"{finding.rule_id}: {finding.message}"))
                    continue
                _add(ctx, finding, ref, path)


def _add(ctx: BomContext, finding: Finding, affects: str, path: str | None) -> None:
    index = sum(1 for v in ctx.vulnerabilities if v.affects and next(iter(v.affects)).ref == affects)
    cwes = [int(m.group(1)) for c in finding.cwe if (m := _CWE.match(c.strip()))]
    refs = [VulnerabilityReference(id=cve, source=VulnerabilitySource(
        name="NVD", url=XsUri(f"https://nvd.nist.gov/vuln/detail/{cve}"))) for cve in finding.cve]
    props = [Property(name="modelshield:kind", value=finding.kind.value),
             Property(name="modelshield:location", value=_location(finding))]
    props += [Property(name="modelshield:atlas", value=a) for a in finding.atlas]
    if finding.callable:
        props.append(Property(name="modelshield:callable", value=finding.callable))
    if finding.args is not None:
        props.append(Property(name="modelshield:args", value=_short(json.dumps(finding.args, default=repr))))
    props += [Property(name="modelshield:reference", value=u) for u in finding.references]
    vuln = Vulnerability(
        bom_ref=f"vuln:{finding.rule_id}:{affects}:{index}", id=finding.rule_id, source=SOURCE,
        references=refs, cwes=cwes,
        ratings=[VulnerabilityRating(source=SOURCE, severity=VulnerabilitySeverity(str(finding.severity)),
                                     method=VulnerabilityScoreSource.OTHER)],
        description=finding.message or finding.title, detail=finding.title or None,
        recommendation=finding.recommendation or None,
        analysis=analysis(finding, ctx.phase), affects=[BomTarget(ref=affects)], properties=props)
    ctx.vulnerabilities.append(vuln)


def analysis(finding: Finding, phase: str) -> VulnerabilityAnalysis:
    """The VEX analysis for one finding in one phase (see the module docstring)."""
    waiver = finding.suppressed
    default = ImpactAnalysisState.EXPLOITABLE if finding.kind is Kind.THREAT else ImpactAnalysisState.IN_TRIAGE
    if waiver is None:
        return VulnerabilityAnalysis(state=default)
    detail = f"waiver: {waiver.reason}" + (f" (expires {waiver.expires})" if waiver.expires else "")
    if phase != "deployment":
        return VulnerabilityAnalysis(state=default, detail=f"proposed {detail}; applied in the deployment BOM")
    state = _enum(ImpactAnalysisState, waiver.vex_state) or ImpactAnalysisState.NOT_AFFECTED
    justification = _enum(ImpactAnalysisJustification, waiver.vex_justification)
    return VulnerabilityAnalysis(state=state, justification=justification, detail=detail)


def _enum(cls: Any, value: str | None) -> Any:
    if not value:
        return None
    try:
        return cls(value.strip().lower().replace("-", "_"))
    except ValueError:
        return None


def _location(f: Finding) -> str:
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
