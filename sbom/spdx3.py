"""SPDX 3.0.1 JSON-LD with the AI and Dataset profiles, built with `spdx-python-model`.

The SPDX document is derived from the validated CycloneDX BOM of the same scan (one source of
truth): each `machine-learning-model` becomes an `ai_AIPackage`, each `data` component a
`dataset_DatasetPackage`, each `file` a `software_File` with its hashes, each runtime library a
`software_Package`; relationships `contains`, `trainedOn`, `hasDeclaredLicense`, `ancestorOf` and
`dependsOn` follow the BOM's components, modelCard datasets, licences, pedigree and dependencies;
findings and advisories become the Security profile (spdx3_security.py: vulnerabilities and VEX).

Honesty: fields the AI and Dataset profiles expect but the evidence cannot give (`suppliedBy`,
`releaseTime`, `builtTime`, `originatedBy`, `software_downloadLocation`...) are not invented. SPDX
3.0.1 has no NoAssertion value for these (agents and times), so they are left out, each one is
listed as "NoAssertion" in the document's `comment`, and a profile is claimed in
`profileConformance` only when every element of it carries every expected field.
ETSI EN 304 223 declarations stay in the CycloneDX BOM (the document says so).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import Any, Iterator

from spdx_python_model import v3_0_1 as spdx

from . import spdx3_security
from .errors import SpdxUnavailable

# Fields the AI/Dataset profiles expect of every package (project reference spdx3-ai.md, [S]).
# SPDX 3.0.1's SHACL shapes do not enforce them; the exporter checks them itself.
EXPECTED = {
    "ai": ("suppliedBy", "releaseTime", "software_packageVersion", "software_downloadLocation",
           "software_primaryPurpose"),
    "dataset": ("builtTime", "originatedBy", "releaseTime", "software_downloadLocation", "software_primaryPurpose"),
}
CLAIM = ("This document lists the artefacts modelshield scanned statically, with their hashes and the facts "
         "their files state. It makes no conformity claim about any standard.")
_HASHES = {"SHA-256": spdx.HashAlgorithm.sha256, "SHA-384": spdx.HashAlgorithm.sha384,
           "SHA-512": spdx.HashAlgorithm.sha512, "SHA3-256": spdx.HashAlgorithm.sha3_256,
           "SHA3-512": spdx.HashAlgorithm.sha3_512, "BLAKE2b-256": spdx.HashAlgorithm.blake2b256,
           "BLAKE2b-512": spdx.HashAlgorithm.blake2b512, "BLAKE3": spdx.HashAlgorithm.blake3}


def _walk(comps: list[dict[str, Any]], parent: dict[str, Any] | None = None
          ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    for comp in comps:
        yield comp, parent
        yield from _walk(comp.get("components") or [], comp)


def _props(item: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in item.get("properties") or []:
        out.setdefault(p.get("name", ""), []).append(p.get("value", ""))
    return out


class _Builder:
    """One conversion: the object set, the id scheme and the recorded gaps."""

    def __init__(self, bom: dict[str, Any]) -> None:
        serial = str(bom.get("serialNumber") or "urn:uuid:0").rsplit(":", 1)[-1]
        self.base = f"urn:modelshield:spdx:{serial}"
        stamp = bom.get("metadata", {}).get("timestamp")
        if not stamp:
            raise SpdxUnavailable("SPDX 3 requires a creation time; set SOURCE_DATE_EPOCH for a reproducible document")
        created = _dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(_dt.timezone.utc)
        self.ci = spdx.CreationInfo(specVersion="3.0.1", created=created.replace(microsecond=0))
        self.objects: list[Any] = []
        self.by_ref: dict[str, Any] = {}
        self.missing: dict[str, list[str]] = {"ai": [], "dataset": []}
        self.bom = bom
        self.security = False  # the Security profile is used (vulnerabilities and VEX)

    def sid(self, kind: str, key: str) -> str:
        return f"{self.base}:{kind}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"

    def add(self, obj: Any) -> Any:
        self.objects.append(obj)
        return obj

    def relate(self, source: Any, kind: Any, targets: list[Any], note: str = "") -> None:
        if not targets:
            return
        key = source._id + str(kind) + ",".join(t._id for t in targets)
        rel = spdx.Relationship(_id=self.sid("rel", key), creationInfo=self.ci, from_=source, relationshipType=kind,
                                to=targets)
        if note:
            rel.comment = note
        self.add(rel)


def build(bom: dict[str, Any]) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document (a dict) for a CycloneDX BOM built by modelshield."""
    b = _Builder(bom)
    tool, agents = _agents(b)
    meta = bom.get("metadata", {})
    tops = [meta["component"]] if isinstance(meta.get("component"), dict) else list(bom.get("components") or [])
    everything = [c for c, _ in _walk(([meta["component"]] if isinstance(meta.get("component"), dict) else [])
                                      + list(bom.get("components") or []))]
    for comp in everything:
        if comp.get("bom-ref") not in b.by_ref:
            b.by_ref[comp["bom-ref"]] = b.add(_element(b, comp))
    _relationships(b, everything)
    b.security = spdx3_security.add_vulnerabilities(b, bom) > 0
    roots = [b.by_ref[c["bom-ref"]] for c in tops if c.get("bom-ref") in b.by_ref]
    sbom = spdx.software_Sbom(_id=b.sid("sbom", "sbom"), creationInfo=b.ci, name="ML-BOM",
                              rootElement=roots, element=list(b.objects))
    sbom.software_sbomType.append(spdx.software_SbomType.analyzed)
    document = spdx.SpdxDocument(_id=b.sid("document", "document"), creationInfo=b.ci,
                                 name=f"modelshield ML-BOM {meta.get('timestamp', '')}".strip(),
                                 rootElement=[sbom], element=[sbom, *b.objects, tool, *agents])
    document.profileConformance.extend(_profiles(b))
    document.comment = _comment(b, bom)
    objects = spdx.SHACLObjectSet()
    for obj in [document, sbom, *b.objects, tool, *agents]:
        objects.add(obj)
    return spdx.JSONLDSerializer().serialize_data(objects)


def dumps(data: dict[str, Any]) -> str:
    """Stable text of an SPDX JSON-LD dict."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _agents(b: _Builder) -> tuple[Any, list[Any]]:
    meta = b.bom.get("metadata", {})
    tools = (meta.get("tools") or {}).get("components") or [{}]
    tool = spdx.Tool(_id=b.sid("tool", "modelshield"), creationInfo=b.ci,
                     name=f"{tools[0].get('name', 'modelshield')} {tools[0].get('version', '')}".strip())
    agents: list[Any] = []
    for author in meta.get("authors") or []:
        person = spdx.Person(_id=b.sid("person", json.dumps(author, sort_keys=True)), creationInfo=b.ci,
                             name=author.get("name") or author.get("email"))
        if author.get("email"):
            person.externalIdentifier.append(spdx.ExternalIdentifier(
                externalIdentifierType=spdx.ExternalIdentifierType.email, identifier=author["email"]))
        agents.append(person)
    if not agents:
        agents.append(spdx.SoftwareAgent(_id=b.sid("agent", "modelshield"), creationInfo=b.ci, name="modelshield"))
    b.ci.createdBy.extend(agents)
    b.ci.createdUsing.append(tool)
    return tool, agents


def _element(b: _Builder, comp: dict[str, Any]) -> Any:
    kind = comp.get("type")
    if kind == "machine-learning-model":
        return _ai_package(b, comp)
    if kind == "data":
        return _dataset(b, comp)
    if kind == "file" and not comp.get("components"):
        return _file(b, comp)
    return _package(b, comp)


def _common(b: _Builder, obj: Any, comp: dict[str, Any]) -> None:
    if comp.get("description"):
        obj.description = str(comp["description"])[:4000]
    for h in comp.get("hashes") or []:
        if h.get("alg") in _HASHES:
            obj.verifiedUsing.append(spdx.Hash(algorithm=_HASHES[h["alg"]], hashValue=h["content"]))
    if comp.get("purl"):
        obj.externalIdentifier.append(spdx.ExternalIdentifier(
            externalIdentifierType=spdx.ExternalIdentifierType.packageUrl, identifier=comp["purl"]))


def _package_fields(b: _Builder, obj: Any, comp: dict[str, Any]) -> None:
    _common(b, obj, comp)
    if comp.get("version"):
        obj.software_packageVersion = str(comp["version"])
    if comp.get("purl"):
        obj.software_packageUrl = comp["purl"]
    refs = {r.get("type"): r.get("url") for r in comp.get("externalReferences") or [] if isinstance(r, dict)}
    if refs.get("distribution"):
        obj.software_downloadLocation = refs["distribution"]
    if refs.get("vcs") or refs.get("website"):
        obj.software_homePage = refs.get("vcs") or refs.get("website")
    supplier = comp.get("supplier") or {}
    if supplier.get("name"):
        obj.suppliedBy = _organization(b, supplier["name"], (supplier.get("url") or [None])[0])
    maker = comp.get("manufacturer") or {}
    if maker.get("name") or maker.get("url"):
        obj.originatedBy.append(_organization(b, maker.get("name") or maker["url"][0], (maker.get("url") or [None])[0]))


def _organization(b: _Builder, name: str, url: str | None) -> Any:
    ref = b.sid("organization", f"{name}|{url}")
    for obj in b.objects:
        if obj._id == ref:
            return obj
    org = spdx.Organization(_id=ref, creationInfo=b.ci, name=name)
    if url:
        org.externalIdentifier.append(spdx.ExternalIdentifier(
            externalIdentifierType=spdx.ExternalIdentifierType.urlScheme, identifier=url))
    return b.add(org)


def _ai_package(b: _Builder, comp: dict[str, Any]) -> Any:
    pkg = spdx.ai_AIPackage(_id=b.sid("model", comp["bom-ref"]), creationInfo=b.ci, name=comp["name"],
                            software_primaryPurpose=spdx.software_SoftwarePurpose.model)
    _package_fields(b, pkg, comp)
    card = comp.get("modelCard") or {}
    params = card.get("modelParameters") or {}
    for key in ("modelArchitecture", "architectureFamily"):
        if params.get(key):
            pkg.ai_typeOfModel.append(str(params[key]))
    if params.get("task"):
        pkg.ai_domain.append(str(params["task"]))
    considerations = card.get("considerations") or {}
    if considerations.get("useCases"):
        pkg.ai_informationAboutApplication = "\n\n".join(considerations["useCases"])[:8000]
    if considerations.get("technicalLimitations"):
        pkg.ai_limitation = "\n\n".join(considerations["technicalLimitations"])[:8000]
    for prop in card.get("properties") or []:
        name = str(prop.get("name", ""))
        if name.startswith("cdx:ai-ml:model:hyperparameter:"):
            pkg.ai_hyperparameter.append(spdx.DictionaryEntry(key=name.rsplit(":", 1)[-1], value=str(prop["value"])))
    for metric in (card.get("quantitativeAnalysis") or {}).get("performanceMetrics") or []:
        key = f"{metric.get('type')}" + (f" ({metric['slice']})" if metric.get("slice") else "")
        pkg.ai_metric.append(spdx.DictionaryEntry(key=key, value=str(metric.get("value"))))
    _expect(b, "ai", pkg, comp)
    return pkg


def _dataset(b: _Builder, comp: dict[str, Any]) -> Any:
    pkg = spdx.dataset_DatasetPackage(_id=b.sid("dataset", comp["bom-ref"]), creationInfo=b.ci, name=comp["name"],
                                      software_primaryPurpose=spdx.software_SoftwarePurpose.data)
    pkg.dataset_datasetType.append(spdx.dataset_DatasetType.noAssertion)  # no file states the data's type
    _package_fields(b, pkg, comp)
    data = comp.get("data") or []
    if data and not pkg.software_downloadLocation:
        url = next((d.get("contents", {}).get("url") for d in data if d.get("contents", {}).get("url")), None)
        if url:
            pkg.software_downloadLocation = url
    lines = [f"{d.get('name')}: {d.get('description')}" if d.get("description") else str(d.get("name"))
             for d in data[:50]]
    if lines:
        pkg.comment = "Stated by the model's files: " + "; ".join(lines) + (" ..." if len(data) > 50 else "")
    _expect(b, "dataset", pkg, comp)
    return pkg


def _file(b: _Builder, comp: dict[str, Any]) -> Any:
    obj = spdx.software_File(_id=b.sid("file", comp["bom-ref"]), creationInfo=b.ci, name=comp["name"])
    _common(b, obj, comp)
    return obj


def _package(b: _Builder, comp: dict[str, Any]) -> Any:
    pkg = spdx.software_Package(_id=b.sid("package", comp["bom-ref"]), creationInfo=b.ci, name=comp["name"])
    _package_fields(b, pkg, comp)
    if comp.get("type") == "library":
        pkg.software_primaryPurpose = spdx.software_SoftwarePurpose.library
    else:  # a scanned folder holding models and other files
        pkg.software_primaryPurpose = spdx.software_SoftwarePurpose.other
        pkg.comment = "The scanned folder: the models and files it holds are related by `contains`."
    return pkg


def _expect(b: _Builder, profile: str, obj: Any, comp: dict[str, Any]) -> None:
    for field in EXPECTED[profile]:
        value = getattr(obj, field, None)
        if value is None or (hasattr(value, "__len__") and not isinstance(value, str) and len(value) == 0):
            b.missing[profile].append(f"{comp['name']}: {field} NoAssertion")


def _licences(b: _Builder, comp: dict[str, Any]) -> list[Any]:
    out = []
    for item in comp.get("licenses") or []:
        text, uri = None, None
        if "expression" in item:
            text = item["expression"]
        elif item.get("license", {}).get("id"):
            text = item["license"]["id"]
        elif item.get("license", {}).get("name"):
            name = item["license"]["name"]
            text = "LicenseRef-" + "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in name)
            uri = item["license"].get("url")
        if not text:
            continue
        expr = spdx.simplelicensing_LicenseExpression(_id=b.sid("licence", text + str(uri)), creationInfo=b.ci,
                                                      simplelicensing_licenseExpression=text)
        if uri:
            expr.simplelicensing_customIdToUri.append(spdx.DictionaryEntry(key=text, value=uri))
        out.append(b.add(expr))
    return out


def _relationships(b: _Builder, comps: list[dict[str, Any]]) -> None:
    for comp in comps:
        obj = b.by_ref[comp["bom-ref"]]
        children = [b.by_ref[c["bom-ref"]] for c in comp.get("components") or [] if c["bom-ref"] in b.by_ref]
        b.relate(obj, spdx.RelationshipType.contains, children)
        datasets = ((comp.get("modelCard") or {}).get("modelParameters") or {}).get("datasets") or []
        b.relate(obj, spdx.RelationshipType.trainedOn,
                 [b.by_ref[d["ref"]] for d in datasets if d.get("ref") in b.by_ref],
                 "named as training data by the model's own files (card, tables, manifests)")
        licences = _licences(b, comp)
        if licences:
            b.relate(obj, spdx.RelationshipType.hasDeclaredLicense, licences)
        for ancestor in (comp.get("pedigree") or {}).get("ancestors") or []:
            base = b.by_ref.get(ancestor.get("bom-ref")) or b.add(_ai_package(b, ancestor))
            b.by_ref[ancestor.get("bom-ref")] = base
            b.relate(base, spdx.RelationshipType.ancestorOf, [obj], "; ".join(
                f"{k}={'/'.join(v)}" for k, v in _props(ancestor).items() if k.startswith("modelshield:base-model")))
    libraries = {c["bom-ref"] for c in comps if c.get("type") == "library"}
    for dep in b.bom.get("dependencies") or []:
        targets = [b.by_ref[r] for r in dep.get("dependsOn") or [] if r in libraries and r in b.by_ref]
        if dep.get("ref") in b.by_ref:
            b.relate(b.by_ref[dep["ref"]], spdx.RelationshipType.dependsOn, targets)


def _profiles(b: _Builder) -> list[Any]:
    types = {type(o) for o in b.objects}
    out = [spdx.ProfileIdentifierType.core, spdx.ProfileIdentifierType.software,
           spdx.ProfileIdentifierType.simpleLicensing]
    if spdx.ai_AIPackage in types and not b.missing["ai"]:
        out.append(spdx.ProfileIdentifierType.ai)
    if spdx.dataset_DatasetPackage in types and not b.missing["dataset"]:
        out.append(spdx.ProfileIdentifierType.dataset)
    if b.security:
        out.append(spdx.ProfileIdentifierType.security)
    return out


def _comment(b: _Builder, bom: dict[str, Any]) -> str:
    parts = [CLAIM, "Findings and advisories are security_Vulnerability elements with their VEX assessments; "
             "ETSI EN 304 223 declarations are in the CycloneDX BOM of the same scan (sbom --declarations)."]
    for profile, missing in b.missing.items():
        if missing:
            parts.append(f"{profile} profile not claimed in profileConformance; fields the evidence cannot give "
                         f"(left out, never invented): " + "; ".join(missing[:200])
                         + (" ..." if len(missing) > 200 else ""))
    notes = _props(bom.get("metadata", {})).get("modelshield:note", [])
    if notes:
        parts.append("Not known from the files: " + "; ".join(notes))
    return "\n".join(parts)
