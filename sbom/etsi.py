"""ETSI EN 304 223 evidence: `definitions.standards` (via the library) and `declarations` (merged).

Each provision row of `data/etsi_provisions.toml` gets a status derived from what the providers
recorded: evidenced | partial | gap | needs-human-attestation. The BOM states evidence for named
provisions on named artefacts; it never claims conformity ("compliant" appears nowhere).
"""
from __future__ import annotations

from typing import Any, Callable

from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri
from cyclonedx.model.definition import Definitions, Requirement, Standard

from modelshield.scanner.findings import Kind, Verdict
from . import tables
from .context import BomContext

SCORES = {"evidenced": 1.0, "partial": 0.5, "gap": 0.0}
CLAIM_BOUNDARY = ("Evidence for the named ETSI EN 304 223 provisions on the artefacts listed in this BOM, "
                  "produced by a static scan. It is not a conformity assessment and does not state "
                  "conformity with the standard.")


def _rows(phase: str) -> list[dict[str, Any]]:
    return [row for row in tables.load("etsi_provisions")["provision"] if phase in row["phases"]]


def _req_ref(row: dict[str, Any]) -> str:
    return f"req-etsi-{row['id']}"


def definitions(ctx: BomContext) -> Definitions:
    """The standard with the requirements this BOM's phase reports on."""
    std = tables.load("etsi_provisions")["standard"]
    reqs = [Requirement(bom_ref=_req_ref(row), identifier=row["id"], title=row["title"],
                        descriptions=[f"UK AI Cyber Security Code of Practice provision {row['uk']}"])
            for row in _rows(ctx.phase)]
    return Definitions(standards=[Standard(
        bom_ref=std["bom_ref"], name=std["name"], version=std["version"], owner=std["owner"],
        description=std["description"], requirements=reqs,
        external_references=[ExternalReference(type=ExternalReferenceType.DOCUMENTATION, url=XsUri(std["url"]))])])


def provider(ctx: BomContext) -> None:
    """`declarations`: assessor, evidence records, claims and one attestation map row per provision."""
    facts = _facts(ctx)
    evidence = [_evidence(ctx, key, text, pointer) for key, text, pointer in facts["evidence"]]
    target = ctx.tops[0].bom_ref.value if len(ctx.tops) == 1 else None
    claims, rows = [], []
    for row in _rows(ctx.phase):
        status, reasoning, used = CHECKS[row["check"]](facts)
        if facts["inconclusive"] and status == "evidenced":
            status, reasoning = "partial", reasoning + " Some artefacts were inconclusive, so coverage is partial."
        claim_ref = f"claim-etsi-{row['id']}"
        claim: dict[str, Any] = {"bom-ref": claim_ref,
                                 "predicate": f"{row['title']} ({row['id']}): {status}", "reasoning": reasoning}
        if target:
            claim["target"] = target
        if used and status != "gap":
            claim["evidence"] = [f"ev-{key}" for key in used]
        elif used:
            claim["counterEvidence"] = [f"ev-{key}" for key in used]
        claims.append(claim)
        item: dict[str, Any] = {"requirement": _req_ref(row)}
        item["counterClaims" if status == "gap" else "claims"] = [claim_ref]
        if status in SCORES:
            item["conformance"] = {"score": SCORES[status], "rationale": status}
            item["confidence"] = {"score": 0.8 if status == "evidenced" else 0.5,
                                  "rationale": "derived by the tool from the scan of these artefacts"}
        else:
            item["conformance"] = {"score": 0, "rationale": f"{status}: a person must attest this provision"}
        rows.append(item)
    ctx.patches.declarations = {
        "assessors": [{"bom-ref": "assessor-modelshield", "thirdParty": False,
                       "organization": {"name": "modelshield (automated static scan)"}}],
        "evidence": evidence,
        "claims": claims,
        "attestations": [{"summary": f"ETSI EN 304 223 evidence, {ctx.phase} phase. {CLAIM_BOUNDARY}",
                          "assessor": "assessor-modelshield", "map": rows}],
    }


def _evidence(ctx: BomContext, key: str, text: str, pointer: str) -> dict[str, Any]:
    return {"bom-ref": f"ev-{key}", "propertyName": f"modelshield:evidence:{key}", "description": text,
            "data": [{"name": key, "contents": {"url": pointer}}],
            **({"created": ctx.timestamp_text()} if ctx.timestamp else {})}


_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".jinja", ".toml")


def _facts(ctx: BomContext) -> dict[str, Any]:
    """What the ETSI checks read: file, scan and model facts, and the evidence they point to."""
    arts = [a for e in ctx.entries for a in e.artefacts.values()]
    findings = [f for e in ctx.entries for f in e.findings] + [f for a in arts for f in a.findings]
    verdicts = [t.verdict for t in ctx.report.targets]
    facts: dict[str, Any] = {
        "files": len(arts),
        "hashed": sum(1 for a in arts if a.sha256 and a.sha512),
        "configs": sum(1 for a in arts if a.path.lower().endswith(_CONFIG_SUFFIXES)),
        "configs_hashed": sum(1 for a in arts if a.path.lower().endswith(_CONFIG_SUFFIXES) and a.sha256),
        "unsafe": Verdict.UNSAFE in verdicts,
        "inconclusive": Verdict.INCONCLUSIVE in verdicts,
        "threats": sum(1 for f in findings if f.active and f.kind is Kind.THREAT),
        "waived": sum(1 for f in findings if not f.active),
        **_model_facts(ctx),
        "phase": ctx.phase,
    }
    facts["evidence"] = _evidence_of(facts, verdicts)
    return facts


def _model_facts(ctx: BomContext) -> dict[str, Any]:
    """Card, licence, pinned commit, datasets, signatures and drift, over every model."""
    return {
        "card": all(e.card or e.sections for e in ctx.models) and bool(ctx.models),
        "licence": all(len(e.component.licenses) > 0 for e in ctx.models) and bool(ctx.models),
        "hub": all((e.target.provenance or {}).get("commit") for e in ctx.models) and bool(ctx.models),
        "datasets": bool(ctx.facts.get("datasets") or ctx.facts.get("datasets_scanned")),
        "signed": bool(ctx.facts.get("signature_statuses")) and all(
            s == "valid" for s in ctx.facts["signature_statuses"]),
        "drift": ctx.facts.get("drift"),
    }


def _evidence_of(facts: dict[str, Any], verdicts: list[Verdict]) -> list[tuple[str, str, str]]:
    """(kind, what it shows, JSON pointer) of every piece of evidence the BOM holds."""
    evidence = [("hashes", f"SHA-256 and SHA-512 computed locally for {facts['hashed']} of {facts['files']} files",
                 "#/components"),
                ("scan", f"static scan: verdict {','.join(v.value for v in verdicts) or 'none'}, "
                         f"{facts['threats']} active threat finding(s), {facts['waived']} waived", "#/vulnerabilities"),
                ("inventory", "model, file, dataset and library components with a dependency graph",
                 "#/dependencies")]
    if facts["card"]:
        evidence.append(("model-card", "modelCard filled from the model card and config", "#/components"))
    if facts["datasets"]:
        evidence.append(("datasets", "datasets named by the model card, as data components", "#/components"))
    if facts["drift"] is not None:
        evidence.append(("bom-diff", "file hashes compared with the development BOM", "#/metadata/properties"))
    return evidence


Check = Callable[[dict[str, Any]], tuple[str, str, list[str]]]


def _hashes(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["files"] and f["hashed"] == f["files"]:
        return "evidenced", "Every file has SHA-256 and SHA-512 computed during the scan.", ["hashes"]
    return "gap", f"{f['files'] - f['hashed']} file(s) could not be hashed.", ["hashes"]


def _config_hashes(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["configs"] and f["configs_hashed"] == f["configs"]:
        return ("partial", "Configuration and template files are hashed; change logging itself is organisational.",
                ["hashes"])
    return "needs-human-attestation", "No configuration files were found to hash.", []


def _scan(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["unsafe"]:
        return "gap", f"The scan found {f['threats']} active threat finding(s).", ["scan"]
    if f["inconclusive"]:
        return "partial", "Some artefacts could not be fully analysed.", ["scan"]
    return ("evidenced", "Static scan of every file without active threats; signatures and organisational "
                         "processes are outside this evidence.", ["scan"])


def _inventory(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    return "evidenced", "Components and dependencies are listed in this BOM.", ["inventory", "hashes"]


def _versioning(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["hub"] and f["signed"]:
        return "evidenced", "Commit-pinned identity, hashes and verified signatures.", ["inventory", "hashes"]
    missing = [x for x, ok in (("a pinned commit", f["hub"]), ("a verified signature", f["signed"])) if not ok]
    return "partial", "Hashes are recorded; missing: " + ", ".join(missing) + ".", ["hashes"]


def _documentation_gaps(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    missing = [x for x, ok in (("model card", f["card"]), ("licence", f["licence"]),
                               ("provenance (pinned commit)", f["hub"]), ("signature", f["signed"])) if not ok]
    if missing:
        return "gap", "Missing: " + ", ".join(missing) + "; a justification (waiver) is required.", ["inventory"]
    return "needs-human-attestation", "Documentation present; the justification is organisational.", ["inventory"]


def _model_card(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["card"]:
        return "partial", "Model card data is recorded; its completeness is not verified.", ["model-card"]
    return "gap", "No model card was found.", ["inventory"]


def _datasets(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    if f["datasets"]:
        return "partial", "Datasets are named by the card; how they were obtained is not evidenced.", ["datasets"]
    return "gap", "No training dataset is named.", ["inventory"]


def _audit_trail(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    used = ["hashes", "inventory"] + (["bom-diff"] if f["drift"] is not None else [])
    return "partial", f"This {f['phase']} BOM with timestamp and hashes is one entry of the audit trail.", used


def _human(f: dict[str, Any]) -> tuple[str, str, list[str]]:
    used = ["bom-diff"] if f["drift"] is not None else []
    return ("needs-human-attestation", "Evaluations are run and attested by people; the BOM diff shows what changed.",
            used)


CHECKS: dict[str, Check] = {
    "hashes": _hashes, "config_hashes": _config_hashes, "security_scan": _scan, "inventory": _inventory,
    "versioning": _versioning, "documentation_gaps": _documentation_gaps, "model_card": _model_card,
    "datasets": _datasets, "audit_trail": _audit_trail, "human": _human,
}
