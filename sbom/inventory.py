"""Identity and per-file integrity: one model (or dataset) component per target, a `file` child
per artefact with the hashes the scan pass computed (never the Hub's git `blob_id`)."""
from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from packageurl import PackageURL

from modelshield.scanner.findings import Artefact, Status, TargetResult
from . import licenses, tables
from .context import BomContext, Citation, ModelEntry

HF_ENDPOINT = "https://huggingface.co"
CARD_NAMES = ("readme.md", "modelcard.md", "model_card.md")


def provider(ctx: BomContext) -> None:
    """Add one entry per target (model component + file components)."""
    used: set[str] = set()
    for target in ctx.report.targets:
        entry = build_entry(ctx, target)
        base, n = entry.ref, 2
        while entry.ref in used:  # the same folder scanned twice: keep refs unique
            entry.ref = f"{base}#{n}"
            n += 1
        used.add(entry.ref)
        ctx.models.append(entry)


def content_digest(target: TargetResult) -> str:
    """SHA-256 over the sorted (path, sha256) list: a version for targets without a commit."""
    h = hashlib.sha256()
    for a in sorted(target.artefacts, key=lambda a: a.path):
        h.update(f"{a.path}\0{a.sha256 or '-'}\n".encode())
    return h.hexdigest()


def _card_artefact(target: TargetResult) -> Artefact | None:
    cards = [a for a in target.artefacts if "model_card" in a.properties]
    for name in CARD_NAMES:
        for a in cards:
            if a.path.lower() == name:
                return a
    return cards[0] if len(cards) == 1 else None


def _config(target: TargetResult) -> tuple[dict[str, Any], Artefact | None]:
    for a in target.artefacts:
        if a.path.lower() == "config.json" and isinstance(a.properties.get("hf_config"), dict):
            facts = a.properties["hf_config"]
            if isinstance(facts.get("config"), dict) and "architectures" not in facts:
                facts = facts["config"]
            return facts, a
    return {}, None


def build_entry(ctx: BomContext, target: TargetResult) -> ModelEntry:
    """The model component for `target`, its file children, and the card/config evidence."""
    prov = target.provenance or {}
    is_hub = prov.get("source") == "huggingface" and prov.get("repo_id")
    is_dataset = prov.get("repo_type") == "dataset"
    card_art = _card_artefact(target)
    card_info = card_art.properties["model_card"] if card_art else {}
    config, config_art = _config(target)

    commit = str(prov.get("commit") or "").lower() or None
    if is_hub:
        repo_id = str(prov["repo_id"])
        namespace, _, name = repo_id.rpartition("/")
        endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/")
        if is_dataset:
            ref = f"urn:hf:dataset:{repo_id}" + (f"@{commit}" if commit else "")
            purl = None
        else:
            qualifiers = {"repository_url": endpoint} if endpoint != HF_ENDPOINT else None
            purl = PackageURL("huggingface", namespace or None, name, commit, qualifiers)
            ref = purl.to_string()
        version = commit
        group = namespace or None
    else:
        name = _local_name(target, card_info)
        group, purl = None, None
        version = None
        ref = f"urn:modelshield:{'dataset' if is_dataset else 'model'}:{name}:sha256:{content_digest(target)}"

    entry = ModelEntry(target=target, ref=ref, name=name, is_dataset=bool(is_dataset),
                       component=Component(name=name, type=ComponentType.DATA if is_dataset
                                           else ComponentType.MACHINE_LEARNING_MODEL,
                                           bom_ref=ref, group=group, version=version, purl=purl))
    comp = entry.component

    # Card: the README we scanned beats the Hub API's copy (same commit, but we read it ourselves).
    for a in target.artefacts:
        entry.artefacts[a.path] = a
    if card_info.get("card_data") or card_info.get("sections"):
        entry.card = dict(card_info.get("card_data") or {})
        entry.sections = dict(card_info.get("sections") or {})
        entry.card_title = card_info.get("title")
        entry.card_note = f"{card_art.path} front matter" if card_art else ""
    elif isinstance(prov.get("card_data"), dict):
        entry.card = dict(prov["card_data"])
        entry.card_note = "Hugging Face Hub API card_data"
    if config:
        entry.config, entry.config_note = config, f"{config_art.path}"
    elif isinstance(prov.get("config"), dict):
        entry.config, entry.config_note = prov["config"], "Hugging Face Hub API config"

    _add_files(ctx, entry)
    comp.properties.update(bsi_flags(aggregate_flags(entry)))
    if is_dataset:
        ctx.patches.component_data[ref] = dataset_data(entry, endpoint if is_hub else None)
    if card_art is not None and entry.card_note.startswith(card_art.path):
        entry.card_source = entry.files[card_art.path].bom_ref.value
    elif entry.card_note:
        entry.card_source = hub_tool_ref(ctx, prov)
    if config_art is not None and entry.config_note == config_art.path:
        entry.config_source = entry.files[config_art.path].bom_ref.value
    elif entry.config_note:
        entry.config_source = hub_tool_ref(ctx, prov)

    # Supplier, licence, description, references: only what the evidence states.
    if is_hub and prov.get("author"):
        comp.supplier = OrganizationalEntity(name=str(prov["author"]),
                                             urls=[XsUri(f"{endpoint}/{prov['author']}")])
    found = licenses.from_card(entry.card)
    if found:
        comp.licenses.update(found)
        cite(ctx, entry, "/licenses", entry.card_source, f"{entry.card_note}: license")
    description = _description(entry)
    if description:
        comp.description = description
        cite(ctx, entry, "/description", entry.card_source or _card_file_ref(entry),
             "model card: first paragraph under the title")
    if is_hub:
        kind = "datasets/" if is_dataset else ""
        base = f"{endpoint}/{kind}{prov['repo_id']}"
        rev = commit or prov.get("revision") or "main"
        refs = [(ExternalReferenceType.VCS, base, "repository"),
                (ExternalReferenceType.DISTRIBUTION, f"{base}/tree/{rev}", "files at the scanned commit")]
        if card_art is not None or prov.get("card_data") is not None:
            refs.append((ExternalReferenceType.MODEL_CARD, f"{base}/blob/{rev}/README.md", "model card"))
        for kind_, url, comment in refs:
            comp.external_references.add(ExternalReference(type=kind_, url=XsUri(url), comment=comment))
    props = [Property(name="modelshield:verdict", value=target.verdict.value),
             Property(name="modelshield:target", value=target.target),
             Property(name="modelshield:target:kind", value=target.kind),
             Property(name="modelshield:content-sha256", value=content_digest(target))]
    if target.error:
        props.append(Property(name="modelshield:error", value=target.error))
    for key in ("revision", "library_name", "pipeline_tag", "gated", "disabled", "private",
                "created_at", "last_modified", "security_status", "offline"):
        if prov.get(key) not in (None, "", []):
            value = prov[key]
            props.append(Property(name=f"modelshield:hub:{key}",
                                  value=value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    for tag in prov.get("tags") or []:
        props.append(Property(name="modelshield:hub:tag", value=str(tag)))
    # Custom code: config auto_map (what trust_remote_code would import) or the Hub's custom_code tag.
    auto_map = entry.config.get("auto_map")
    if isinstance(auto_map, dict) and auto_map:
        for key, value in sorted(auto_map.items()):
            props.append(Property(name="modelshield:auto_map", value=f"{key} -> {_short_json(value)}"))
    if (isinstance(auto_map, dict) and auto_map) or "custom_code" in (prov.get("tags") or []):
        props.append(Property(name="modelshield:custom_code", value="true"))
    comp.properties.update(props)
    return entry


def dataset_data(entry: ModelEntry, endpoint: str | None) -> list[dict[str, Any]]:
    """`data[]` of a scanned dataset: the dataset itself, then one entry per data file the scan
    inventoried (format facts from the file header; the hashes are on the `file` components)."""
    prov = entry.target.provenance or {}
    rev = prov.get("commit") or prov.get("revision") or "main"
    base = f"{endpoint}/datasets/{prov.get('repo_id')}" if endpoint and prov.get("repo_id") else None
    whole: dict[str, Any] = {"type": "dataset", "name": str(prov.get("repo_id") or entry.name)}
    if base:
        whole["contents"] = {"url": f"{base}/tree/{rev}"}
    out = [whole]
    for path, artefact in sorted(entry.artefacts.items()):
        facts = artefact.properties.get("dataset_file")
        if not isinstance(facts, dict):
            continue
        item: dict[str, Any] = {"type": "dataset", "name": path, "description": _data_file_text(facts)}
        props = [{"name": "modelshield:file", "value": entry.files[path].bom_ref.value}]
        for key in ("kind", "rows", "row_groups", "created_by"):
            if facts.get(key) not in (None, ""):
                props.append({"name": f"modelshield:dataset:{key}", "value": str(facts[key])})
        item["contents"] = {"properties": props}
        if base:
            item["contents"]["url"] = f"{base}/resolve/{rev}/{path}"
        out.append(item)
    return out


def _data_file_text(facts: dict[str, Any]) -> str:
    parts = [str(facts.get("kind") or "data file")]
    if isinstance(facts.get("rows"), int):
        parts.append(f"{facts['rows']} rows")
    columns = facts.get("schema") or facts.get("columns")
    if isinstance(columns, list):
        names = [str(c.get("name")) if isinstance(c, dict) else str(c) for c in columns[:20]]
        parts.append("columns " + ", ".join(names) + (" ..." if len(columns) > 20 else ""))
    return "; ".join(parts)


def _local_name(target: TargetResult, card_info: dict[str, Any]) -> str:
    data = card_info.get("card_data") or {}
    if isinstance(data.get("model_name"), str) and data["model_name"].strip():
        return data["model_name"].strip()
    if isinstance(card_info.get("title"), str) and card_info["title"].strip():
        return card_info["title"].strip()[:200]
    root = (target.root or target.target).rstrip("/\\")
    return posixpath.basename(root.replace("\\", "/")) or "model"


def _description(entry: ModelEntry) -> str | None:
    if isinstance(entry.card.get("description"), str):
        return entry.card["description"].strip()[:2000] or None
    if entry.card_title and entry.card_title in entry.sections:
        para = entry.sections[entry.card_title].split("\n\n", 1)[0].strip()
        return para[:2000] or None
    return None


def _card_file_ref(entry: ModelEntry) -> str | None:
    for path, comp in entry.files.items():
        if path.lower() in CARD_NAMES:
            return comp.bom_ref.value
    return None


def hub_tool_ref(ctx: BomContext, prov: dict[str, Any]) -> str:
    """bom-ref of the Hub API as a metadata tool service (added once)."""
    ref = "tool:huggingface-hub-api"
    if not any(s["bom-ref"] == ref for s in ctx.patches.tool_services):
        endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/")
        ctx.patches.tool_services.append({"bom-ref": ref, "name": "Hugging Face Hub API",
                                          "endpoints": [f"{endpoint}/api"]})
    return ref


def cite(ctx: BomContext, entry: ModelEntry, field: str, source_ref: str | None, note: str) -> None:
    """Record the source of a field of the model component (1.7 citation or 1.6 property)."""
    if ctx.cite_in_properties:
        name = field[len("property:"):] if field.startswith("property:") else field.strip("/")
        entry.component.properties.add(Property(name=f"modelshield:source:{name}", value=note))
    else:
        ctx.patches.citations.append(Citation(entry.ref, field, source_ref, note))


def _add_files(ctx: BomContext, entry: ModelEntry) -> None:
    prov = entry.target.provenance or {}
    hub_files = {f.get("path"): f for f in prov.get("files") or [] if isinstance(f, dict)}
    for a in sorted(entry.target.artefacts, key=lambda a: a.path):
        comp = file_component(entry.ref, a)
        hub = hub_files.get(a.path)
        if hub:
            _hub_file_properties(comp, hub, a.sha256)
            if not a.sha256 and hub.get("lfs_sha256"):  # filtered out, not read: the published hash only
                comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=str(hub["lfs_sha256"]).lower()))
                for prop in [p for p in comp.properties if p.name == "modelshield:hash-source"]:
                    comp.properties.discard(prop)
                comp.properties.add(Property(name="modelshield:hash-source", value="hub-lfs-pointer"))
        entry.files[a.path] = comp
        entry.component.components.add(comp)
        ctx.depend(entry.ref, comp.bom_ref.value)
    # Files the Hub lists but that were not downloaded: named, with only the published LFS hash.
    for path, hub in sorted(hub_files.items(), key=lambda kv: str(kv[0])):
        if path in entry.files or not path:
            continue
        comp = Component(type=ComponentType.FILE, name=str(path), bom_ref=f"{entry.ref}#file:{path}")
        if hub.get("lfs_sha256"):
            comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=str(hub["lfs_sha256"]).lower()))
            comp.properties.add(Property(name="modelshield:hash-source", value="hub-lfs-pointer"))
        # Not read: the BSI flags follow the file name only (modelshield:bsi-basis says so).
        comp.properties.update([Property(name="modelshield:status", value="not-downloaded"),
                                Property(name="bsi:component:filename", value=posixpath.basename(str(path))),
                                *bsi_flags(tables.file_flags("", str(path))),
                                Property(name="modelshield:bsi-basis", value="file name (not downloaded)")])
        if hub.get("size") is not None:
            comp.properties.add(Property(name="modelshield:size", value=str(hub["size"])))
        entry.files[str(path)] = comp
        entry.component.components.add(comp)
        ctx.depend(entry.ref, comp.bom_ref.value)


def file_component(model_ref: str, a: Artefact) -> Component:
    """A `file` component for one artefact: hashes from the scan pass, size, format, BSI flags."""
    comp = Component(type=ComponentType.FILE, name=a.path, bom_ref=f"{model_ref}#file:{a.path}")
    if a.sha256:
        comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=a.sha256))
    if a.sha512:
        comp.hashes.add(HashType(alg=HashAlgorithm.SHA_512, content=a.sha512))
    props = [Property(name="bsi:component:filename", value=posixpath.basename(a.path)),
             *bsi_flags(tables.file_flags(a.format, a.path)),
             Property(name="modelshield:size", value=str(a.size)),
             Property(name="modelshield:format", value=a.format),
             Property(name="modelshield:status", value=a.status.value),
             Property(name="modelshield:verdict", value=a.verdict.value)]
    if a.reason:
        props.append(Property(name="modelshield:reason", value=a.reason))
    if a.status is Status.SKIPPED and not a.sha256:
        props.append(Property(name="modelshield:hash-source", value="none (not read)"))
    for member in a.members[:200]:
        props.append(Property(name="modelshield:member", value=member))
    comp.properties.update(props)
    return comp


def bsi_flags(flags: dict[str, bool]) -> list[Property]:
    """The three BSI TR-03183-2 flags, with the values the BSI property taxonomy defines."""
    return [Property(name="bsi:component:executable", value="executable" if flags["executable"] else "non-executable"),
            Property(name="bsi:component:archive", value="archive" if flags["archive"] else "no archive"),
            Property(name="bsi:component:structured", value="structured" if flags["structured"] else "unstructured")]


def aggregate_flags(entry: ModelEntry) -> dict[str, bool]:
    """BSI flags of a model/dataset component made of files: executable or structured when any
    file is (the taxonomy: "structured" if any part is); a folder of files is not an archive."""
    flags = {"executable": False, "archive": False, "structured": False}
    for path in entry.files:
        artefact = entry.artefacts.get(path)
        child = tables.file_flags(artefact.format if artefact else "", path)
        flags["executable"] |= child["executable"]
        flags["structured"] |= child["structured"]
    return flags


def _hub_file_properties(comp: Component, hub: dict[str, Any], sha256: str | None) -> None:
    lfs = hub.get("lfs_sha256")
    if lfs and sha256:
        comp.properties.add(Property(name="modelshield:hub:lfs-sha256",
                                     value="match" if str(lfs).lower() == sha256 else f"mismatch:{lfs}"))
    if hub.get("hub_scan") not in (None, "", {}):
        value = hub["hub_scan"]
        comp.properties.add(Property(name="modelshield:hub:scan",
                                     value=value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    if hub.get("verified") is not None:
        comp.properties.add(Property(name="modelshield:hub:verified", value=str(hub["verified"]).lower()))



def _short_json(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 300 else text[:300] + "..."
