"""Advisory findings (MS-ADV-001, from modelshield.advisories) as CycloneDX vulnerabilities.

The vulnerability takes the advisory's own id (the CVE when there is one) with its other ids as
references; `affects` names the loader `library` component (from `Report.runtime`) with the
affected version, and every file of a format the advisory concerns; `ratings` come from the
record's CVSS vectors; the fix version is in `recommendation`. Only the finding's evidence is
read (sbom never imports the advisories package); any other finding stays with `vex`.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from cyclonedx.model import Property, XsUri
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.vulnerability import (BomTarget, BomTargetVersionRange, Vulnerability, VulnerabilityAnalysis,
                                           VulnerabilityRating, VulnerabilityReference, VulnerabilityScoreSource,
                                           VulnerabilitySeverity, VulnerabilitySource)

from modelshield.scanner.findings import Finding
from .context import BomContext

_CWE = re.compile(r"^CWE-(\d+)$", re.I)


def applies(finding: Finding) -> bool:
    """An advisory match with its evidence (rule MS-ADV-*, `advisory` and `package` recorded)."""
    ev = finding.evidence if isinstance(finding.evidence, dict) else {}
    return finding.rule_id.startswith("MS-ADV-") and isinstance(ev.get("advisory"), str) and "package" in ev


def source(ident: str) -> VulnerabilitySource:
    if ident.startswith("GHSA-"):
        return VulnerabilitySource(name="GitHub Advisory Database", url=XsUri(f"https://github.com/advisories/{ident}"))
    if ident.startswith("CVE-"):
        return VulnerabilitySource(name="NVD", url=XsUri(f"https://nvd.nist.gov/vuln/detail/{ident}"))
    return VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{ident}"))


def vulnerability(ctx: BomContext, finding: Finding, target_ref: str, state: VulnerabilityAnalysis,
                  props: list[Property]) -> Vulnerability:
    """The vulnerability for one advisory finding of the entry `target_ref`."""
    ev: dict[str, Any] = finding.evidence
    primary = str(ev["advisory"])
    affects = []
    loader = _loader_ref(ctx, str(ev["package"]), ev.get("version"))
    if loader:
        versions = [BomTargetVersionRange(version=str(ev["version"]), status=ImpactAnalysisAffectedStatus.AFFECTED)] \
            if ev.get("version") else []
        affects.append(BomTarget(ref=loader, versions=versions))
    entry = next((e for e in ctx.entries if e.ref == target_ref), None)
    for path in ev.get("files") or []:
        ref = entry.files[path].bom_ref.value if entry is not None and path in entry.files else None
        if ref:
            affects.append(BomTarget(ref=ref))
    if not affects:
        affects.append(BomTarget(ref=target_ref))
    ratings = []
    for item in ev.get("cvss") or []:
        try:
            method = VulnerabilityScoreSource(str(item["method"]))
            score = float(item["score"])
        except (KeyError, ValueError, TypeError):
            continue
        ratings.append(VulnerabilityRating(source=source(primary), score=Decimal(str(score)), method=method,
                                           severity=VulnerabilitySeverity(_severity(score)),
                                           vector=str(item["vector"])))
    if not ratings:
        ratings.append(VulnerabilityRating(source=source(primary),
                                           severity=VulnerabilitySeverity(str(finding.severity)),
                                           method=VulnerabilityScoreSource.OTHER))
    fix = ev.get("fix")
    recommendation = (f"Upgrade {ev['package']} to {fix} or later." if fix else
                      f"No fixed release of {ev['package']} is published; do not let it load untrusted files.")
    props = props + [Property(name="modelshield:package", value=str(ev["package"])),
                     Property(name="modelshield:installed-version", value=str(ev.get("version"))),
                     Property(name="modelshield:fix-version", value=str(fix or "none")),
                     Property(name="modelshield:runtime:source", value=str(ev.get("source", "")))]
    props += [Property(name="modelshield:file", value=str(p)) for p in ev.get("files") or []]
    return Vulnerability(
        bom_ref=f"adv:{primary}:{ev['package']}:{target_ref}", id=primary, source=source(primary),
        references=[VulnerabilityReference(id=str(i), source=source(str(i))) for i in ev.get("aliases") or []],
        cwes=[int(m.group(1)) for c in ev.get("cwes") or [] if (m := _CWE.match(str(c)))],
        ratings=ratings, description=str(ev.get("summary") or finding.title), detail=finding.message,
        recommendation=recommendation, analysis=state, affects=affects, properties=props)


def _loader_ref(ctx: BomContext, package: str, version: Any) -> str | None:
    """bom-ref of the runtime `library` component for `package` at `version`, if listed."""
    want = re.sub(r"[-_.]+", "-", package).lower()
    for comp in ctx.components:
        purl = comp.purl
        if purl is not None and purl.type == "pypi" and re.sub(r"[-_.]+", "-", purl.name).lower() == want \
                and (version is None or purl.version == version) and comp.bom_ref.value:
            return str(comp.bom_ref.value)
    return None


def _severity(score: float) -> str:
    return ("critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4
            else "low" if score > 0 else "none")
