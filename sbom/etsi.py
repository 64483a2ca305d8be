"""ETSI EN 304 223 evidence in the BOM: `definitions.standards` and `declarations`.

The rows are the evidence report's (`evidence.derive` on the BOM itself, for the BOM's phase), so
a BOM's declarations and `modelshield report` never disagree. Encoding (project reference
etsi-en-304-223.md, section 5): one requirement per provision; one claim per provision with its
evidence (or counter-evidence for gaps); one attestation map row per provision with the status in
`conformance.rationale` and a 0..1 score; justifications in the claim's reasoning; people's
attestations as evidence items with the person as `author` (an `affirmation` needs a signature,
which a policy entry does not carry). The BOM states evidence, never conformity.
The library models `definitions` but not `declarations`; both are written here into the JSON so
that they are built from the same rows (they are validated with the rest of the BOM).
"""
from __future__ import annotations

from typing import Any

from . import evidence
from .evidence_model import EvidenceReport, Row

SCORES = {"evidenced": 1.0, "partial": 0.5, "gap": 0.0, "needs-human-attestation": 0.0}
ASSESSOR = "assessor-modelshield"


def _req_ref(row_id: str) -> str:
    return f"req-etsi-{row_id}"


def declare(doc: dict[str, Any], etsi: dict[str, Any] | None, timestamp: str | None) -> EvidenceReport:
    """Add `definitions` and `declarations` to `doc` (in place) and return the rows used."""
    phase = evidence.normalise_phase(doc_phase(doc))
    report = evidence.derive(doc, phase=phase, etsi=etsi)
    rows = [r for r in report.rows if r.selected]
    std = evidence.table()["standard"]
    doc["definitions"] = {"standards": [{
        "bom-ref": std["bom_ref"], "name": std["name"], "version": std["version"], "owner": std["owner"],
        "description": std["description"] + " " + std["source_note"],
        "requirements": [{"bom-ref": _req_ref(r.id), "identifier": r.id, "title": r.title,
                          "descriptions": [f"UK AI Cyber Security Code of Practice provision {r.uk}; "
                                           f"modal: {r.modal}; roles: {', '.join(r.roles)}; phase: {r.phase}"]}
                         for r in rows],
        "externalReferences": [{"type": "documentation", "url": std["url"]}]}]}
    doc["declarations"] = _declarations(doc, report, rows, timestamp)
    return report


def doc_phase(doc: dict[str, Any]) -> str | None:
    for item in (doc.get("metadata") or {}).get("lifecycles") or []:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name.startswith("etsi-en-304-223:"):
            return name.split(":", 1)[1]
    return None


def _declarations(doc: dict[str, Any], report: EvidenceReport, rows: list[Row],
                  timestamp: str | None) -> dict[str, Any]:
    subject = (doc.get("metadata") or {}).get("component") or {}
    evidence_items, claims, mapping = [], [], []
    for row in rows:
        refs = []
        for n, ev in enumerate(row.evidence):
            ref = f"ev-{row.id}-{n}"
            item: dict[str, Any] = {"bom-ref": ref, "propertyName": f"modelshield:evidence:{ev.kind}",
                                    "description": ev.text[:2000]}
            if ev.pointer:
                item["data"] = [{"name": ev.kind, "contents": {"url": "#" + ev.pointer}}]
            if timestamp:
                item["created"] = timestamp
            evidence_items.append(item)
            refs.append((ref, ev.counter))
        for n, person in enumerate(row.attestations):
            ref = f"attestation-{row.id}-{n}"
            evidence_items.append({"bom-ref": ref, "propertyName": "modelshield:attestation:person",
                                   "description": f"Attested by a person, not checked by modelshield ({person.role}, "
                                                  f"{person.date}): {person.statement}"[:2000],
                                   "author": {"name": person.name}, "created": f"{person.date}T00:00:00Z"})
            refs.append((ref, False))
        claims.append(_claim(row, refs, subject.get("bom-ref")))
        mapping.append(_map_row(row))
    out: dict[str, Any] = {
        "assessors": [{"bom-ref": ASSESSOR, "thirdParty": False,
                       "organization": {"name": "modelshield (automated static scan)"}}],
        "claims": claims,
        "attestations": [{"summary": f"ETSI EN 304 223 evidence, {report.bom_phase or 'unstated'} phase. "
                                     f"{report.claim_boundary}", "assessor": ASSESSOR, "map": mapping}]}
    if evidence_items:
        out["evidence"] = evidence_items
    return out


def _claim(row: Row, refs: list[tuple[str, bool]], target: str | None) -> dict[str, Any]:
    claim: dict[str, Any] = {"bom-ref": f"claim-etsi-{row.id}", "predicate": f"{row.title} ({row.id}): {row.status}",
                             "reasoning": f"{row.reasoning} Limitation: {row.limitation}"}
    if target:
        claim["target"] = target
    support = [r for r, counter in refs if not counter]
    against = [r for r, counter in refs if counter]
    if support:
        claim["evidence"] = support
    if against:
        claim["counterEvidence"] = against
    if row.justification and not row.justification.expired:
        claim["reasoning"] += (f" Justification recorded in the policy: {row.justification.reason}; mitigation: "
                               f"{row.justification.mitigation}; expires {row.justification.expires}.")
    return claim


def _map_row(row: Row) -> dict[str, Any]:
    item: dict[str, Any] = {"requirement": _req_ref(row.id)}
    item["counterClaims" if row.status == "gap" else "claims"] = [f"claim-etsi-{row.id}"]
    if row.status == "needs-human-attestation":
        item["conformance"] = {"score": 0, "rationale": "needs-human-attestation: a person must attest this provision"}
    else:
        item["conformance"] = {"score": SCORES.get(row.status, 0.0), "rationale": row.status}
        item["confidence"] = {"score": 0.8 if row.status == "evidenced" else 0.5,
                              "rationale": "derived by the tool from the evidence in this BOM"}
    return item
