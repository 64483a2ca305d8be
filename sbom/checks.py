"""Status of each EN 304 223 provision, derived from the evidence in a BOM and nothing else.

Statuses (see docs/evidence-report.md): `evidenced` the tool-checkable part is fully covered by
machine-checkable evidence for every artefact; `partial` some evidence, or parts a tool cannot see;
`gap` the tool looked and the evidence is missing or negative; `needs-human-attestation` an
organisational duty a person must sign; `n/a` not applicable to the selection or the artefacts.
`evidence.derive` downgrades `evidenced` to `partial` whenever an artefact is inconclusive.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .bomfacts import BomFacts, Located, prop, props
from .evidence_model import Evidence, Justification, Outcome

CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".jinja", ".j2", ".toml", ".txt", ".model")


@dataclass
class CheckContext:
    facts: BomFacts
    justifications: list[Justification] = field(default_factory=list)

    def justification(self, provision: str) -> Justification | None:
        live = [j for j in self.justifications if j.provision == provision and not j.expired]
        return live[0] if live else None

    def expired(self, provision: str) -> list[Justification]:
        return [j for j in self.justifications if j.provision == provision and j.expired]


Check = Callable[[CheckContext], Outcome]


def _files_evidence(f: BomFacts, hashed: list[Located]) -> Evidence:
    pointer = f.files[0].pointer.rsplit("/components/", 1)[0] + "/components" if f.files else None
    return Evidence("hash", f"SHA-256 and SHA-512 of {len(hashed)} of {len(f.files)} files, computed from the "
                    "bytes read", pointer, [x.name for x in hashed[:50]])


def _hashed(f: BomFacts) -> tuple[list[Located], list[Located]]:
    good: list[Located] = []
    bad: list[Located] = []
    for x in f.files:
        algs = {h.get("alg") for h in x.item.get("hashes") or []}
        read = prop(x.item, "modelshield:hash-source") not in ("hub-lfs-pointer", "none (not read)")
        (good if {"SHA-256", "SHA-512"} <= algs and read else bad).append(x)
    return good, bad


def hashes(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.files:
        return Outcome("gap", "The BOM lists no files, so no hashes are released for them.")
    good, bad = _hashed(f)
    evidence = [_files_evidence(f, good)]
    signatures = {m.name: f.signature(m) for m in f.models}
    if any(s == "valid" for s in signatures.values()):
        evidence.append(Evidence("signature", "a valid signature covers the released files: "
                                 + ", ".join(f"{k}: {v}" for k, v in signatures.items()), f.models[0].pointer))
    if bad:
        evidence.append(Evidence("hash", f"{len(bad)} file(s) without both hashes computed locally (not read or "
                                 "only the Hub's published hash)", None, [x.name for x in bad[:50]], counter=True))
        return Outcome("gap", f"{len(bad)} of {len(f.files)} files have no locally computed SHA-256 and SHA-512.",
                       evidence)
    return Outcome("evidenced", f"Every one of the {len(f.files)} files has SHA-256 and SHA-512 in the BOM.", evidence)


def _signature_evidence(f: BomFacts) -> tuple[dict[str, str], list[Evidence]]:
    outcomes = {m.name: f.signature(m) for m in f.models}
    evidence = []
    for m in f.models:
        signer = prop(m.item, "modelshield:signature:signer")
        reason = prop(m.item, "modelshield:signature:reason")
        text = f"signature of {m.name}: {outcomes[m.name]}" + (f", signer {signer}" if signer else "") + \
            (f" ({reason})" if reason else "")
        evidence.append(Evidence("signature", text, m.pointer, counter=outcomes[m.name] in ("invalid", "untrusted")))
    return outcomes, evidence


def authenticity(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.models:
        return Outcome("n/a", "The BOM holds no model.")
    outcomes, evidence = _signature_evidence(f)
    pinned = [m.name for m in f.models if f.pinned(m)]
    evidence.append(Evidence("inventory", "identity: " + ", ".join(_identity(f, m) for m in f.models),
                             f.models[0].pointer))
    bad = [n for n, o in outcomes.items() if o == "invalid"]
    if bad:
        return Outcome("gap", f"The signature of {', '.join(bad)} does not verify: the files are not what was signed.",
                       evidence)
    if all(o == "valid" for o in outcomes.values()):
        return Outcome("evidenced", "Every model has a valid signature from a trusted signer over its files, and "
                       "content hashes" + (" at pinned commits." if len(pinned) == len(f.models) else "."), evidence)
    missing = {n: o for n, o in outcomes.items() if o != "valid"}
    return Outcome("partial", "Hashes identify the bytes, but authenticity is not shown: " + ", ".join(
        f"{n} is {_signature_words(o)}" for n, o in missing.items()) + ".", evidence)


def _identity(f: BomFacts, m: Located) -> str:
    if f.pinned(m):
        return f"{m.name} at commit {m.item.get('version')}"
    return f"{m.name} by content digest {str(m.item.get('bom-ref'))[-16:]}"


def _signature_words(outcome: str) -> str:
    return {"unsigned": "unsigned", "not-checked": "not checked for a signature",
            "untrusted": "signed by a signer the trust policy does not trust",
            "unverifiable": "signed in a way that could not be verified here"}.get(outcome, outcome)


def supply_chain(c: CheckContext) -> Outcome:
    f = c.facts
    threats, waived, advisories = f.active_threats(), f.waived(), f.advisories()
    outcomes, evidence = _signature_evidence(f)
    evidence.insert(0, Evidence("scan", f"static scan of {len(f.files)} files: verdict {f.verdict() or 'unknown'}",
                                "/metadata/properties"))
    evidence += [Evidence("finding", f"{v.item.get('id')}: {v.item.get('description', '')}"[:300], v.pointer,
                          [str(v.item.get("id"))], counter=True) for v in threats[:50]]
    evidence += [Evidence("advisory", f"{v.item.get('id')} affects {_affected(f, v)}", v.pointer,
                          [str(v.item.get("id"))], counter=True) for v in advisories[:50]]
    evidence += [Evidence("waiver", f"{v.item.get('id')} waived: {_detail(v)}"[:300], v.pointer,
                          [str(v.item.get("id"))]) for v in waived[:50]]
    loaders = [lib for lib in f.libraries if prop(lib.item, "modelshield:role") in ("loader", "runtime")]
    if loaders:
        evidence.append(Evidence("runtime", f"{len(loaders)} runtime package(s) named by the user",
                                 loaders[0].pointer, [lib.name for lib in loaders[:30]]))
    gaps = []
    if advisories:
        gaps.append("known advisories affect the runtime: " + _ids(advisories))
    if threats:
        gaps.append(f"{len(threats)} active threat finding(s) ({_ids(threats)})")
    if any(o == "invalid" for o in outcomes.values()):
        gaps.append("a signature does not verify")
    if gaps:
        return Outcome("gap", "The supply chain is not secured: " + "; ".join(gaps) + ".", evidence)
    partial = []
    if waived:
        partial.append(f"{len(waived)} finding(s) are waived by policy (a decision, not evidence of safety)")
    if not all(o == "valid" for o in outcomes.values()):
        partial.append("no valid signature ties every model to its publisher")
    if not loaders:
        partial.append("no runtime was named, so loader advisories were not checked")
    if partial:
        return Outcome("partial", "Scanned without active threats, but " + "; ".join(partial) + ".", evidence)
    return Outcome("evidenced", "Scanned without active threats, every model validly signed, the named runtime "
                   "without known advisories.", evidence)


def _ids(vulns: list[Located]) -> str:
    return ", ".join(sorted({str(v.item.get("id")) for v in vulns}))


def _detail(vuln: Located) -> str:
    return str((vuln.item.get("analysis") or {}).get("detail", ""))


def _affected(f: BomFacts, vuln: Located) -> str:
    refs = [a.get("ref") for a in vuln.item.get("affects") or [] if isinstance(a, dict)]
    names = {x.item.get("bom-ref"): x.name for x in f.libraries + f.files + f.models}
    return ", ".join(names.get(r, str(r)) for r in refs) or "?"


def risk_assessment(c: CheckContext) -> Outcome:
    f = c.facts
    outcomes, evidence = _signature_evidence(f)
    evidence.insert(0, Evidence("scan", f"findings in the BOM: {len(f.vulnerabilities)} "
                                f"({len(f.active_threats())} active threats)", "/vulnerabilities"))
    missing = []
    if any(o == "not-checked" for o in outcomes.values()):
        missing.append("signatures were not checked")
    if not f.libraries:
        missing.append("no runtime was named for an advisory check")
    threats = f.active_threats()
    found = (f" ({len(threats)} active threat finding(s): {_ids(threats)}; see 5.2.3-1)" if threats else "")
    if missing:
        return Outcome("partial", f"The artefacts were scanned{found}, but " + " and ".join(missing) + ".", evidence)
    return Outcome("evidenced", f"Artefacts scanned{found}, signatures checked and the named runtime matched against "
                   "advisories.", evidence)


def due_diligence(c: CheckContext) -> Outcome:
    f = c.facts
    evidence, unknown = [], []
    for m in f.models:
        supplier = (m.item.get("supplier") or {}).get("name")
        licences = m.item.get("licenses") or []
        evidence.append(Evidence("inventory", f"{m.name}: supplier {supplier or 'not stated'}, licence "
                                 f"{_licence_text(licences) or 'not stated'}, signature {f.signature(m)}", m.pointer))
        if not supplier:
            unknown.append(m.name)
    if not f.models:
        return Outcome("n/a", "The BOM holds no model.")
    if unknown:
        return Outcome("gap", f"The supplier of {', '.join(unknown)} is not known.", evidence)
    return Outcome("partial", "Supplier, licence and signature outcome are recorded; vetting the provider is "
                   "organisational.", evidence)


def _licence_text(licences: list[dict]) -> str:
    out = []
    for item in licences:
        lic = item.get("license") or {}
        out.append(str(item.get("expression") or lic.get("id") or lic.get("name") or ""))
    return ", ".join(x for x in out if x)


def inventory(c: CheckContext) -> Outcome:
    f = c.facts
    deps = c.facts.bom.get("dependencies") or []
    evidence = [Evidence("inventory", f"{len(f.models)} model(s), {len(f.files)} file(s), {len(f.datasets)} "
                         f"dataset(s), {len(f.libraries)} runtime package(s); {len(deps)} dependency entries",
                         "/dependencies")]
    incomplete = [comp.get("bom-ref") for comp in f.bom.get("compositions") or []
                  if isinstance(comp, dict) and comp.get("aggregate") not in ("complete",)
                  and str(comp.get("bom-ref", "")).startswith("composition:files")]
    if not f.files:
        return Outcome("gap", "The BOM lists no files.", evidence)
    if incomplete:
        evidence.append(Evidence("inventory", "file lists not complete (files listed but not read)", "/compositions",
                                 counter=True))
        return Outcome("partial", "The inventory names files that were not read.", evidence)
    return Outcome("evidenced", "Every scanned file, model, named dataset and base model is a component with "
                   "dependency edges.", evidence)


def _documentation(f: BomFacts) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    for m in f.models:
        what = []
        if not _has_card(m.item):
            what.append("model card")
        if not m.item.get("licenses"):
            what.append("licence")
        datasets = ((m.item.get("modelCard") or {}).get("modelParameters") or {}).get("datasets") or []
        if not datasets:
            what.append("training-data provenance")
        if what:
            missing[m.name] = what
    return missing


def _has_card(model: dict) -> bool:
    """A card was read (a `model_card` file), is referenced, or its prose reached the modelCard."""
    if any(prop(child, "modelshield:format") == "model_card" for child in model.get("components") or []):
        return True
    if any(r.get("type") == "model-card" for r in model.get("externalReferences") or [] if isinstance(r, dict)):
        return True
    return bool((model.get("modelCard") or {}).get("considerations"))


def documentation_gaps(c: CheckContext) -> Outcome:
    f = c.facts
    missing = _documentation(f)
    evidence = [Evidence("card", f"{name}: no {', no '.join(what)}", m.pointer, counter=True)
                for name, what in missing.items() for m in f.models if m.name == name]
    if not f.models:
        return Outcome("n/a", "The BOM holds no model.")
    if not missing:
        return Outcome("n/a", "Every model has a model card, a licence and named training data: nothing to justify.",
                       [Evidence("card", "card, licence and datasets present for "
                                 + ", ".join(m.name for m in f.models), f.models[0].pointer)])
    text = "; ".join(f"{n}: no {', no '.join(w)}" for n, w in missing.items())
    justification = c.justification("5.2.3-2")
    if justification is not None:
        evidence.append(Evidence("justification", f"justified in the policy: {justification.reason} (mitigation: "
                                 f"{justification.mitigation}; expires {justification.expires})"))
        return Outcome("needs-human-attestation", f"Poorly documented: {text}. The policy records a justification "
                       f"by a person: {justification.reason}", evidence)
    expired = c.expired("5.2.3-2")
    extra = f" A justification expired on {expired[0].expires}." if expired else ""
    return Outcome("gap", f"Poorly documented: {text}. No justification is recorded.{extra}", evidence)


def mitigations(c: CheckContext) -> Outcome:
    if not _documentation(c.facts):
        return Outcome("n/a", "No poorly documented component needs mitigations.")
    justification = c.justification("5.2.3-2")
    if justification is None:
        return Outcome("gap", "A poorly documented component is used without a recorded mitigation and risk "
                       "assessment.")
    evidence = [Evidence("justification", f"mitigation: {justification.mitigation}"
                         + (f"; risk assessment: {justification.risk_assessment}" if justification.risk_assessment
                            else "; no risk assessment reference"))]
    return Outcome("needs-human-attestation", f"Mitigation recorded in the policy: {justification.mitigation}"
                   + ("" if justification.risk_assessment else " (no risk assessment reference recorded)"), evidence)


def evaluations(c: CheckContext) -> Outcome:
    drift = c.facts.drift()
    evidence = []
    if c.facts.previous_bom():
        changed = sum(len(v) for v in drift.values())
        evidence.append(Evidence("drift", f"compared with {c.facts.previous_bom()}: {changed} file(s) changed, added "
                                 "or removed", "/metadata/properties"))
    return Outcome("needs-human-attestation", "Re-running evaluations is done and attested by people; the BOM "
                   "records what changed.", evidence)


def model_card(c: CheckContext) -> Outcome:
    f = c.facts
    with_card = [m for m in f.models if m.item.get("modelCard") and _has_card(m.item)]
    evidence = [Evidence("card", f"modelCard of {m.name}: " + ", ".join(sorted(m.item["modelCard"])),
                         m.pointer + "/modelCard") for m in with_card]
    if not f.models:
        return Outcome("n/a", "The BOM holds no model.")
    if not with_card:
        return Outcome("gap", "No model has a model card.", evidence)
    limited = [m.name for m in with_card if "considerations" not in m.item["modelCard"]]
    note = f" No limitations or intended uses are stated for {', '.join(limited)}." if limited else ""
    return Outcome("partial", "Model card data is recorded as the card states it; its completeness is not "
                   f"verified.{note}", evidence)


def data_provenance(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.datasets:
        return Outcome("gap", "No training data is named by any file.")
    scanned = [d for d in f.datasets if prop(d.item, "modelshield:dataset:scanned") != "false"]
    evidence = [Evidence("dataset", f"{len(f.datasets)} data component(s) named by the model's files, "
                         f"{len(scanned)} scanned", f.datasets[0].pointer, [d.name for d in f.datasets[:50]])]
    return Outcome("partial", "Training data is named; how it was obtained is not stated in the files.", evidence)


def data_sources(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.datasets:
        return Outcome("gap", "No training data is named by any file.")
    with_url = [d for d in f.datasets if _has_url(d.item)]
    evidence = [Evidence("dataset", f"{len(with_url)} of {len(f.datasets)} data component(s) with a source URL",
                         f.datasets[0].pointer, [d.name for d in with_url[:50]])]
    if not with_url:
        return Outcome("gap", "No training data source has a URL.", evidence)
    return Outcome("partial", f"{len(with_url)} of {len(f.datasets)} data sources have a URL; no file states "
                   "when the data was obtained.", evidence)


def _has_url(item: dict) -> bool:
    if any(r.get("url") for r in item.get("externalReferences") or [] if isinstance(r, dict)):
        return True
    return any((d.get("contents") or {}).get("url") for d in item.get("data") or [] if isinstance(d, dict))


def config_changes(c: CheckContext) -> Outcome:
    f = c.facts
    configs = [x for x in f.files if x.name.lower().endswith(CONFIG_SUFFIXES)]
    if not configs:
        return Outcome("n/a", "No configuration, template or prompt file was found.")
    hashed = [x for x in configs if x.item.get("hashes")]
    evidence = [Evidence("hash", f"{len(hashed)} of {len(configs)} configuration/template files hashed",
                         configs[0].pointer, [x.name for x in configs[:50]])]
    if f.previous_bom():
        evidence.append(Evidence("drift", "changes since the previous BOM: " + ", ".join(
            f"{k} {len(v)}" for k, v in f.drift().items()), "/metadata/properties"))
    return Outcome("partial", "Configuration and template files are hashed so changes show between BOMs; "
                   "logging them as they happen is organisational.", evidence)


def release_testing(c: CheckContext) -> Outcome:
    f = c.facts
    evidence = [Evidence("scan", f"static scan of {len(f.files)} files: verdict {f.verdict() or 'unknown'}, "
                         f"{len(f.vulnerabilities)} finding(s)", "/vulnerabilities")]
    if not f.files:
        return Outcome("gap", "Nothing was scanned.", evidence)
    return Outcome("evidenced", "This release's artefacts were security-scanned; the findings are in the BOM.",
                   evidence)


def share_findings(c: CheckContext) -> Outcome:
    f = c.facts
    evidence = [Evidence("finding", f"{len(f.vulnerabilities)} finding(s) with VEX analysis in the BOM",
                         "/vulnerabilities", sorted({str(v.item.get("id")) for v in f.vulnerabilities})[:50])]
    return Outcome("partial", "Findings are in a shareable, machine-readable form (CycloneDX VEX, SARIF); sharing "
                   "them is organisational.", evidence)


def retest_after_update(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.previous_bom():
        return Outcome("needs-human-attestation", "No previous BOM is linked; a person states whether an update "
                       "was major and re-tested.")
    drift = f.drift()
    changed = sum(len(v) for v in drift.values())
    counts = ", ".join(f"{k} {len(v)}" for k, v in drift.items())
    evidence = [Evidence("drift", f"compared with {f.previous_bom()}: {counts}", "/metadata/properties",
                         [p for v in drift.values() for p in v][:50])]
    return Outcome("partial", f"{changed} file(s) changed since the previous BOM and this release was re-scanned; "
                   "whether the update is major is a person's call.", evidence)


def audit_trail(c: CheckContext) -> Outcome:
    f = c.facts
    if not f.timestamp:
        return Outcome("gap", "This BOM has no timestamp, so it cannot serve as an audit-trail entry.",
                       [Evidence("bom", "metadata.timestamp missing", "/metadata", counter=True)])
    evidence = [Evidence("bom", f"BOM {f.bom.get('serialNumber', '')} of {f.timestamp}, phase {f.phase or '?'}",
                         "/metadata")]
    if f.previous_bom():
        evidence.append(Evidence("bom", f"links the previous BOM {f.previous_bom()}", "/externalReferences"))
    return Outcome("partial", "This timestamped BOM with hashes is one entry of the audit trail.", evidence)


def decommission(c: CheckContext) -> Outcome:
    f = c.facts
    decision = f.decision()
    if f.phase != "end-of-life" or not decision:
        return Outcome("needs-human-attestation", "No end-of-life BOM records a decommissioning decision.")
    good, _ = _hashed(f)
    evidence = [Evidence("decision", f"decision: {decision}", "/metadata/properties"), _files_evidence(f, good)]
    return Outcome("partial", "The decision and the hashes of what was retired are recorded; the deletion itself "
                   "cannot be observed by the tool.", evidence)


CHECKS: dict[str, Check] = {
    "hashes": hashes, "authenticity": authenticity, "supply_chain": supply_chain, "risk_assessment": risk_assessment,
    "due_diligence": due_diligence, "inventory": inventory, "documentation_gaps": documentation_gaps,
    "mitigations": mitigations, "evaluations": evaluations, "model_card": model_card,
    "data_provenance": data_provenance, "data_sources": data_sources, "config_changes": config_changes,
    "release_testing": release_testing, "share_findings": share_findings, "retest_after_update": retest_after_update,
    "audit_trail": audit_trail, "decommission": decommission,
}


def property_names(item: dict) -> set[str]:
    return set(props(item))
