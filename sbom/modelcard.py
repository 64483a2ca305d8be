"""`modelCard` from evidence only: card data, config.json facts and scanned headers.

Each field is set only when a file or the Hub API states it, and its source is recorded
(1.7 `citations`, 1.6 `modelshield:source:*` properties). Nothing is guessed from names.
"""
from __future__ import annotations

import re
from typing import Any

from cyclonedx.model import Property

from . import settings, tables
from .context import BomContext, ModelEntry
from .inventory import cite

MAX_ITEMS = 50
MAX_TEXT = 2000


def provider(ctx: BomContext) -> None:
    """Fill `modelCard` (patch) and the ai-ml properties of each model component."""
    for entry in ctx.models:
        if entry.is_dataset:
            continue
        card = build(ctx, entry)
        if card:
            ctx.patches.model_cards[entry.ref] = card
        _properties(ctx, entry)


def build(ctx: BomContext, entry: ModelEntry) -> dict[str, Any]:
    """The modelCard dict for one model ({} when there is no evidence at all)."""
    params: dict[str, Any] = {}
    prov = entry.target.provenance or {}
    task = entry.card.get("pipeline_tag") or prov.get("pipeline_tag")
    if isinstance(task, str) and task:
        params["task"] = task
        src = entry.card_source if entry.card.get("pipeline_tag") else _hub(ctx, entry)
        note = f"{entry.card_note}: pipeline_tag" if entry.card.get("pipeline_tag") else "Hub API pipeline_tag"
        cite(ctx, entry, "/modelCard/modelParameters/task", src, note)
    model_type = entry.config.get("model_type")
    if isinstance(model_type, str) and model_type:
        params["architectureFamily"] = model_type
        cite(ctx, entry, "/modelCard/modelParameters/architectureFamily", entry.config_source,
             f"{entry.config_note}: model_type")
    archs = entry.config.get("architectures")
    if isinstance(archs, list) and archs and all(isinstance(a, str) for a in archs):
        params["modelArchitecture"] = ", ".join(archs)
        cite(ctx, entry, "/modelCard/modelParameters/modelArchitecture", entry.config_source,
             f"{entry.config_note}: architectures")
    dataset_refs = ctx.facts.get("dataset_refs", {}).get(entry.ref, [])
    if dataset_refs:
        params["datasets"] = [{"ref": ref} for ref in dataset_refs]
        cite(ctx, entry, "/modelCard/modelParameters/datasets", entry.card_source,
             f"{entry.card_note}: datasets")
    stated = settings.collect(ctx, entry)
    if stated.inputs:
        params["inputs"] = stated.inputs
    if stated.outputs:
        params["outputs"] = stated.outputs
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    if stated.properties:
        card["properties"] = stated.properties
    entry.component.properties.update(Property(name="cdx:ai-ml:model:modality", value=m) for m in stated.modalities)
    metrics = performance_metrics(entry.card)
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
        cite(ctx, entry, "/modelCard/quantitativeAnalysis/performanceMetrics", entry.card_source,
             f"{entry.card_note}: model-index results")
    considerations = considerations_from_sections(entry.sections)
    if considerations:
        card["considerations"] = considerations
        for key in considerations:
            cite(ctx, entry, f"/modelCard/considerations/{key}", _card_file_ref(entry),
                 "model card sections: " + ", ".join(_headings_for(entry.sections, key)))
    return card


def performance_metrics(card: dict[str, Any]) -> list[dict[str, Any]]:
    """model-index results -> performanceMetrics (values as strings, slice = dataset [split])."""
    out: list[dict[str, Any]] = []
    index = card.get("model-index") or card.get("model_index")
    if not isinstance(index, list):
        return out
    for model in index:
        results = model.get("results") if isinstance(model, dict) else None
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            raw_dataset = result.get("dataset")
            dataset = raw_dataset if isinstance(raw_dataset, dict) else {}
            slice_parts = [str(dataset.get(k)) for k in ("name", "config", "split") if dataset.get(k)]
            if not slice_parts and dataset.get("type"):
                slice_parts = [str(dataset["type"])]
            for metric in result.get("metrics") or []:
                if not isinstance(metric, dict) or metric.get("value") is None:
                    continue
                entry = {"type": str(metric.get("type") or metric.get("name") or "unknown"),
                         "value": str(metric["value"])}
                if slice_parts:
                    entry["slice"] = " / ".join(slice_parts)
                out.append(entry)
                if len(out) >= MAX_ITEMS:
                    return out
    return out


def considerations_from_sections(sections: dict[str, str]) -> dict[str, list[str]]:
    """Card sections under known headings -> string lists of `considerations` (verbatim text)."""
    mapping = tables.load("card_sections")["map"]
    out: dict[str, list[str]] = {}
    for heading, text in sections.items():
        field = _field_for(heading, mapping)
        text = text.strip()
        if field and text:
            out.setdefault(field, []).append(text[:MAX_TEXT])
    return out


def _field_for(heading: str, mapping: list[dict[str, Any]]) -> str | None:
    lower = heading.lower()
    for row in mapping:
        if any(phrase in lower for phrase in row["phrases"]):
            return row["field"]
    return None


def _headings_for(sections: dict[str, str], field: str) -> list[str]:
    mapping = tables.load("card_sections")["map"]
    return [h for h, t in sections.items() if t.strip() and _field_for(h, mapping) == field]


def _card_file_ref(entry: ModelEntry) -> str | None:
    from .inventory import _card_file_ref as ref

    return ref(entry)


def _hub(ctx: BomContext, entry: ModelEntry) -> str:
    from .inventory import hub_tool_ref

    return hub_tool_ref(ctx, entry.target.provenance or {})


def parameter_count(entry: ModelEntry) -> tuple[int | None, str]:
    """Total parameters from scanned headers (safetensors shards summed, else GGUF), or the Hub."""
    total, sources = 0, []
    for path, artefact in sorted(entry.artefacts.items()):
        for key in ("safetensors", "gguf"):
            facts = artefact.properties.get(key)
            if not isinstance(facts, dict):
                continue
            for name in ("parameter_count", "parameters", "total_parameters", "param_count", "n_params"):
                value = facts.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    total += value
                    sources.append(path)
                    break
    if sources:
        return total, "scanned headers: " + ", ".join(sources)
    hub = (entry.target.provenance or {}).get("safetensors_total")
    if isinstance(hub, int) and not isinstance(hub, bool):
        return hub, "Hub API safetensors.total"
    return None, ""


_ISO_639_1 = re.compile(r"^[a-z]{2}$")


def short_count(count: int) -> str:
    """22713216 -> "22.7M", 7241732096 -> "7.2B"; below a million the plain number."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
        if count >= size:
            text = f"{count / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(count)


def _properties(ctx: BomContext, entry: ModelEntry) -> None:
    props = []
    # CycloneDX property taxonomy (cdx/ai-ml.md): `cdx:ai-ml:model:language`, one ISO 639-1 code
    # or a comma-separated list per value; cards also carry "multilingual" or 639-3 codes, which
    # go to a modelshield property instead of breaking the taxonomy's value rule.
    languages = entry.card.get("language")
    codes = [str(x).strip() for x in (languages if isinstance(languages, list) else [languages] if languages else [])
             if str(x).strip()]
    iso = [c for c in codes if _ISO_639_1.match(c)]
    if iso:
        props.append(Property(name="cdx:ai-ml:model:language", value=",".join(dict.fromkeys(iso))))
        cite(ctx, entry, "property:cdx:ai-ml:model:language", entry.card_source, f"{entry.card_note}: language")
    for other in codes:
        if other not in iso:
            props.append(Property(name="modelshield:language", value=other))
    count, source = parameter_count(entry)
    if count is not None:
        # The taxonomy asks for "<number><M|B|T>"; the exact count stays in a modelshield property.
        props.append(Property(name="cdx:ai-ml:model:parameter:count", value=short_count(count)))
        props.append(Property(name="modelshield:parameter-count", value=str(count)))
        props.append(Property(name="modelshield:source:parameter-count", value=source))
    library = entry.card.get("library_name") or (entry.target.provenance or {}).get("library_name")
    if isinstance(library, str) and library:
        props.append(Property(name="modelshield:library_name", value=library))
    entry.component.properties.update(props)
