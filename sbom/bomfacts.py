"""Read the facts an evidence report needs from a CycloneDX BOM dict (ours or any other tool's).

The evidence report and the BOM's `declarations` are both derived from the BOM, so that
`modelshield report ./model` and `modelshield report --from-bom model.cdx.json` say the same thing.
Every fact keeps the JSON Pointer of where it was read, for the report's evidence links.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
SIGNATURE_OUTCOMES = ("valid", "invalid", "untrusted", "unverifiable", "unsigned", "not-checked")


# The shapes read from a BOM (CycloneDX 1.4-1.7): keys whose type is the same wherever they occur.
# Another tool's BOM may break them anywhere. (`declarations` is never read: its keys, e.g. `claims`,
# change type with their place.)
_OBJECTS = frozenset({"metadata", "component", "supplier", "manufacturer", "license", "analysis", "source",
                      "pedigree", "modelCard", "modelParameters", "considerations", "contents"})
_OBJECT_LISTS = frozenset({"components", "hashes", "licenses", "externalReferences", "properties", "dependencies",
                           "authors", "contact", "lifecycles", "vulnerabilities", "affects", "ratings", "references",
                           "ancestors", "datasets", "data", "compositions", "services", "performanceMetrics"})
_TEXT_LISTS = frozenset({"dependsOn", "response", "assemblies", "useCases", "technicalLimitations", "cwes"})
_TEXT = frozenset({"bom-ref", "ref", "name", "version", "type", "alg", "content", "email", "acknowledgement",
                   "phase", "timestamp", "serialNumber", "specVersion", "bomFormat", "purl", "id", "value",
                   "state", "justification", "detail", "description", "severity", "task", "group", "publisher",
                   "expression", "firstIssued", "lastUpdated", "published", "updated", "comment"})


def well_typed(value: Any, key: str | None = None) -> Any:
    """`value` with every wrong-typed field of the shapes above dropped (a list item of the wrong type
    becomes `{}` so JSON Pointers into the original still hold): a malformed BOM is read as one
    missing those fields, never a crash."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            text_ok = isinstance(v, str) or (k == "version" and isinstance(v, int))  # the BOM's own version is an int
            if (k in _OBJECTS and not isinstance(v, dict)) or (k in _TEXT and not text_ok) \
                    or ((k in _OBJECT_LISTS or k in _TEXT_LISTS) and not isinstance(v, list)):
                continue
            if k == "declarations":
                out[k] = v
                continue
            if k in _TEXT_LISTS:
                v = [x for x in v if isinstance(x, (str, int))]
            elif k == "tools" and not isinstance(v, (dict, list)):
                continue
            elif k == "url" and not isinstance(v, (str, list)):
                continue
            out[k] = well_typed(v, k)
        return out
    if isinstance(value, list):
        if key == "dependencies":  # objects at the top level, refs in compositions
            return [well_typed(x) if isinstance(x, dict) else x if isinstance(x, str) else {} for x in value]
        if key in _OBJECT_LISTS or key in ("tools", "components"):
            return [well_typed(x) if isinstance(x, dict) else {} for x in value]
        if key == "url":
            return [x for x in value if isinstance(x, str)]
        return [well_typed(x) for x in value]
    return value


def props(item: dict[str, Any]) -> dict[str, list[str]]:
    """name -> values of an object's `properties`."""
    out: dict[str, list[str]] = {}
    for p in item.get("properties") or []:
        if isinstance(p, dict):
            out.setdefault(str(p.get("name")), []).append(str(p.get("value")))
    return out


def prop(item: dict[str, Any], name: str, default: str | None = None) -> str | None:
    values = props(item).get(name)
    return values[0] if values else default


@dataclass
class Located:
    item: dict[str, Any]
    pointer: str
    owner: str | None = None  # name of the model/folder holding a file

    @property
    def name(self) -> str:
        return str(self.item.get("name") or self.item.get("bom-ref") or "?")


@dataclass
class BomFacts:
    bom: dict[str, Any]
    models: list[Located] = field(default_factory=list)
    folders: list[Located] = field(default_factory=list)
    files: list[Located] = field(default_factory=list)
    datasets: list[Located] = field(default_factory=list)
    libraries: list[Located] = field(default_factory=list)
    vulnerabilities: list[Located] = field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        return self.bom.get("metadata") or {}

    @property
    def phase(self) -> str | None:
        for item in self.meta.get("lifecycles") or []:
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name.startswith("etsi-en-304-223:"):
                return name.split(":", 1)[1]
        return prop(self.meta, "modelshield:phase")

    @property
    def timestamp(self) -> str | None:
        return self.meta.get("timestamp")

    @property
    def tool(self) -> tuple[str, str]:
        tools = (self.meta.get("tools") or {})
        comps = tools.get("components") if isinstance(tools, dict) else tools
        first = (comps or [{}])[0] if isinstance(comps, list) else {}
        return str(first.get("name") or "unknown tool"), str(first.get("version") or "")

    @property
    def subject(self) -> dict[str, Any]:
        comp = self.meta.get("component")
        if isinstance(comp, dict):
            return comp
        return {"name": ", ".join(m.name for m in self.models) or "(no subject)"}

    def notes(self) -> list[str]:
        return props(self.meta).get("modelshield:note", [])

    def verdict(self) -> str | None:
        return prop(self.meta, "modelshield:verdict")

    def inconclusive(self) -> list[str]:
        """Names of whatever was not fully analysed (never `evidenced`)."""
        out = [f.name for f in self.files if prop(f.item, "modelshield:verdict") == "inconclusive"
               or prop(f.item, "modelshield:status") in ("skipped", "not-downloaded")]
        out += [m.name for m in self.models + self.folders if prop(m.item, "modelshield:error")]
        return out

    def signature(self, model: Located) -> str:
        value = prop(model.item, "modelshield:signature:status", "not-checked") or "not-checked"
        return value if value in SIGNATURE_OUTCOMES else "not-checked"

    def pinned(self, model: Located) -> bool:
        version = str(model.item.get("version") or "")
        return bool(_COMMIT.match(version))

    def active_threats(self) -> list[Located]:
        return [v for v in self.vulnerabilities if prop(v.item, "modelshield:kind") == "threat"
                and (v.item.get("analysis") or {}).get("state") in (None, "exploitable", "in_triage")
                and "will_not_fix" not in ((v.item.get("analysis") or {}).get("response") or [])]

    def waived(self) -> list[Located]:
        out = []
        for v in self.vulnerabilities:
            analysis = v.item.get("analysis") or {}
            if analysis.get("state") in ("not_affected", "false_positive", "resolved") or \
                    "will_not_fix" in (analysis.get("response") or []):
                out.append(v)
        return out

    def advisories(self) -> list[Located]:
        """Advisory matches: OSV records (`MS-ADV-*` findings or vulnerabilities with an OSV/GHSA/CVE id)."""
        out = []
        for v in self.vulnerabilities:
            rule = prop(v.item, "modelshield:rule") or ""
            ident = str(v.item.get("id") or "")
            if rule.startswith("MS-ADV") or ident.startswith(("MS-ADV", "GHSA-", "PYSEC-", "CVE-", "OSV-")):
                out.append(v)
        return out

    def decision(self) -> str | None:
        return prop(self.meta, "modelshield:decommission:decision")

    def drift(self) -> dict[str, list[str]]:
        values = props(self.meta)
        return {kind: values.get(f"modelshield:drift:{kind}", []) for kind in ("changed", "added", "removed")}

    def previous_bom(self) -> str | None:
        return prop(self.meta, "modelshield:from-bom")


def _walk(items: list[Any], pointer: str, owner: str | None) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    for i, comp in enumerate(items):
        if not isinstance(comp, dict):
            continue
        here = f"{pointer}/{i}"
        yield comp, here, owner
        inner = comp.get("name") if comp.get("type") in ("machine-learning-model", "data") or comp.get("components") \
            else owner
        yield from _walk(comp.get("components") or [], f"{here}/components", inner)


def read(bom: dict[str, Any]) -> BomFacts:
    """The facts of `bom` (any CycloneDX 1.6/1.7 JSON BOM; wrong-typed fields read as absent)."""
    bom = well_typed(bom)
    facts = BomFacts(bom=bom)
    meta = bom.get("metadata") or {}
    located: list[tuple[dict[str, Any], str, str | None]] = []
    if isinstance(meta.get("component"), dict):
        located += list(_walk([meta["component"]], "/metadata", None))
        located = [(c, p.replace("/metadata/0", "/metadata/component", 1), o) for c, p, o in located]
    located += list(_walk(list(bom.get("components") or []), "/components", None))
    for comp, pointer, owner in located:
        kind = comp.get("type")
        entry = Located(comp, pointer, owner)
        if kind == "machine-learning-model":
            facts.models.append(entry)
        elif kind == "data":
            facts.datasets.append(entry)
        elif kind == "library":
            facts.libraries.append(entry)
        elif kind == "file" and comp.get("components"):
            facts.folders.append(entry)
        elif kind == "file":
            facts.files.append(entry)
    facts.vulnerabilities = [Located(v, f"/vulnerabilities/{i}") for i, v in enumerate(bom.get("vulnerabilities") or [])
                             if isinstance(v, dict)]
    return facts
