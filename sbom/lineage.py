"""Lineage: datasets as `data` components and base models as pedigree ancestors."""
from __future__ import annotations

import re
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType, Pedigree
from packageurl import PackageURL

from .context import BomContext, ModelEntry
from .inventory import HF_ENDPOINT, cite, hub_tool_ref

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
RELATIONS = ("finetune", "adapter", "quantized", "merge")


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
                known[ref] = comp
                ctx.components.append(comp)
                ctx.patches.component_data[ref] = [data]
            refs.append(ref)
            ctx.depend(entry.ref, ref)
        if refs:
            ctx.facts.setdefault("dataset_refs", {})[entry.ref] = refs
    ctx.facts["datasets"] = sorted(known)  # named only: their content is unknown (compositions)
    used = {r for refs in ctx.facts.get("dataset_refs", {}).values() for r in refs}
    ctx.facts["datasets_scanned"] = sorted(used & set(scanned.values()))


def _endpoint(entry: ModelEntry) -> str:
    return str((entry.target.provenance or {}).get("endpoint") or HF_ENDPOINT).rstrip("/")


def _dataset_names(entry: ModelEntry) -> list[str]:
    raw = entry.card.get("datasets")
    names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    tags = list(entry.card.get("tags") or []) + list((entry.target.provenance or {}).get("tags") or [])
    names += [t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("dataset:")]
    out: list[str] = []
    for name in names:
        if isinstance(name, str) and name.strip() and name.strip() not in out:
            out.append(name.strip())
    return out


def base_models_provider(ctx: BomContext) -> None:
    """`base_model` (+ relation) -> pedigree ancestors and model -> base model dependencies."""
    for entry in ctx.models:
        bases = _base_models(entry)
        if not bases:
            continue
        ancestors = []
        for name, relation in bases:
            namespace, _, short = name.rpartition("/")
            purl = PackageURL("huggingface", namespace or None, short) if _HUB_ID.match(name) else None
            ref = purl.to_string() if purl else f"urn:modelshield:model:{name}"
            comp = Component(type=ComponentType.MACHINE_LEARNING_MODEL, name=short or name,
                             group=namespace or None, purl=purl, bom_ref=ref)
            if relation:
                comp.properties.add(Property(name="modelshield:base-model:relation", value=relation))
            comp.properties.add(Property(name="modelshield:source", value=entry.card_note or "card"))
            if _HUB_ID.match(name):
                comp.external_references.add(ExternalReference(
                    type=ExternalReferenceType.VCS, url=XsUri(f"{_endpoint(entry)}/{name}"),
                    comment="base model named by the model card (revision not stated)"))
            ancestors.append(comp)
            ctx.facts.setdefault("base_models", []).append(ref)
            ctx.patches.dependencies.setdefault(entry.ref, []).append(ref)
        entry.component.pedigree = Pedigree(ancestors=ancestors)
        from_card = bool(entry.card.get("base_model"))
        cite(ctx, entry, "/pedigree/ancestors",
             entry.card_source if from_card else hub_tool_ref(ctx, entry.target.provenance or {}),
             f"{entry.card_note}: base_model"
             + (", base_model_relation" if entry.card.get("base_model_relation") else "")
             if from_card else "Hub API tags base_model:<relation>:<id>")
        ctx.facts.setdefault("pedigree", {})[entry.ref] = [a.bom_ref.value for a in ancestors]


def _base_models(entry: ModelEntry) -> list[tuple[str, str | None]]:
    raw = entry.card.get("base_model")
    names = [raw] if isinstance(raw, str) else [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
    relation = entry.card.get("base_model_relation")
    relation = relation if isinstance(relation, str) and relation else None
    out = [(n.strip(), relation) for n in names if n.strip()]
    tags = list(entry.card.get("tags") or []) + list((entry.target.provenance or {}).get("tags") or [])
    for tag in tags:
        if not isinstance(tag, str) or not tag.startswith("base_model:"):
            continue
        parts = tag.split(":")
        if len(parts) == 3 and parts[1] in RELATIONS:
            name, rel = parts[2], parts[1]
        elif len(parts) == 2:
            name, rel = parts[1], None
        else:
            continue
        known = {n for n, _ in out}
        if name in known:
            out = [(n, r or rel if n == name else r) for n, r in out]
        else:
            out.append((name, rel))
    return out
