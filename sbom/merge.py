"""The one place where JSON the library cannot model is merged into its serialised BOM.

cyclonedx-python-lib 11 has no `modelCard`, component `data`, `compositions`,
`citations` or tool services; `apply` adds them to the dict produced by the library's JSON
writer. The dict stays the source of truth afterwards: it is never read back through the library
(which would drop `modelCard`).
"""
from __future__ import annotations

from typing import Any, Iterator

from .context import BomContext


def component_index(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """bom-ref -> (JSON Pointer, component dict) for every component, nested ones included."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    meta = doc.get("metadata", {}).get("component")
    if isinstance(meta, dict):
        for pointer, comp in _walk(meta, "/metadata/component"):
            out.setdefault(comp.get("bom-ref", ""), (pointer, comp))
    for i, comp in enumerate(doc.get("components", [])):
        for pointer, sub in _walk(comp, f"/components/{i}"):
            out[sub.get("bom-ref", "")] = (pointer, sub)
    out.pop("", None)
    return out


def _walk(comp: dict[str, Any], pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield pointer, comp
    for i, sub in enumerate(comp.get("components", [])):
        yield from _walk(sub, f"{pointer}/components/{i}")
    pedigree = comp.get("pedigree") or {}
    for i, sub in enumerate(pedigree.get("ancestors", [])):
        yield from _walk(sub, f"{pointer}/pedigree/ancestors/{i}")


def apply(doc: dict[str, Any], ctx: BomContext) -> dict[str, Any]:
    """Merge the context's JSON patches into `doc` (in place) and return it."""
    patches = ctx.patches
    index = component_index(doc)
    for ref, card in patches.model_cards.items():
        if ref in index:
            index[ref][1]["modelCard"] = card
    for ref, data in patches.component_data.items():
        if ref in index:
            index[ref][1]["data"] = data
    if patches.dependencies:
        graph = {d["ref"]: d for d in doc.setdefault("dependencies", [])}
        for ref, on in sorted(patches.dependencies.items()):
            node = graph.get(ref)
            if node is None:
                node = graph[ref] = {"ref": ref}
                doc["dependencies"].append(node)
            node["dependsOn"] = sorted(set(node.get("dependsOn", [])) | set(on))
            for other in on:
                if other not in graph:
                    graph[other] = {"ref": other}
                    doc["dependencies"].append(graph[other])
        doc["dependencies"].sort(key=lambda d: d["ref"])
    for node in doc.get("dependencies") or []:  # leaves too: some validators (cdxgen) require the key
        node.setdefault("dependsOn", [])
    if patches.tool_services:
        tools = doc.setdefault("metadata", {}).setdefault("tools", {})
        if isinstance(tools, dict):
            tools.setdefault("services", []).extend(patches.tool_services)
    if patches.compositions:
        doc["compositions"] = patches.compositions
    if patches.citations and ctx.spec_version != "1.6":
        citations = []
        for n, c in enumerate(patches.citations):
            if c.component_ref not in index:
                continue
            pointer = _pointer(index[c.component_ref], c.field)
            if pointer is None:
                continue
            item: dict[str, Any] = {"bom-ref": f"citation-{n}", "pointers": [pointer],
                                    "timestamp": ctx.timestamp_text(), "note": c.note}
            item["attributedTo"] = c.source_ref or "tool:modelshield"
            citations.append(item)
        if citations:
            doc["citations"] = citations
    return doc


def _pointer(located: tuple[str, dict[str, Any]], field: str) -> str | None:
    """JSON Pointer of a cited field; `property:<name>` points at that property's entry (the
    library sorts properties, so the index is only known after serialisation)."""
    base, comp = located
    if not field.startswith("property:"):
        return base + field
    name = field[len("property:"):]
    for i, prop in enumerate(comp.get("properties") or []):
        if prop.get("name") == name:
            return f"{base}/properties/{i}"
    return None
