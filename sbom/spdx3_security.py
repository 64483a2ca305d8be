"""The SPDX 3.0.1 Security profile of a CycloneDX BOM's `vulnerabilities[]` (findings and advisories).

Each CycloneDX vulnerability becomes a `security_Vulnerability` (name = rule or advisory id, summary
= the specifics, description = the longer text, severity and kind in its comment, since SPDX 3 rates
severity only through CVSS/EPSS/SSVC scores we do not have); each affected element gets a
`hasAssociatedVulnerability` relationship to it, and the VEX analysis becomes the matching VEX
assessment relationship from the vulnerability to the affected elements:

- exploitable: `security_VexAffectedVulnAssessmentRelationship` (`affects`), the response and the
  recommendation as its action statement;
- not_affected, false_positive: `security_VexNotAffectedVulnAssessmentRelationship` (`doesNotAffect`),
  the justification mapped where SPDX has one, the detail as impact statement;
- resolved, resolved_with_pedigree: `security_VexFixedVulnAssessmentRelationship` (`fixedIn`);
- in_triage or no analysis: `security_VexUnderInvestigationVulnAssessmentRelationship`
  (`underInvestigationFor`).
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from spdx_python_model import v3_0_1 as spdx

_JUSTIFICATION = {  # CycloneDX 1.6 impactAnalysisJustification -> SPDX 3.0.1 VexJustificationType
    "code_not_present": "vulnerableCodeNotPresent",
    "code_not_reachable": "vulnerableCodeNotInExecutePath",
    "protected_by_compiler": "inlineMitigationsAlreadyExist",
    "protected_at_runtime": "inlineMitigationsAlreadyExist",
    "protected_at_perimeter": "inlineMitigationsAlreadyExist",
    "protected_by_mitigating_control": "inlineMitigationsAlreadyExist",
    # requires_configuration / requires_dependency / requires_environment have no SPDX equivalent:
    # they stay in the impact statement.
}
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def _time(text: Any) -> _dt.datetime | None:
    try:
        when = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(_dt.timezone.utc).replace(microsecond=0)


def _identifier(text: str) -> Any:
    kind = spdx.ExternalIdentifierType.cve if _CVE.match(text) else spdx.ExternalIdentifierType.securityOther
    return spdx.ExternalIdentifier(externalIdentifierType=kind, identifier=text)


def _props(item: dict[str, Any]) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value")) for p in item.get("properties") or []}


def add_vulnerabilities(b: Any, bom: dict[str, Any]) -> int:
    """Add the Security profile elements to builder `b` (spdx3._Builder); returns how many
    vulnerabilities were added (0: the profile is not used)."""
    count = 0
    for v in bom.get("vulnerabilities") or []:
        affected = [b.by_ref[a["ref"]] for a in v.get("affects") or []
                    if isinstance(a, dict) and a.get("ref") in b.by_ref]
        if not affected or not v.get("id"):
            continue
        vuln = spdx.security_Vulnerability(_id=b.sid("vulnerability", str(v.get("bom-ref") or v["id"])),
                                           creationInfo=b.ci, name=str(v["id"]))
        if v.get("description"):
            vuln.summary = str(v["description"])[:4000]
        if v.get("detail"):
            vuln.description = str(v["detail"])[:8000]
        ids = [str(v["id"])] + [str(r.get("id")) for r in v.get("references") or [] if r.get("id")]
        for text in dict.fromkeys(ids):
            vuln.externalIdentifier.append(_identifier(text))
        for key, field in (("published", "security_publishedTime"), ("updated", "security_modifiedTime")):
            when = _time(v.get(key)) if v.get(key) else None
            if when is not None:
                setattr(vuln, field, when)
        vuln.comment = _comment(v)
        b.add(vuln)
        for element in affected:
            b.relate(element, spdx.RelationshipType.hasAssociatedVulnerability, [vuln])
        b.add(_assessment(b, v, vuln, affected))
        count += 1
    return count


def _comment(v: dict[str, Any]) -> str:
    props = _props(v)
    severity = next((r.get("severity") for r in v.get("ratings") or [] if r.get("severity")), None)
    source = (v.get("source") or {}).get("name")
    parts = [f"severity {severity}" + (f" (rated by {source})" if source else "") if severity else "",
             f"kind {props['modelshield:kind']}" if "modelshield:kind" in props else "",
             ", ".join(f"CWE-{c}" for c in v.get("cwes") or []) if v.get("cwes") else "",
             f"recommendation: {v['recommendation']}" if v.get("recommendation") else ""]
    return "; ".join(p for p in parts if p)


def _assessment(b: Any, v: dict[str, Any], vuln: Any, affected: list[Any]) -> Any:
    analysis = v.get("analysis") or {}
    state = str(analysis.get("state") or "in_triage")
    detail = str(analysis.get("detail") or "")
    key = b.sid("vex", str(v.get("bom-ref") or v["id"]))
    common: dict[str, Any] = {"_id": key, "creationInfo": b.ci, "from_": vuln, "to": affected}
    when = _time(analysis.get("lastUpdated") or analysis.get("firstIssued") or "")
    if when is not None:
        common["security_publishedTime"] = when
    if state == "exploitable":
        responses = ", ".join(str(r) for r in analysis.get("response") or [])
        action = "; ".join(x for x in (f"response: {responses}" if responses else "", detail,
                                        str(v.get("recommendation") or "")) if x)
        return spdx.security_VexAffectedVulnAssessmentRelationship(
            relationshipType=spdx.RelationshipType.affects,
            security_actionStatement=action or "no action stated", **common)
    if state in ("not_affected", "false_positive"):
        rel = spdx.security_VexNotAffectedVulnAssessmentRelationship(
            relationshipType=spdx.RelationshipType.doesNotAffect, **common)
        justification = _JUSTIFICATION.get(str(analysis.get("justification") or ""))
        if justification:
            rel.security_justificationType = getattr(spdx.security_VexJustificationType, justification)
        statement = ("false positive" + (f": {detail}" if detail else "")) if state == "false_positive" else detail
        if analysis.get("justification") and not justification:
            statement = f"{analysis['justification']}" + (f": {statement}" if statement else "")
        if statement:
            rel.security_impactStatement = statement
        return rel
    if state in ("resolved", "resolved_with_pedigree"):
        return spdx.security_VexFixedVulnAssessmentRelationship(relationshipType=spdx.RelationshipType.fixedIn,
                                                                **common)
    pending = spdx.security_VexUnderInvestigationVulnAssessmentRelationship(
        relationshipType=spdx.RelationshipType.underInvestigationFor, **common)
    if detail:
        pending.comment = detail
    return pending
