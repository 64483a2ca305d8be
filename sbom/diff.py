"""Compare two BOM dicts: file hash drift, added/removed files, new findings, VEX and loader changes.

Works on plain JSON (any CycloneDX 1.6/1.7 BOM with `file` components), never through the
library. `drifted` is True when a file hash changed, a file appeared or disappeared, the model
identity changed, or the new BOM has a finding the old one did not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from .bomfacts import well_typed


@dataclass
class BomDiff:
    changed: list[dict[str, Any]] = field(default_factory=list)  # {file, alg, old, new}
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    new_findings: list[dict[str, str]] = field(default_factory=list)  # {id, file, severity}
    resolved_findings: list[dict[str, str]] = field(default_factory=list)
    vex_changes: list[dict[str, str]] = field(default_factory=list)
    identity: list[dict[str, Any]] = field(default_factory=list)  # {field, old, new} of the model
    libraries: list[dict[str, Any]] = field(default_factory=list)  # {name, old, new}

    linked: bool = False  # the new BOM links the old one by BOM-Link (deployment from development)

    @property
    def drifted(self) -> bool:
        """File drift or new findings; an identity change counts unless the new BOM declares
        itself derived from the old one (a release folder has no Hub commit of its own)."""
        return bool(self.changed or self.added or self.removed or self.new_findings
                    or (self.identity and not self.linked))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}

    def lines(self) -> list[str]:
        """Human-readable summary, one change per line."""
        note = " (derived BOM, linked by BOM-Link)" if self.linked else ""
        out = [f"identity {d['field']}: {d['old']} -> {d['new']}{note}" for d in self.identity]
        out += [f"changed  {c['file']} ({c['alg']} {str(c['old'])[:16]}... -> {str(c['new'])[:16]}...)"
                for c in self.changed]
        out += [f"added    {p}" for p in self.added] + [f"removed  {p}" for p in self.removed]
        out += [f"new finding {f['id']} ({f['severity']}) in {f['file']}" for f in self.new_findings]
        out += [f"resolved finding {f['id']} in {f['file']}" for f in self.resolved_findings]
        out += [f"vex {v['id']} in {v['file']}: {v['old']} -> {v['new']}" for v in self.vex_changes]
        out += [f"library {d['name']}: {d['old']} -> {d['new']}" for d in self.libraries]
        return out


def _components(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(items: list[Any]) -> Iterator[dict[str, Any]]:
        for comp in items:
            if isinstance(comp, dict):
                yield comp
                yield from walk(comp.get("components") or [])

    meta = doc.get("metadata", {}).get("component")
    yield from walk(([meta] if isinstance(meta, dict) else []) + list(doc.get("components") or []))


def _files(doc: dict[str, Any]) -> dict[str, dict[Any, Any]]:
    return {c["name"]: {h.get("alg"): h.get("content") for h in c.get("hashes") or [] if isinstance(h, dict)}
            for c in _components(doc) if c.get("type") == "file" and isinstance(c.get("name"), str)}


def _ref_names(doc: dict[str, Any]) -> dict[str, Any]:
    names = {}
    for c in _components(doc):
        if c.get("bom-ref"):
            names[c["bom-ref"]] = c.get("name") if c.get("type") == "file" else "(model)"
    return names


def _findings(doc: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, str]]:
    """(id, affected file name, n-th occurrence) -> facts; refs differ between BOMs, names do not."""
    names = _ref_names(doc)
    out: dict[tuple[str, str, int], dict[str, str]] = {}
    for v in doc.get("vulnerabilities") or []:
        ratings = v.get("ratings") or [{}]
        for target in v.get("affects") or [{}]:
            name = names.get(target.get("ref", ""), target.get("ref", "?"))
            n = 0
            while (v.get("id", "?"), name, n) in out:
                n += 1
            out[(v.get("id", "?"), name, n)] = {"id": v.get("id", "?"), "file": name,
                                                "severity": ratings[0].get("severity", "unknown"),
                                                "state": (v.get("analysis") or {}).get("state", "")}
    return out


def _model(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata", {}).get("component")
    if isinstance(meta, dict):
        return meta
    models = [c for c in doc.get("components") or [] if c.get("type") == "machine-learning-model"]
    return models[0] if len(models) == 1 else {}


def _libraries(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c.get("version", "") for c in doc.get("components") or []
            if c.get("type") == "library" and c.get("name")}


def diff(old: dict[str, Any], new: dict[str, Any]) -> BomDiff:
    """What changed from `old` to `new` (either may be another tool's BOM: wrong-typed fields read as absent)."""
    old, new = well_typed(old), well_typed(new)
    result = BomDiff()
    serial = str(old.get("serialNumber") or "")
    if serial.startswith("urn:uuid:"):
        link = f"urn:cdx:{serial[len('urn:uuid:'):]}/{old.get('version') or 1}"
        result.linked = any(isinstance(r, dict) and r.get("type") == "bom" and r.get("url") == link
                            for r in new.get("externalReferences") or [])
    a, b = _files(old), _files(new)
    for name in sorted(set(a) & set(b)):
        for alg in ("SHA-512", "SHA-256"):
            if alg in a[name] and alg in b[name]:
                if a[name][alg] != b[name][alg]:
                    result.changed.append({"file": name, "alg": alg, "old": a[name][alg], "new": b[name][alg]})
                break
    result.added = sorted(set(b) - set(a))
    result.removed = sorted(set(a) - set(b))
    fa, fb = _findings(old), _findings(new)
    result.new_findings = [fb[k] for k in sorted(set(fb) - set(fa))]
    result.resolved_findings = [fa[k] for k in sorted(set(fa) - set(fb))]
    for key in sorted(set(fa) & set(fb)):
        if fa[key]["state"] != fb[key]["state"]:
            result.vex_changes.append({"id": key[0], "file": key[1], "old": fa[key]["state"], "new": fb[key]["state"]})
    ma, mb = _model(old), _model(new)
    for name in ("name", "group", "version", "purl"):
        if ma.get(name) != mb.get(name) and (ma.get(name) or mb.get(name)):
            result.identity.append({"field": name, "old": ma.get(name), "new": mb.get(name)})
    la, lb = _libraries(old), _libraries(new)
    for name in sorted(set(la) | set(lb)):
        if la.get(name) != lb.get(name):
            result.libraries.append({"name": name, "old": la.get(name), "new": lb.get(name)})
    return result
