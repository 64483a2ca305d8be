"""Training data the files state beyond the card's `datasets:` list.

- Card tables (`cardtables`): each row is one training source. A row whose link is a Hub dataset
  the front matter already names is added to that `data` component as another `data[]` entry;
  any other row becomes a `data` component of its own. The stated amount is recorded with the
  column header as its unit (`modelshield:dataset:amount`, `...:amount-unit`).
- Training-mixture manifests (sentence-transformers `data_config.json`, parsed by the scanner):
  one `data` component per manifest with one `data[]` entry per listed file (lines, weight).
Every component points at the file that states it (`modelshield:source`, `modelshield:file`) and
is referenced from the model's `modelCard.modelParameters.datasets`. Components never seen carry
no BSI flags (their files were not read); the BOM's notes say so.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType

from . import tables
from .cardtables import Source, training_tables
from .context import BomContext, ModelEntry
from .inventory import bsi_flags

_HUB_DATASET = re.compile(r"^https?://huggingface\.co/datasets/([\w.-]+(?:/[\w.-]+)?)/?(?:[?#].*)?$")


def provider(ctx: BomContext) -> None:
    """Add card-table sources and manifests of every model as data components."""
    for entry in ctx.models:
        if entry.is_dataset:
            continue
        refs = ctx.facts.setdefault("dataset_refs", {}).setdefault(entry.ref, [])
        for table in training_tables(entry.sections):
            for source in table.sources:
                ref = _add_source(ctx, entry, source)
                if ref not in refs:
                    refs.append(ref)
                ctx.depend(entry.ref, ref)
            if table.total is not None:
                entry.component.properties.add(Property(
                    name="modelshield:training-data:stated-total", value=f"{table.total} ({table.unit})"))
        for path, facts in sorted(entry.stated.items()):
            if "manifest" in facts:
                ref = _add_manifest(ctx, entry, path, facts)
                refs.append(ref)
                ctx.depend(entry.ref, ref)


def _card_ref(entry: ModelEntry) -> str:
    path = next((p for p in entry.files if entry.card_note.startswith(p)), None)
    return (entry.files[path].bom_ref.value or entry.ref) if path else entry.ref


def _add_source(ctx: BomContext, entry: ModelEntry, source: Source) -> str:
    hub_ids = [m.group(1) for link in source.links if (m := _HUB_DATASET.match(link))]
    known: dict[str, Component] = ctx.facts.setdefault("dataset_components", {})
    ref = next((r for r in (f"urn:hf:dataset:{i}" for i in hub_ids) if r in known), None)
    if ref is None:
        ref = (f"urn:hf:dataset:{hub_ids[0]}" if hub_ids else
               f"urn:modelshield:dataset:{quote(source.name, safe='')}:from:{quote(entry.name, safe='')}")
    item = _row_data(source, _card_ref(entry))
    if ref in known:
        ctx.patches.component_data.setdefault(ref, []).append(item)
        return ref
    comp = Component(type=ComponentType.DATA, name=hub_ids[0] if hub_ids else source.name, bom_ref=ref)
    for link in source.links[:5]:
        if link.startswith(("https://", "http://")):
            kind = ExternalReferenceType.DISTRIBUTION if _HUB_DATASET.match(link) else ExternalReferenceType.WEBSITE
            comp.external_references.add(ExternalReference(type=kind, url=XsUri(link),
                                                           comment="named by the model card's training-data table"))
    comp.properties.update([Property(name="modelshield:source", value=f"{entry.card_note.split(' ')[0]} table "
                                                                      f"under '{source.heading}', row {source.row}"),
                            Property(name="modelshield:dataset:scanned", value="false")])
    known[ref] = comp
    ctx.components.append(comp)
    ctx.patches.component_data[ref] = [item]
    ctx.unseen_dataset(comp.name)
    return ref


def _row_data(source: Source, card_ref: str) -> dict[str, Any]:
    """One `data[]` entry for a table row: the row's text, links and stated amount."""
    props = [{"name": "modelshield:source", "value": f"model card table under '{source.heading}', row {source.row}"},
             {"name": "modelshield:file", "value": card_ref}]
    if source.amount is not None:
        props += [{"name": "modelshield:dataset:amount", "value": str(source.amount)},
                  {"name": "modelshield:dataset:amount-unit", "value": source.unit or ""}]
    props += [{"name": "modelshield:reference", "value": link} for link in source.references[:5]]
    item: dict[str, Any] = {"type": "dataset", "name": source.name, "contents": {"properties": props}}
    url = next((link for link in source.links if link.startswith(("https://", "http://"))), None)
    if url:
        item["contents"]["url"] = url
    if source.amount is not None:
        item["description"] = f"{source.unit}: {source.amount:,}"
    return item


def _add_manifest(ctx: BomContext, entry: ModelEntry, path: str, facts: dict[str, Any]) -> str:
    """The training mixture a manifest file lists, as one `data` component."""
    file_ref = entry.files[path].bom_ref.value
    ref = f"{entry.ref}#training-mixture:{path}"
    entries = facts.get("manifest") or []
    comp = Component(type=ComponentType.DATA, name=f"training mixture listed in {path}", bom_ref=ref,
                     description=f"{facts.get('manifest_entries', len(entries))} data files named by {path} "
                                 "(a sentence-transformers training-data configuration); the files themselves "
                                 "were not scanned")
    comp.properties.update([Property(name="modelshield:source", value=path),
                            Property(name="modelshield:file", value=file_ref),
                            Property(name="modelshield:dataset:scanned", value="false"),
                            Property(name="modelshield:manifest:entries",
                                     value=str(facts.get("manifest_entries", len(entries)))),
                            *bsi_flags(_manifest_flags(entries)),
                            Property(name="modelshield:bsi-basis",
                                     value=f"file names listed in {path} (not downloaded)")])
    if facts.get("manifest_entries", 0) > len(entries):
        comp.properties.add(Property(name="modelshield:manifest:truncated", value=f"first {len(entries)} entries"))
    ctx.components.append(comp)
    ctx.patches.component_data[ref] = [_manifest_item(item) for item in entries]
    return ref


def _manifest_item(item: dict[str, Any]) -> dict[str, Any]:
    name = str(item.get("name") or item.get("path") or item.get("url") or "unnamed")
    props = [{"name": f"modelshield:manifest:{key}", "value": str(item[key])}
             for key in ("lines", "weight", "size", "split") if key in item]
    out: dict[str, Any] = {"type": "dataset", "name": name}
    if props:
        out["contents"] = {"properties": props}
    if isinstance(item.get("url"), str) and item["url"].startswith(("https://", "http://")):
        out.setdefault("contents", {})["url"] = item["url"]
    return out


def _manifest_flags(entries: list[dict[str, Any]]) -> dict[str, bool]:
    """Flags by the listed file names: executable or structured when any listed file is."""
    flags = {"executable": False, "archive": False, "structured": False}
    for item in entries:
        name = str(item.get("name") or item.get("path") or "")
        base = name[:-3] if name.endswith(".gz") else name  # compression alone is not an archive (BSI)
        child = tables.file_flags("", base)
        flags["executable"] |= child["executable"]
        flags["structured"] |= child["structured"]
    return flags
