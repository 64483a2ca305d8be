"""`sbom audit`: re-assess a CycloneDX BOM against today's advisories and known-bad hashes without
touching the artefacts (the operational-phase re-assessment).

Files come from the BOM's `file` components (SHA-256, name, our `modelshield:format` property, else
the format its file name implies); the runtime from `--requirements`/`--python`, else the BOM's
own pypi library components, else this environment. Earlier modelshield findings recorded in the
BOM (not advisories) are carried over so that the exit code is the scan's; advisory and known-bad
vulnerabilities are recomputed. `write_back` returns the BOM with those vulnerabilities replaced.
"""
from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, cast

from packaging.utils import canonicalize_name

from modelshield.scanner.findings import (Artefact, ArtefactProperties, Finding, FormatName, Kind, Location, Report,
                                          RuntimePackage, Severity, Status, Suppression, TargetResult)
from . import severity as sev
from .audit import RULE_AFFECTED, RULE_DISPUTED, RULE_INFO, RULE_KNOWN_BAD, AuditResult, check_report
from .interface import AdvisoryDatabase, Runtime, as_dict, pypi_purl
from .errors import InputError
from .policy import AdvisoryPolicy
from .runtime import load_runtime

MODEL_TYPES = ("machine-learning-model", "data", "application", "framework")
ADV_REF = "adv:"
# Formats implied by a file name, for BOMs that carry no modelshield:format property.
SUFFIX_FORMATS = {".keras": ["keras"], ".h5": ["hdf5"], ".hdf5": ["hdf5"], ".gguf": ["gguf"],
                  ".bin": ["torch-zip", "torch_legacy"], ".pt": ["torch-zip", "torch_legacy"],
                  ".pth": ["torch-zip", "torch_legacy"], ".ckpt": ["torch-zip", "torch_legacy"],
                  ".onnx": ["onnx"], ".pkl": ["pickle"], ".pickle": ["pickle"], ".joblib": ["pickle"],
                  ".npy": ["numpy"], ".npz": ["numpy"], ".safetensors": ["safetensors"], ".pb": ["tensorflow"],
                  ".jinja": ["chat_template"]}
_CWE = re.compile(r"^CWE-(\d+)$")


@dataclass
class BomAudit:
    report: Report
    result: AuditResult
    files: int
    file_refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (target, path) -> bom-ref
    library_refs: dict[tuple[str, str | None], str] = field(default_factory=dict)  # (name, version) -> bom-ref


def _props(comp: dict[str, Any]) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value")) for p in comp.get("properties") or [] if isinstance(p, dict)}


def _sha256(comp: dict[str, Any]) -> str | None:
    for h in comp.get("hashes") or []:
        if isinstance(h, dict) and str(h.get("alg", "")).upper() == "SHA-256" and isinstance(h.get("content"), str):
            return h["content"].lower()
    return None


def _walk(components: Any) -> list[dict[str, Any]]:
    out = []
    for comp in components if isinstance(components, list) else []:
        if isinstance(comp, dict):
            out.append(comp)
            out += _walk(comp.get("components"))
    return out


def _artefact(comp: dict[str, Any]) -> Artefact:
    props = _props(comp)
    path = str(comp.get("name") or comp.get("bom-ref") or "file")
    fmt = props.get("modelshield:format") or ""
    suffix = posixpath.splitext(path.lower())[1]
    implied = SUFFIX_FORMATS.get(suffix, [])
    if posixpath.basename(path.lower()) == "saved_model.pb":
        implied = ["tensorflow"]
    artefact = Artefact(path=path, sha256=_sha256(comp),
                        format=FormatName.parse(fmt or (implied[0] if implied else "unknown")),
                        status=Status.INVENTORIED,
                        # formats implied by the name only (the BOM holds no facts): keys from formats.toml
                        properties=cast(ArtefactProperties, {f: {"from": "file name"} for f in implied}))
    size = props.get("modelshield:size")
    artefact.size = int(size) if size and size.isdigit() else 0
    return artefact


def targets_of(doc: dict[str, Any]) -> tuple[list[TargetResult], dict[tuple[str, str], str]]:
    """One target per model/data component with file children; loose files form one more."""
    refs: dict[tuple[str, str], str] = {}
    targets: list[TargetResult] = []
    meta = as_dict(doc.get("metadata"))
    roots = ([meta["component"]] if isinstance(meta.get("component"), dict) else []) + \
        [c for c in doc.get("components") or [] if isinstance(c, dict)]
    claimed: set[int] = set()
    for comp in roots:
        files = [c for c in _walk(comp.get("components")) if c.get("type") == "file"]
        if comp.get("type") == "file" or not files:
            continue
        name = str(comp.get("bom-ref") or comp.get("name") or "model")
        target = TargetResult(target=name, kind="bom")
        for f in files:
            claimed.add(id(f))
            artefact = _artefact(f)
            target.artefacts.append(artefact)
            refs[(name, artefact.path)] = str(f.get("bom-ref") or artefact.path)
        targets.append(target)
    loose = [c for c in _walk(doc.get("components")) if c.get("type") == "file" and id(c) not in claimed]
    if loose:
        name = str((meta.get("component") or {}).get("bom-ref") or doc.get("serialNumber") or "bom")
        target = TargetResult(target=name, kind="bom")
        for f in loose:
            artefact = _artefact(f)
            target.artefacts.append(artefact)
            refs[(name, artefact.path)] = str(f.get("bom-ref") or artefact.path)
        targets.append(target)
    return targets, refs


def libraries_of(doc: dict[str, Any]) -> tuple[list[RuntimePackage], dict[tuple[str, str | None], str]]:
    """pkg:pypi components of the BOM (a deployment BOM lists the loader libraries)."""
    packages: list[RuntimePackage] = []
    refs: dict[tuple[str, str | None], str] = {}
    meta = as_dict(doc.get("metadata"))
    for comp in _walk(doc.get("components")) + _walk([meta.get("component")] if meta.get("component") else []):
        purl = comp.get("purl")
        if not isinstance(purl, str) or not purl.startswith("pkg:pypi/"):
            continue
        name = str(canonicalize_name(str(comp.get("name") or purl[9:].split("@")[0])))
        version = comp.get("version") if isinstance(comp.get("version"), str) else None
        packages.append(RuntimePackage(name=name, version=version, source="bom component", purl=purl))
        refs[(name, version)] = str(comp.get("bom-ref") or purl)
    return packages, refs


def _earlier_findings(doc: dict[str, Any], report: Report, refs: dict[tuple[str, str], str]) -> None:
    """modelshield's own non-advisory vulnerabilities recorded in the BOM, as findings again."""
    by_ref = {ref: (target, path) for (target, path), ref in refs.items()}
    targets = {t.target: t for t in report.targets}
    for vuln in doc.get("vulnerabilities") or []:
        if not isinstance(vuln, dict) or str(vuln.get("bom-ref", "")).startswith(ADV_REF):
            continue
        if (vuln.get("source") or {}).get("name") != "modelshield" or str(vuln.get("id", "")).startswith("MS-ADV-"):
            continue
        props = _props(vuln)
        kind = Kind.INCONCLUSIVE if props.get("modelshield:kind") == "inconclusive" else Kind.THREAT
        ratings = [r for r in vuln.get("ratings") or [] if isinstance(r, dict)]
        try:
            level = Severity.parse(str(ratings[0].get("severity"))) if ratings else Severity.HIGH
        except ValueError:
            level = Severity.HIGH
        analysis = as_dict(vuln.get("analysis"))
        state = analysis.get("state")
        for affect in vuln.get("affects") or []:
            ref = str((affect or {}).get("ref", ""))
            finding = Finding(rule_id=str(vuln.get("id")), severity=level, kind=kind,
                              message="recorded in the BOM: "
                                      f"{vuln.get('description') or vuln.get('detail') or vuln.get('id')}",
                              location=Location(path=by_ref.get(ref, ("", ref))[1]),
                              title=str(vuln.get("detail") or ""),
                              recommendation=str(vuln.get("recommendation") or ""),
                              evidence={"from_bom": True, "analysis": state})
            if state in ("not_affected", "false_positive", "resolved", "resolved_with_pedigree"):
                finding.suppressed = Suppression(reason=str(analysis.get("detail") or f"VEX {state} in the BOM"),
                                                 vex_state=str(state))
            if ref in by_ref:
                target = targets[by_ref[ref][0]]
                art = next(a for a in target.artefacts if a.path == by_ref[ref][1])
                art.findings.append(finding)
            elif report.targets:
                match = next((t for t in report.targets if t.target == ref), report.targets[0])
                match.findings.append(finding)


def audit(doc: dict[str, Any], db: AdvisoryDatabase, *, requirements: list[Path] | None = None,
          python: Path | None = None, policy: AdvisoryPolicy | None = None, ignore: list[str] | tuple[str, ...] = (),
          fail_on: Severity = Severity.HIGH, apply_suppressions: Callable[[list[Finding], str], None] | None = None,
          name: str = "bom") -> BomAudit:
    """Re-evaluate `doc` (InputError when it is not a CycloneDX BOM)."""
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise InputError(f"{name} is not a CycloneDX JSON BOM")
    targets, file_refs = targets_of(doc)
    libraries, library_refs = libraries_of(doc)
    if requirements or python is not None:
        runtime = load_runtime(requirements, python)
    elif libraries:
        runtime = Runtime(packages=libraries, source=f"bom:{name}")
    else:
        runtime = load_runtime(None, None)
    report = Report(targets=targets, tool_version=_version(), fail_on=fail_on,
                    policy={"source": "audit", "fail_on": str(fail_on), "inconclusive": "fail"})
    _earlier_findings(doc, report, file_refs)
    result = check_report(report, runtime, db, policy=policy, ignore=ignore, apply_suppressions=apply_suppressions,
                          record_runtime=bool(requirements) or python is not None or bool(libraries))
    files = sum(1 for t in targets for a in t.artefacts if a.sha256)
    return BomAudit(report=report, result=result, files=files, file_refs=file_refs, library_refs=library_refs)


def _version() -> str:
    from modelshield.scanner import __version__

    return __version__


def write_back(doc: dict[str, Any], audit: BomAudit, now: str | None = None) -> dict[str, Any]:
    """`doc` with its advisory/known-bad vulnerabilities replaced by today's (BOM version + 1)."""
    out = copy.deepcopy(doc)
    vulns = [v for v in out.get("vulnerabilities") or []
             if not (isinstance(v, dict) and (str(v.get("bom-ref", "")).startswith(ADV_REF) or
                                              str(v.get("id", "")).startswith("MS-ADV-") or
                                              _props(v).get("modelshield:rule", "").startswith("MS-ADV-")))]
    components = out.setdefault("components", [])
    for target in audit.report.targets:
        for finding in target.findings + [f for a in target.artefacts for f in a.findings]:
            if finding.rule_id == RULE_KNOWN_BAD:
                ref = audit.file_refs.get((target.target, finding.location.path), finding.location.path)
                vulns.append(_known_bad_vuln(finding, ref))
            elif finding.rule_id in (RULE_AFFECTED, RULE_DISPUTED, RULE_INFO):
                loader = _loader_ref(finding, audit, components)
                files = [audit.file_refs.get((target.target, p), p) for p in finding.evidence.get("files") or []]
                vulns.append(advisory_vuln(finding, loader, files, target.target))
    out["vulnerabilities"] = vulns
    if isinstance(out.get("version"), int):
        out["version"] += 1
    meta = out.setdefault("metadata", {})
    props = [p for p in meta.get("properties") or [] if not str(p.get("name", "")).startswith("modelshield:audit:")]
    db = audit.report.advisory_database
    props += [{"name": "modelshield:audit:database",
               "value": f"{db.get('kind')} {db.get('date')} ({db.get('records')} records)"},
              {"name": "modelshield:audit:runtime", "value": str(audit.report.runtime_source)},
              {"name": "modelshield:audit:verdict", "value": audit.report.verdict.value}]
    if now:
        props.append({"name": "modelshield:audit:date", "value": now})
    meta["properties"] = props
    return out


def _loader_ref(finding: Finding, audit: BomAudit, components: list[dict[str, Any]]) -> str:
    name, version = finding.evidence["package"], finding.evidence.get("version")
    ref = audit.library_refs.get((name, version))
    if ref:
        return ref
    purl = pypi_purl(name, version)
    if not any(isinstance(c, dict) and c.get("bom-ref") == purl for c in _walk(components)):
        comp: dict[str, Any] = {"type": "library", "bom-ref": purl, "name": name, "purl": purl}
        if version:
            comp["version"] = version
        comp["properties"] = [{"name": "modelshield:runtime-source", "value": str(finding.evidence.get("source", ""))}]
        components.append(comp)
    audit.library_refs[(name, version)] = purl
    return purl


def _source(ident: str) -> dict[str, str]:
    if ident.startswith("GHSA-"):
        return {"name": "GitHub Advisory Database", "url": f"https://github.com/advisories/{ident}"}
    if ident.startswith("CVE-"):
        return {"name": "NVD", "url": f"https://nvd.nist.gov/vuln/detail/{ident}"}
    return {"name": "OSV", "url": f"https://osv.dev/vulnerability/{ident}"}


def advisory_vuln(finding: Finding, loader_ref: str, file_refs: list[str], target: str) -> dict[str, Any]:
    """One CycloneDX vulnerability for an advisory finding: affects the loader and the files."""
    ev = finding.evidence
    primary = ev["advisory"]
    ratings = []
    for item in ev.get("cvss") or []:
        method = item["method"]
        ratings.append({"source": _source(primary), "score": item["score"],
                        "severity": str(sev.from_score(float(item["score"]))), "method": method,
                        "vector": item["vector"]})
    if not ratings:
        ratings.append({"source": _source(primary), "severity": str(finding.severity), "method": "other"})
    affects = [{"ref": loader_ref, "versions": [{"version": ev["version"], "status": "affected"}]} if ev.get("version")
               else {"ref": loader_ref}]
    affects += [{"ref": ref} for ref in file_refs]
    vuln: dict[str, Any] = {
        "bom-ref": f"{ADV_REF}{primary}:{ev['package']}:{target}",
        "id": primary, "source": _source(primary),
        "references": [{"id": i, "source": _source(i)} for i in ev.get("aliases") or []],
        "ratings": ratings,
        "cwes": [int(m.group(1)) for c in ev.get("cwes") or [] if (m := _CWE.match(c))],
        "description": ev.get("summary") or finding.title,
        "detail": finding.message,
        "recommendation": (f"Upgrade {ev['package']} to {ev['fix']} or later." if ev.get("fix")
                           else f"No fixed release of {ev['package']} is published; "
                                "do not let it load untrusted files."),
        "analysis": _analysis(finding),
        "affects": affects,
        "properties": [{"name": "modelshield:rule", "value": finding.rule_id},
                       {"name": "modelshield:package", "value": ev["package"]},
                       {"name": "modelshield:installed-version", "value": str(ev.get("version"))},
                       {"name": "modelshield:fix-version", "value": str(ev.get("fix") or "none")},
                       {"name": "modelshield:trigger", "value": str(ev.get("trigger"))},
                       {"name": "modelshield:runtime-source", "value": str(ev.get("source"))},
                       *[{"name": "modelshield:file", "value": f} for f in ev.get("files") or []]],
    }
    if ev.get("published"):
        vuln["published"] = ev["published"]
    if not vuln["cwes"]:
        del vuln["cwes"]
    if not vuln["references"]:
        del vuln["references"]
    return vuln


def _analysis(finding: Finding) -> dict[str, Any]:
    waiver = finding.suppressed
    if waiver is not None:
        # As the deployment BOM says it (sbom/vex.py): a justified waiver is its VEX state; one
        # without a justification accepts the risk (exploitable, will not fix).
        detail = f"waiver: {waiver.reason}" + (f" (expires {waiver.expires})" if waiver.expires else "")
        if waiver.vex_justification:
            return {"state": waiver.vex_state or "not_affected", "justification": waiver.vex_justification,
                    "detail": detail}
        return {"state": "exploitable", "response": ["will_not_fix"], "detail": detail}
    if finding.rule_id == RULE_INFO:
        return {"state": "not_affected", "justification": "code_not_reachable",
                "detail": "no artefact of a format this advisory concerns is part of this model"}
    if finding.rule_id == RULE_DISPUTED:
        return {"state": "in_triage", "detail": "the vendor disputes this advisory"}
    return {"state": "exploitable", "detail": finding.message}


def _known_bad_vuln(finding: Finding, file_ref: str) -> dict[str, Any]:
    ev = finding.evidence
    vuln: dict[str, Any] = {
        "bom-ref": f"{ADV_REF}known-bad:{ev.get('sha256')}", "id": "MS-ADV-005",
        "source": {"name": "modelshield"},
        "ratings": [{"source": {"name": "modelshield"}, "severity": "critical", "method": "other"}],
        "cwes": [506], "description": finding.message, "recommendation": finding.recommendation,
        "analysis": _analysis(finding), "affects": [{"ref": file_ref}],
        "properties": [{"name": "modelshield:rule", "value": "MS-ADV-005"},
                       {"name": "modelshield:known-bad-source", "value": str(ev.get("source"))}],
    }
    if str(ev.get("reference", "")).startswith("http"):
        vuln["advisories"] = [{"url": ev["reference"]}]
    return vuln
