"""Lineage: the datasets a model card names (`datasets:` front matter, `dataset:` tags) as `data`
components; base models are `ancestry`, tables and manifests `training`."""
from __future__ import annotations

import re
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType

from .context import BomContext, ModelEntry
from .inventory import HF_ENDPOINT

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def datasets_provider(ctx: BomContext) -> None:
    """One `data` component per dataset the card (or `dataset:` tags) names."""
    known: dict[str, Component] = {}
    # Datasets scanned in this same run (hf://datasets/...) are the lineage target themselves.
    scanned = {str((e.target.provenance or {}).get("repo_id")): e.ref for e in ctx.models if e.is_dataset}
    for entry in ctx.models:
        names = _dataset_names(entry)
        refs = []
        for name in names:
            if name in scanned:
                refs.append(scanned[name])
                ctx.depend(entry.ref, scanned[name])
                continue
            ref = f"urn:hf:dataset:{name}" if _HUB_ID.match(name) else f"urn:modelshield:dataset:{name}"
            if ref not in known:
                comp = Component(type=ComponentType.DATA, name=name, bom_ref=ref)
                data: dict[str, Any] = {"type": "dataset", "name": name}
                if _HUB_ID.match(name):
                    url = f"{_endpoint(entry)}/datasets/{name}"
                    comp.external_references.add(ExternalReference(
                        type=ExternalReferenceType.DISTRIBUTION, url=XsUri(url),
                        comment="Hugging Face Hub dataset named by the model card (not fetched or verified)"))
                    data["contents"] = {"url": url}
                comp.properties.add(Property(name="modelshield:source", value=entry.card_note or "card"))
                comp.properties.add(Property(name="modelshield:dataset:scanned", value="false"))
                ctx.unseen_dataset(name)
                known[ref] = comp
                ctx.components.append(comp)
                ctx.patches.component_data[ref] = [data]
            refs.append(ref)
            ctx.depend(entry.ref, ref)
        if refs:
            ctx.facts.setdefault("dataset_refs", {})[entry.ref] = refs
    ctx.facts["datasets"] = sorted(known)  # named only: their content is unknown (compositions)
    ctx.facts["dataset_components"] = known
    used = {r for refs in ctx.facts.get("dataset_refs", {}).values() for r in refs}
    ctx.facts["datasets_scanned"] = sorted(used & set(scanned.values()))


def _endpoint(entry: ModelEntry) -> str:
    return str((entry.target.provenance or {}).get("endpoint") or HF_ENDPOINT).rstrip("/")


def _dataset_names(entry: ModelEntry) -> list[str]:
    raw = entry.card.get("datasets")
    names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    hub_tags = [] if entry.root else list((entry.target.provenance or {}).get("tags") or [])
    tags = list(entry.card.get("tags") or []) + hub_tags
    names += [t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("dataset:")]
    out: list[str] = []
    for name in names:
        if isinstance(name, str) and name.strip() and name.strip() not in out:
            out.append(name.strip())
    return out


