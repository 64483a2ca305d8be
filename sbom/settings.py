"""What a model's configuration files state: hyperparameters, tokenizer settings, inputs/outputs.

Sources (as the scanner parsed them, `Artefact.properties["hf_config"]["stated"]`):
`config.json` (hyperparameters), `tokenizer_config.json` and `special_tokens_map.json` (tokenizer),
sentence-transformers `sentence_bert_config.json` (input length), `modules.json` and the pooling
module's `config.json` (output), `preprocessor_config.json` and its siblings (image/audio input).
Names follow the CycloneDX ai-ml property taxonomy (`data/settings.toml`); each value is copied as
stated and each field cites its file. Nothing is inferred from names or sizes.
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from . import tables
from .context import BomContext, ModelEntry
from .inventory import cite

MAX_PROPERTIES = 150
PREPROCESSORS = ("preprocessor_config.json", "image_processor_config.json", "feature_extractor_config.json",
                 "processor_config.json")


@dataclass
class Stated:
    """modelCard additions for one model."""

    inputs: list[dict[str, str]] = field(default_factory=list)
    outputs: list[dict[str, str]] = field(default_factory=list)
    properties: list[dict[str, str]] = field(default_factory=list)  # modelCard.properties
    modalities: list[str] = field(default_factory=list)  # cdx:ai-ml:model:modality (component)


def _file(entry: ModelEntry, name: str) -> tuple[str, dict[str, Any]] | None:
    path = entry.root_path(name)
    facts = entry.stated.get(path)
    return (path, facts) if isinstance(facts, dict) else None


def _settings(entry: ModelEntry, name: str) -> tuple[str, dict[str, Any]] | None:
    found = _file(entry, name)
    if found and isinstance(found[1].get("stated"), dict):
        return found[0], found[1]["stated"]
    return None


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def collect(ctx: BomContext, entry: ModelEntry) -> Stated:
    """Everything the configuration files of `entry` state, with citations recorded."""
    out = Stated()
    _hyperparameters(ctx, entry, out)
    _tokenizer(ctx, entry, out)
    _sentence_transformers(ctx, entry, out)
    _preprocessor(ctx, entry, out)
    _modality(ctx, entry, out)
    out.properties = out.properties[:MAX_PROPERTIES]
    return out


def _source(entry: ModelEntry, path: str) -> str | None:
    comp = entry.files.get(path)
    return comp.bom_ref.value if comp is not None else None


def _hyperparameters(ctx: BomContext, entry: ModelEntry, out: Stated) -> None:
    found = _settings(entry, "config.json")
    if not found:
        return
    path, stated = found
    table = tables.load("settings")
    names, skip = table["model_hyperparameters"], set(table["skip"]["model"])
    used: set[str] = set()
    for key, value in stated.items():
        if key in skip or value is None or isinstance(value, list):
            continue
        name = names.get(key, f"_undefined:{key}")
        if name in used:
            continue
        used.add(name)
        out.properties.append({"name": f"cdx:ai-ml:model:hyperparameter:{name}", "value": _value(value)})
    if used:
        cite(ctx, entry, "/modelCard/properties", _source(entry, path), f"{path}: model settings")


def _tokenizer(ctx: BomContext, entry: ModelEntry, out: Stated) -> None:
    names = tables.load("settings")["tokenizer_hyperparameters"]
    seen: set[str] = set()
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        found = _settings(entry, name)
        if not found:
            continue
        path, stated = found
        for key, value in stated.items():
            taxonomy = names.get(key, f"_undefined:{key}")
            if taxonomy in seen or value is None or key == "name_or_path" or isinstance(value, list):
                continue
            seen.add(taxonomy)
            out.properties.append({"name": f"cdx:ai-ml:tokenizer:hyperparameter:{taxonomy}", "value": _value(value)})
        cite(ctx, entry, "/modelCard/properties", _source(entry, path), f"{path}: tokenizer settings")
    if seen or _file(entry, "tokenizer.json") or _file(entry, "tokenizer_config.json"):
        out.inputs.append({"format": "text"})


def _modules(entry: ModelEntry) -> list[dict[str, str]]:
    found = _file(entry, "modules.json")
    return [m for m in (found[1].get("modules") or []) if isinstance(m, dict)] if found else []


def _sentence_transformers(ctx: BomContext, entry: ModelEntry, out: Stated) -> None:
    found = _settings(entry, "sentence_bert_config.json")
    if found and isinstance(found[1].get("max_seq_length"), int):
        out.properties.append({"name": "modelshield:input:max-tokens", "value": str(found[1]["max_seq_length"])})
        out.properties.append({"name": "modelshield:input:longer-input", "value": "truncated"})
        cite(ctx, entry, "/modelCard/modelParameters/inputs", _source(entry, found[0]),
             f"{found[0]}: max_seq_length (sentence-transformers truncates longer input)")
    modules = _modules(entry)
    pooling = next((m for m in modules if str(m.get("type", "")).endswith(".Pooling")), None)
    stated = _settings(entry, posixpath.join(pooling.get("path", ""), "config.json")) if pooling else None
    if not stated:
        return
    path, facts = stated
    modes = sorted(k[len("pooling_mode_"):] for k, v in facts.items() if k.startswith("pooling_mode_") and v is True)
    dims = facts.get("word_embedding_dimension")
    normalised = any(str(m.get("type", "")).endswith(".Normalize") for m in modules)
    out.outputs.append({"format": "embedding vector"})
    if isinstance(dims, int):
        out.properties.append({"name": "modelshield:output:dimensions", "value": str(dims)})
    if modes:
        out.properties.append({"name": "modelshield:output:pooling", "value": ",".join(modes)})
    out.properties.append({"name": "modelshield:output:normalized", "value": "true" if normalised else "false"})
    cite(ctx, entry, "/modelCard/modelParameters/outputs", _source(entry, path),
         f"{path}: word_embedding_dimension, pooling_mode_*; modules.json: module list")


def _preprocessor(ctx: BomContext, entry: ModelEntry, out: Stated) -> None:
    for name in PREPROCESSORS:
        found = _settings(entry, name)
        if not found:
            continue
        path, stated = found
        audio = "sampling_rate" in stated
        image = any(k in stated for k in ("image_processor_type", "size", "crop_size", "image_mean"))
        if audio or image:
            out.inputs.append({"format": "audio" if audio else "image"})
        for key in ("image_processor_type", "feature_extractor_type", "processor_class", "size", "crop_size",
                    "sampling_rate", "feature_size", "do_normalize", "do_resize", "resample"):
            if key in stated and stated[key] is not None:
                out.properties.append({"name": f"modelshield:input:{key}", "value": _value(stated[key])})
        cite(ctx, entry, "/modelCard/modelParameters/inputs", _source(entry, path), f"{path}: preprocessing settings")
        return


def _modality(ctx: BomContext, entry: ModelEntry, out: Stated) -> None:
    task = entry.card.get("pipeline_tag") or (entry.target.provenance or {}).get("pipeline_tag") if not entry.root \
        else entry.card.get("pipeline_tag")
    found = []
    for modality, tasks in tables.load("settings")["modality"].items():
        if isinstance(task, str) and task in tasks:
            found.append(modality)
    for item in out.inputs:
        if item["format"] in ("text", "image", "audio") and item["format"] not in found:
            found.append(item["format"])
    out.modalities = found
