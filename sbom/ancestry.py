"""Base models as `pedigree.ancestors`, from every file that names one, with a confidence.

Sources, strongest first:
- `declared`: the card's `base_model` front matter (+ `base_model_relation`) or the Hub's
  `base_model:<relation>:<id>` tags: the publisher says so;
- `config`: `_name_or_path` in `config.json` (or `name_or_path` in `tokenizer_config.json`), the
  checkpoint transformers loaded before saving, when it is a Hub id other than the model itself;
- `prose`: a Hub model link in a card sentence that says pretrained / fine-tuned from / based on.
Confidence: `high` when declared; `medium` when two inferred sources agree; `low` for one.
Every source is listed on the ancestor (`modelshield:base-model:source`), none is dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType, Pedigree
from packageurl import PackageURL

from . import tables
from .context import BomContext, ModelEntry
from .inventory import HF_ENDPOINT, cite, hub_tool_ref

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LINK = re.compile(r"https?://huggingface\.co/([A-Za-z0-9][\w.-]*/[\w.-]+)")
_NOT_MODELS = {"datasets", "spaces", "docs", "blog", "papers", "models", "organizations", "join", "settings",
               "learn", "tasks", "collections", "api"}
RELATIONS = ("finetune", "adapter", "quantized", "merge")


@dataclass
class Candidate:
    name: str
    relation: str | None = None
    sources: list[tuple[str, str, str | None]] = field(default_factory=list)  # (kind, note, source bom-ref)

    @property
    def confidence(self) -> str:
        kinds = {k for k, _, _ in self.sources}
        if "declared" in kinds:
            return "high"
        return "medium" if len(kinds) >= 2 else "low"


def provider(ctx: BomContext) -> None:
    """Pedigree ancestors and model -> base-model dependency edges for every model."""
    for entry in ctx.models:
        if entry.is_dataset:
            continue
        candidates = candidates_of(ctx, entry)
        if not candidates:
            continue
        ancestors = [_ancestor(ctx, entry, c) for c in candidates]
        entry.component.pedigree = Pedigree(ancestors=ancestors)
        for comp in ancestors:
            ref = str(comp.bom_ref.value)
            ctx.facts.setdefault("base_models", []).append(ref)
            ctx.patches.dependencies.setdefault(entry.ref, []).append(ref)
        first = candidates[0].sources[0]
        cite(ctx, entry, "/pedigree/ancestors", first[2], "; ".join(f"{c.name}: {n}" for c in candidates
                                                                      for _, n, _ in c.sources))
        ctx.facts.setdefault("pedigree", {})[entry.ref] = [a.bom_ref.value for a in ancestors]


def candidates_of(ctx: BomContext, entry: ModelEntry) -> list[Candidate]:
    """Every named base model of `entry`, merged by name, declared ones first."""
    found: dict[str, Candidate] = {}

    def add(name: str, kind: str, note: str, source: str | None, relation: str | None = None) -> None:
        name = name.strip()
        if not name or name == _own_id(entry):
            return
        cand = found.setdefault(name.lower(), Candidate(name))
        cand.relation = cand.relation or relation
        if (kind, note) not in {(k, n) for k, n, _ in cand.sources}:
            cand.sources.append((kind, note, source))

    for name, relation, note, source in _declared(ctx, entry):
        add(name, "declared", note, source, relation)
    for name, note, source in _from_configs(entry):
        add(name, "config", note, source)
    for name, note in _from_prose(entry):
        add(name, "prose", note, entry.card_source)
    return sorted(found.values(), key=lambda c: ({"high": 0, "medium": 1, "low": 2}[c.confidence], c.name.lower()))


def _own_id(entry: ModelEntry) -> str:
    return str((entry.target.provenance or {}).get("repo_id") or "")


def _declared(ctx: BomContext, entry: ModelEntry) -> list[tuple[str, str | None, str, str | None]]:
    raw = entry.card.get("base_model")
    names = [raw] if isinstance(raw, str) else [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
    relation = entry.card.get("base_model_relation")
    relation = relation if isinstance(relation, str) and relation else None
    note = f"{entry.card_note}: base_model" + (", base_model_relation" if relation else "")
    out = [(n, relation, note, entry.card_source) for n in names]
    hub_tags = [] if entry.root else list((entry.target.provenance or {}).get("tags") or [])
    tags = list(entry.card.get("tags") or []) + hub_tags
    for tag in tags:
        parts = tag.split(":") if isinstance(tag, str) and tag.startswith("base_model:") else []
        if len(parts) == 3 and parts[1] in RELATIONS:
            out.append((parts[2], parts[1], f"tag {tag}", hub_tool_ref(ctx, entry.target.provenance or {})))
        elif len(parts) == 2:
            out.append((parts[1], None, f"tag {tag}", hub_tool_ref(ctx, entry.target.provenance or {})))
    return out


def _from_configs(entry: ModelEntry) -> list[tuple[str, str, str | None]]:
    out = []
    for name, key in (("config.json", "_name_or_path"), ("tokenizer_config.json", "name_or_path")):
        path = entry.root_path(name)
        stated = (entry.stated.get(path) or {}).get("stated") or {}
        value = stated.get(key)
        if isinstance(value, str) and _HUB_ID.match(value) and not value.startswith((".", "/", "~")):
            source = entry.files[path].bom_ref.value if path in entry.files else None
            out.append((value, f"{path}: {key}", source))
    return out


def _from_prose(entry: ModelEntry) -> list[tuple[str, str]]:
    phrases = tables.load("training_tables")["base_model_phrases"]
    out = []
    for heading, text in entry.sections.items():
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            lower = sentence.lower()
            if not any(p in lower for p in phrases):
                continue
            for match in _LINK.finditer(sentence):
                name = match.group(1).rstrip(".")
                if name.split("/", 1)[0].lower() not in _NOT_MODELS:
                    out.append((name, f"model card prose under '{heading}'"))
    return out


def _ancestor(ctx: BomContext, entry: ModelEntry, cand: Candidate) -> Component:
    namespace, _, short = cand.name.rpartition("/")
    hub = bool(_HUB_ID.match(cand.name))
    purl = PackageURL("huggingface", namespace or None, short) if hub else None
    ref = purl.to_string() if purl else f"urn:modelshield:model:{cand.name}"
    comp = Component(type=ComponentType.MACHINE_LEARNING_MODEL, name=short or cand.name, group=namespace or None,
                     purl=purl, bom_ref=ref)
    props = [Property(name="modelshield:base-model:confidence", value=cand.confidence)]
    props += [Property(name="modelshield:base-model:source", value=f"{kind}: {note}") for kind, note, _ in cand.sources]
    if cand.relation:
        props.append(Property(name="modelshield:base-model:relation", value=cand.relation))
    comp.properties.update(props)
    if hub:
        endpoint = str((entry.target.provenance or {}).get("endpoint") or HF_ENDPOINT).rstrip("/")
        comp.external_references.add(ExternalReference(
            type=ExternalReferenceType.VCS, url=XsUri(f"{endpoint}/{cand.name}"),
            comment="base model named by the model's files (revision not stated; not fetched)"))
    return comp
