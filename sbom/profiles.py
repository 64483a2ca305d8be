"""`modelshield sbom check --profile`: score any CycloneDX BOM against NTIA, CISA 2025 or BSI
TR-03183-2 minimum elements, per element pass / warn / fail (like sbomqs), with the components that
miss each element and, for our own BOMs, why (`modelshield:note`).

Elements and levels are data (`data/profiles.toml`). A `file` component nested in another component
ships inside it: it inherits supplier, creator and version from the nearest ancestor that states
them. Datasets and base models a card merely names are components too; they miss what nobody stated.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

from . import tables
from .bomfacts import props, well_typed

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Node:
    comp: dict[str, Any]
    ancestors: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.comp.get("name") or self.comp.get("bom-ref") or "?")

    def inherited(self, key: str) -> Any:
        for comp in [self.comp, *reversed(self.ancestors)] if self.comp.get("type") == "file" else [self.comp]:
            if comp.get(key):
                return comp[key]
        return None


@dataclass
class ElementResult:
    id: str
    name: str
    result: str  # pass | warn | fail
    detail: str
    missing: list[str] = field(default_factory=list)


@dataclass
class ProfileResult:
    profile: str
    title: str
    elements: list[ElementResult]
    notes: list[str]

    @property
    def failed(self) -> bool:
        return any(e.result == "fail" for e in self.elements)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


def names() -> list[str]:
    return list(tables.load("profiles"))


def _nodes(bom: dict[str, Any]) -> list[Node]:
    def walk(items: list[Any], ancestors: list[dict[str, Any]]) -> Iterator[Node]:
        for comp in items:
            if isinstance(comp, dict):
                yield Node(comp, ancestors)
                yield from walk(comp.get("components") or [], ancestors + [comp])

    meta = (bom.get("metadata") or {}).get("component")
    return list(walk(([meta] if isinstance(meta, dict) else []) + list(bom.get("components") or []), []))


# --- component checks: Node -> bool ------------------------------------------------------------

def _supplier(n: Node, bom: dict[str, Any]) -> bool:
    for key in ("supplier", "manufacturer"):
        value = n.inherited(key)
        if isinstance(value, dict) and (value.get("name") or value.get("url")):
            return True
    return bool(n.inherited("publisher") or n.inherited("authors"))


def _name(n: Node, bom: dict[str, Any]) -> bool:
    return bool(str(n.comp.get("name") or "").strip())


def _version(n: Node, bom: dict[str, Any]) -> bool:
    return bool(n.inherited("version"))


def _identifiers(n: Node, bom: dict[str, Any]) -> bool:
    if any(n.comp.get(k) for k in ("purl", "cpe", "swid", "omniborId", "swhid")):
        return True
    return n.comp.get("type") == "file" and any(h.get("alg") == "SHA-256" for h in n.comp.get("hashes") or [])


def _hash(n: Node, bom: dict[str, Any]) -> bool:
    if n.comp.get("hashes"):
        return True
    children = [c for c in n.comp.get("components") or [] if c.get("type") == "file"]
    return bool(children) and all(c.get("hashes") for c in children)  # an assembly: its parts carry the hashes


def _sha512(n: Node, bom: dict[str, Any]) -> bool:
    def has(comp: dict[str, Any]) -> bool:
        refs = [h for r in comp.get("externalReferences") or [] if r.get("type") == "distribution"
                for h in r.get("hashes") or []]
        return any(h.get("alg") == "SHA-512" for h in list(comp.get("hashes") or []) + refs)

    if has(n.comp):
        return True
    children = [c for c in n.comp.get("components") or [] if c.get("type") == "file"]
    return bool(children) and all(has(c) for c in children)


def _license(n: Node, bom: dict[str, Any]) -> bool:
    return bool(n.comp.get("licenses")) or (n.comp.get("type") == "file" and bool(n.inherited("licenses")))


def _acknowledged(n: Node, kind: str) -> bool:
    licences = n.comp.get("licenses") or (n.inherited("licenses") if n.comp.get("type") == "file" else None) or []
    for item in licences:
        ack = item.get("acknowledgement") or (item.get("license") or {}).get("acknowledgement")
        if ack == kind:
            return True
    return False


def _concluded_licence(n: Node, bom: dict[str, Any]) -> bool:
    return _acknowledged(n, "concluded")


def _declared_licence(n: Node, bom: dict[str, Any]) -> bool:
    return _acknowledged(n, "declared")


def _creator(n: Node, bom: dict[str, Any]) -> bool:
    for comp in [n.comp, *reversed(n.ancestors)] if n.comp.get("type") == "file" else [n.comp]:
        maker = comp.get("manufacturer") or {}
        if maker.get("url") or any(_EMAIL.match(str(c.get("email") or "")) for c in maker.get("contact") or []):
            return True
    return False


def _filename(n: Node, bom: dict[str, Any]) -> bool:
    if n.comp.get("type") != "file":
        return True  # a model or package is not one file; BSI asks the filename of files
    return "bsi:component:filename" in props(n.comp)


def _flag(name: str, values: tuple[str, str]) -> Callable[[Node, dict[str, Any]], bool]:
    def check(n: Node, bom: dict[str, Any]) -> bool:
        return props(n.comp).get(f"bsi:component:{name}", [None])[0] in values
    return check


def _source_uri(n: Node, bom: dict[str, Any]) -> bool:
    return any(r.get("type") in ("source-distribution", "vcs") for r in n.comp.get("externalReferences") or [])


def _deployable_uri(n: Node, bom: dict[str, Any]) -> bool:
    return any(r.get("type") == "distribution" for r in n.comp.get("externalReferences") or [])


def _in_graph(n: Node, bom: dict[str, Any]) -> bool:
    refs = {d.get("ref") for d in bom.get("dependencies") or [] if isinstance(d, dict)}
    return n.comp.get("bom-ref") in refs


COMPONENT: dict[str, Callable[[Node, dict[str, Any]], bool]] = {
    "supplier": _supplier, "producer": _supplier, "name": _name, "version": _version, "identifiers": _identifiers,
    "hash": _hash, "sha512": _sha512, "license": _license, "concluded_licence": _concluded_licence,
    "declared_licence": _declared_licence, "creator": _creator, "filename": _filename,
    "flag_executable": _flag("executable", ("executable", "non-executable")),
    "flag_archive": _flag("archive", ("archive", "no archive")),
    "flag_structured": _flag("structured", ("structured", "unstructured")),
    "source_uri": _source_uri, "deployable_uri": _deployable_uri, "dependencies_complete": _in_graph,
}


# --- document checks: bom -> (ok, detail) -------------------------------------------------------

def _author(bom: dict[str, Any]) -> tuple[str, str]:
    meta = bom.get("metadata") or {}
    if meta.get("authors"):
        return "pass", "metadata.authors: " + ", ".join(str(a.get("name") or a.get("email")) for a in meta["authors"])
    if meta.get("manufacturer"):
        return "pass", "metadata.manufacturer"
    if meta.get("tools"):
        return "warn", "only metadata.tools names who made the SBOM (a tool, not a person or organisation)"
    return "fail", "no metadata.authors, manufacturer or tools"


def _sbom_creator(bom: dict[str, Any]) -> tuple[str, str]:
    meta = bom.get("metadata") or {}
    maker = meta.get("manufacturer") or {}
    people = list(maker.get("contact") or []) + list(meta.get("authors") or [])
    emails = [c.get("email") for c in people if c.get("email")]
    if any(_EMAIL.match(str(e)) for e in emails) or maker.get("url"):
        return "pass", "e-mail or URL of the SBOM's creator: " + ", ".join(map(str, emails or maker.get("url") or []))
    return "fail", "no e-mail or URL of the SBOM's creator (metadata.manufacturer or metadata.authors)"


def _timestamp(bom: dict[str, Any]) -> tuple[str, str]:
    stamp = (bom.get("metadata") or {}).get("timestamp")
    return ("pass", f"metadata.timestamp {stamp}") if stamp else ("fail", "no metadata.timestamp")


def _tool(bom: dict[str, Any]) -> tuple[str, str]:
    tools = (bom.get("metadata") or {}).get("tools") or {}
    comps = tools.get("components") if isinstance(tools, dict) else tools
    named = [t for t in comps or [] if isinstance(t, dict) and t.get("name")]
    if named and all(t.get("version") for t in named):
        return "pass", ", ".join(f"{t['name']} {t['version']}" for t in named)
    return ("warn", "tool named without a version") if named else ("fail", "no metadata.tools")


def _context(bom: dict[str, Any]) -> tuple[str, str]:
    phases = [x.get("phase") or x.get("name") for x in (bom.get("metadata") or {}).get("lifecycles") or []]
    return ("pass", "metadata.lifecycles: " + ", ".join(map(str, phases))) if phases else \
        ("fail", "no metadata.lifecycles (before build, during build, after build...)")


def _format(bom: dict[str, Any]) -> tuple[str, str]:
    version = str(bom.get("specVersion") or "")
    try:
        ok = tuple(int(x) for x in version.split(".")[:2]) >= (1, 6)
    except ValueError:
        ok = False
    return ("pass" if ok else "fail"), f"CycloneDX {version or '?'}"


def _sbom_uri(bom: dict[str, Any]) -> tuple[str, str]:
    serial = bom.get("serialNumber")
    return ("pass", f"serialNumber {serial}") if serial else ("fail", "no serialNumber")


def _no_vulnerabilities(bom: dict[str, Any]) -> tuple[str, str]:
    count = len(bom.get("vulnerabilities") or [])
    return ("pass", "no vulnerabilities[] in the SBOM") if not count else \
        ("fail", f"{count} vulnerabilities in the SBOM; BSI asks for them in a separate VEX document")


def _dependencies(bom: dict[str, Any]) -> tuple[str, str]:
    deps = [d for d in bom.get("dependencies") or [] if isinstance(d, dict)]
    root = ((bom.get("metadata") or {}).get("component") or {}).get("bom-ref")
    edges = sum(len(d.get("dependsOn") or []) for d in deps)
    if not deps:
        return "fail", "no dependencies[]"
    if not edges and len(_nodes(bom)) > 1:
        return "fail", f"{len(deps)} dependency entries but no edge between the {len(_nodes(bom))} components"
    if root and not any(d.get("ref") == root and d.get("dependsOn") for d in deps):
        return "warn", "the primary component has no dependsOn"
    return "pass", f"{len(deps)} dependency entries, {edges} edges"


DOCUMENT: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "author": _author, "sbom_creator": _sbom_creator, "timestamp": _timestamp, "tool": _tool, "context": _context,
    "format": _format, "sbom_uri": _sbom_uri, "no_vulnerabilities": _no_vulnerabilities, "dependencies": _dependencies,
}


def check(bom: dict[str, Any], profile: str) -> ProfileResult:
    """Score `bom` against `profile` (ntia | cisa-2025 | bsi-tr-03183-2)."""
    table = tables.load("profiles")
    if profile not in table:
        raise ValueError(f"unknown profile {profile!r} ({', '.join(table)})")
    spec = table[profile]
    bom = well_typed(bom)  # another tool's BOM may be malformed anywhere: wrong-typed fields count as absent
    nodes = _nodes(bom)
    results = []
    for element in spec["elements"]:
        if element["check"] in DOCUMENT:
            result, detail = DOCUMENT[element["check"]](bom)
            if result == "fail" and element["level"] == "warn":
                result = "warn"
            results.append(ElementResult(element["id"], element["name"], result, detail))
            continue
        results.append(_component_element(element, nodes, bom))
    notes = props(bom.get("metadata") or {}).get("modelshield:note", [])
    return ProfileResult(profile, spec["title"], results, notes)


def _component_element(element: dict[str, Any], nodes: list[Node], bom: dict[str, Any]) -> ElementResult:
    fn = COMPONENT[element["check"]]
    missing = [n.name for n in nodes if not fn(n, bom)]
    total = len(nodes)
    if element["check"] == "dependencies_complete" and not bom.get("compositions"):
        missing = missing or ["(no compositions: completeness of dependencies not stated)"]
    if not missing:
        return ElementResult(element["id"], element["name"], "pass", f"all {total} components")
    result = element["level"]
    detail = f"{total - len(missing)} of {total} components"
    return ElementResult(element["id"], element["name"], result, detail, missing)


def text(result: ProfileResult) -> str:
    """Human-readable table, one element per line, then the components missing each."""
    lines = [f"{result.title}:"]
    for e in result.elements:
        lines.append(f"  {e.result.upper():<5} {e.name}: {e.detail}")
        for name in e.missing[:10]:
            lines.append(f"          missing: {name}")
        if len(e.missing) > 10:
            lines.append(f"          ... and {len(e.missing) - 10} more")
    if result.notes:
        lines.append("  Why (stated in the BOM):")
        lines += [f"    - {n}" for n in result.notes]
    fails = sum(1 for e in result.elements if e.result == "fail")
    warns = sum(1 for e in result.elements if e.result == "warn")
    lines.append(f"{result.profile}: {len(result.elements) - fails - warns} pass, {warns} warn, {fails} fail")
    return "\n".join(lines) + "\n"
