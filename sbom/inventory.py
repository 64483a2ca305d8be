"""Identity and per-file integrity: one model (or dataset) component per model root of a target
(`roots.split`), a `file` child per artefact with the hashes the scan pass computed (never the
Hub's git `blob_id`). A target holding several models, or files outside every model, becomes a
folder component that contains the models and its stray files."""
from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any
from urllib.parse import quote

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from packageurl import PackageURL

from modelshield.scanner.findings import (Artefact, FileRecord, Finding, Provenance, Status, TargetResult, Verdict,
                                          combine)
from . import licenses, roots, tables
from .context import BomContext, Citation, ModelEntry, ref_of

HF_ENDPOINT = "https://huggingface.co"
CARD_NAMES = ("readme.md", "modelcard.md", "model_card.md")


def provider(ctx: BomContext) -> None:
    """Add the entries of every target and record each target's BOM subject in `ctx.tops`."""
    for target in ctx.report.targets:
        layout = roots.split(target)
        paths = [r.path for r in layout.roots]
        entries = [build_entry(ctx, target, root, paths) for root in layout.roots]
        ctx.models.extend(entries)
        if len(entries) == 1 and not layout.strays:
            entries[0].findings = list(target.findings)
            ctx.tops.append(entries[0].component)
            continue
        folder = build_folder(ctx, target, entries, layout.strays)
        ctx.folders.append(folder)
        ctx.tops.append(folder.component)


def _unique(ctx: BomContext, ref: str) -> str:
    """`ref`, or `ref#2`, `ref#3`... when the same content was already described (scanned twice)."""
    used = ctx.facts.setdefault("refs", set())
    out, n = ref, 2
    while out in used:
        out = f"{ref}#{n}"
        n += 1
    used.add(out)
    return out


def content_digest(artefacts: list[Artefact], root: str = "") -> str:
    """SHA-256 over the sorted (path relative to `root`, sha256) list: a version-like identity
    for content without a commit; the same bytes give the same digest wherever they lie."""
    h = hashlib.sha256()
    prefix = root + "/" if root else ""
    for a in sorted(artefacts, key=lambda a: a.path):
        path = a.path[len(prefix):] if prefix and a.path.startswith(prefix) else a.path
        h.update(f"{path}\0{a.sha256 or '-'}\n".encode())
    return h.hexdigest()


def verdict_word(artefacts: list[Artefact], findings: list[Finding]) -> str:
    """clean | unsafe | inconclusive, and `waived` when clean only because findings were waived."""
    active = {f.kind.value for f in findings if f.active}
    own = Verdict.UNSAFE if "threat" in active else Verdict.INCONCLUSIVE if "inconclusive" in active else Verdict.CLEAN
    verdict = combine([a.verdict for a in artefacts] + [own])
    waived = any(not f.active for f in findings) or any(not f.active for a in artefacts for f in a.findings)
    return "waived" if verdict is Verdict.CLEAN and waived else verdict.value


# --- one model root ---------------------------------------------------------------------------

def _card_artefact(arts: list[Artefact], root: str) -> Artefact | None:
    here = [a for a in arts if "model_card" in a.properties and posixpath.dirname(a.path) == root]
    for name in CARD_NAMES:
        for a in here:
            if posixpath.basename(a.path).lower() == name:
                return a
    return here[0] if len(here) == 1 else None


def _config(arts: list[Artefact], root: str) -> tuple[dict[str, Any], Artefact | None]:
    wanted = posixpath.join(root, "config.json") if root else "config.json"
    for a in arts:
        if a.path.lower() == wanted.lower() and isinstance(a.properties.get("hf_config"), dict):
            facts = a.properties["hf_config"]
            if isinstance(facts.get("config"), dict) and "architectures" not in facts:
                facts = facts["config"]
            return facts, a
    return {}, None


def _identity(target: TargetResult, root: str, card_info: dict[str, Any], kind: str,
              arts: list[Artefact]) -> tuple[str, str, str | None, str | None, PackageURL | None]:
    """(bom-ref, name, group, version, purl): Hub ids when the target is a Hub repo, else a
    content-addressed urn (no version is invented for a local folder)."""
    prov = target.provenance or {}
    if prov.get("source") == "huggingface" and prov.get("repo_id"):
        repo_id = str(prov["repo_id"])
        namespace, _, name = repo_id.rpartition("/")
        commit = str(prov.get("commit") or "").lower() or None
        if kind == "dataset":
            return f"urn:hf:dataset:{repo_id}" + (f"@{commit}" if commit else ""), name, namespace or None, commit, None
        endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/")
        qualifiers = {"repository_url": endpoint} if endpoint != HF_ENDPOINT else None
        purl = PackageURL("huggingface", namespace or None, name, commit, qualifiers, root or None)
        return purl.to_string(), (f"{name}/{root}" if root else name), namespace or None, commit, purl
    name = _local_name(target, root, card_info)
    ref = f"urn:modelshield:{kind}:{quote(name, safe='')}:sha256:{content_digest(arts, root)}"
    return ref, name, None, None, None


def build_entry(ctx: BomContext, target: TargetResult, root: roots.Root, root_paths: list[str]) -> ModelEntry:
    """The model (or dataset) component of one root, its file children and its card/config
    evidence; `root_paths` are all roots of the target (Hub-listed files go to the deepest)."""
    prov = target.provenance or {}
    kind = "dataset" if prov.get("repo_type") == "dataset" else "model"
    card_art = _card_artefact(root.artefacts, root.path)
    card_info = card_art.properties["model_card"] if card_art else {}
    config, config_art = _config(root.artefacts, root.path)
    ref, name, group, version, purl = _identity(target, root.path, card_info, kind, root.artefacts)
    ref = _unique(ctx, ref)
    comp = Component(name=name, type=ComponentType.DATA if kind == "dataset" else ComponentType.MACHINE_LEARNING_MODEL,
                     bom_ref=ref, group=group, version=version, purl=purl)
    entry = ModelEntry(target=target, ref=ref, name=name, component=comp, root=root.path, kind=kind)
    entry.artefacts = {a.path: a for a in root.artefacts}
    entry.stated = {a.path: a.properties["hf_config"] for a in root.artefacts
                    if isinstance(a.properties.get("hf_config"), dict)}
    _take_card(entry, card_art, card_info, config, config_art)
    _add_files(ctx, entry, _hub_files(entry, root_paths))
    comp.properties.update(bsi_flags(aggregate_flags(entry)))
    if kind == "dataset":
        endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/") if prov.get("repo_id") else None
        ctx.patches.component_data[ref] = dataset_data(entry, endpoint)
    _sources(ctx, entry, card_art, config_art)
    _licence_and_description(ctx, entry)
    _hub_facts(ctx, entry)
    comp.properties.update(_entry_properties(entry))
    return entry


def _take_card(entry: ModelEntry, card_art: Artefact | None, card_info: dict[str, Any],
               config: dict[str, Any], config_art: Artefact | None) -> None:
    """The README we scanned beats the Hub API's copy (same commit, but we read it ourselves)."""
    prov = entry.target.provenance or {}
    top = entry.root == ""
    if card_info.get("card_data") or card_info.get("sections"):
        entry.card = dict(card_info.get("card_data") or {})
        entry.sections = dict(card_info.get("sections") or {})
        entry.card_title = card_info.get("title")
        entry.card_note = f"{card_art.path} front matter" if card_art else ""
    elif top and isinstance(prov.get("card_data"), dict):
        entry.card = dict(prov["card_data"])
        entry.card_note = "Hugging Face Hub API card_data"
    if config and config_art is not None:
        entry.config, entry.config_note = config, config_art.path
    elif top and isinstance(prov.get("config"), dict):
        entry.config, entry.config_note = prov["config"], "Hugging Face Hub API config"


def _sources(ctx: BomContext, entry: ModelEntry, card_art: Artefact | None, config_art: Artefact | None) -> None:
    prov = entry.target.provenance or {}
    if card_art is not None and entry.card_note.startswith(card_art.path):
        entry.card_source = entry.files[card_art.path].bom_ref.value
    elif entry.card_note:
        entry.card_source = hub_tool_ref(ctx, prov)
    if config_art is not None and entry.config_note == config_art.path:
        entry.config_source = entry.files[config_art.path].bom_ref.value
    elif entry.config_note:
        entry.config_source = hub_tool_ref(ctx, prov)


def _licence_and_description(ctx: BomContext, entry: ModelEntry) -> None:
    comp = entry.component
    found = licenses.from_card(entry.card)
    if found:
        comp.licenses.update(found)
        cite(ctx, entry, "/licenses", entry.card_source, f"{entry.card_note}: license")
    description = _description(entry)
    if description:
        comp.description = description
        cite(ctx, entry, "/description", entry.card_source or _card_file_ref(entry),
             "model card: first paragraph under the title")


def _hub_facts(ctx: BomContext, entry: ModelEntry) -> None:
    """Supplier and repository references of a Hub repo (the target root only)."""
    prov = entry.target.provenance or {}
    if not (prov.get("source") == "huggingface" and prov.get("repo_id")) or entry.root:
        return
    endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/")
    comp = entry.component
    if prov.get("author"):
        comp.supplier = OrganizationalEntity(name=str(prov["author"]), urls=[XsUri(f"{endpoint}/{prov['author']}")])
    base = f"{endpoint}/{'datasets/' if entry.is_dataset else ''}{prov['repo_id']}"
    rev = str(prov.get("commit") or "").lower() or prov.get("revision") or "main"
    refs = [(ExternalReferenceType.VCS, base, "repository"),
            (ExternalReferenceType.DISTRIBUTION, f"{base}/tree/{rev}", "files at the scanned commit")]
    if entry.card_note and (entry.card_note.startswith("README") or prov.get("card_data") is not None):
        refs.append((ExternalReferenceType.MODEL_CARD, f"{base}/blob/{rev}/README.md", "model card"))
    for kind_, url, comment in refs:
        comp.external_references.add(ExternalReference(type=kind_, url=XsUri(url), comment=comment))


def _entry_properties(entry: ModelEntry) -> list[Property]:
    target, prov = entry.target, entry.target.provenance or {}
    arts = list(entry.artefacts.values())
    props = [Property(name="modelshield:verdict", value=verdict_word(arts, entry.findings)),
             Property(name="modelshield:target:kind", value=target.kind),
             Property(name="modelshield:content-sha256", value=content_digest(arts, entry.root))]
    props += target_properties(target)
    if entry.root:
        props.append(Property(name="modelshield:root", value=entry.root))
    if not entry.root:
        props += _hub_properties(prov)
    auto_map = entry.config.get("auto_map")
    if isinstance(auto_map, dict) and auto_map:
        for key, value in sorted(auto_map.items()):
            props.append(Property(name="modelshield:auto_map", value=f"{key} -> {_short_json(value)}"))
    if (isinstance(auto_map, dict) and auto_map) or ("custom_code" in (prov.get("tags") or []) and not entry.root):
        props.append(Property(name="modelshield:custom_code", value="true"))
    return props


def target_properties(target: TargetResult) -> list[Property]:
    """Where the target came from, without local paths (the same bytes elsewhere give the same BOM)."""
    props = []
    if target.kind not in ("local", "hf-cache"):
        props.append(Property(name="modelshield:target", value=target.target))
    if target.error:
        props.append(Property(name="modelshield:error", value=target.error))
    return props


def _hub_properties(prov: Provenance) -> list[Property]:
    props = []
    for key in ("revision", "library_name", "pipeline_tag", "gated", "disabled", "private",
                "created_at", "last_modified", "security_status", "offline"):
        if prov.get(key) not in (None, "", []):
            value = prov[key]
            props.append(Property(name=f"modelshield:hub:{key}",
                                  value=value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    props += [Property(name="modelshield:hub:tag", value=str(tag)) for tag in prov.get("tags") or []]
    return props


# --- a folder holding several models or stray files ---------------------------------------------

def build_folder(ctx: BomContext, target: TargetResult, entries: list[ModelEntry],
                 strays: list[Artefact]) -> ModelEntry:
    """The BOM subject of a target with several models (or files outside every model): a
    component of type `file` (the folder, as syft names a scanned directory) containing the
    model components and the stray files; target-level findings affect it."""
    name = posixpath.basename((target.root or target.target).rstrip("/\\").replace("\\", "/")) or "target"
    ref = _unique(ctx, f"urn:modelshield:folder:{quote(name, safe='')}:sha256:{content_digest(target.artefacts)}")
    comp = Component(name=name, type=ComponentType.FILE, bom_ref=ref,
                     description=f"Folder holding {len(entries)} model(s) and {len(strays)} file(s) outside them")
    folder = ModelEntry(target=target, ref=ref, name=name, component=comp, kind="folder",
                        findings=list(target.findings))
    folder.artefacts = {a.path: a for a in strays}
    _add_files(ctx, folder, {})
    flags = aggregate_flags(folder)
    for entry in entries:
        comp.components.add(entry.component)
        ctx.depend(ref, entry.ref)
        for key, value in aggregate_flags(entry).items():
            flags[key] |= value
    comp.properties.update(bsi_flags(flags))
    comp.properties.update([Property(name="modelshield:verdict", value=verdict_word(target.artefacts, target.findings)),
                            Property(name="modelshield:target:kind", value=target.kind),
                            Property(name="modelshield:models", value=str(len(entries))),
                            Property(name="modelshield:content-sha256", value=content_digest(target.artefacts)),
                            *target_properties(target)])
    return folder


# --- dataset repositories --------------------------------------------------------------------

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


def _local_name(target: TargetResult, root: str, card_info: dict[str, Any]) -> str:
    data = card_info.get("card_data") or {}
    if isinstance(data.get("model_name"), str) and data["model_name"].strip():
        return data["model_name"].strip()[:200]
    if isinstance(card_info.get("title"), str) and card_info["title"].strip():
        return card_info["title"].strip()[:200]
    if root:
        return posixpath.basename(root)
    top = (target.root or target.target).rstrip("/\\")
    return posixpath.basename(top.replace("\\", "/")) or "model"


def _description(entry: ModelEntry) -> str | None:
    if isinstance(entry.card.get("description"), str):
        return entry.card["description"].strip()[:2000] or None
    if entry.card_title and entry.card_title in entry.sections:
        para = entry.sections[entry.card_title].split("\n\n", 1)[0].strip()
        return para[:2000] or None
    return None


def _card_file_ref(entry: ModelEntry) -> str | None:
    for path, comp in entry.files.items():
        if posixpath.dirname(path) == entry.root and posixpath.basename(path).lower() in CARD_NAMES:
            return comp.bom_ref.value
    return None


def hub_tool_ref(ctx: BomContext, prov: Provenance) -> str:
    """bom-ref of the Hub API as a metadata tool service (added once)."""
    ref = "tool:huggingface-hub-api"
    if not any(s["bom-ref"] == ref for s in ctx.patches.tool_services):
        endpoint = str(prov.get("endpoint") or HF_ENDPOINT).rstrip("/")
        ctx.patches.tool_services.append({"bom-ref": ref, "name": "Hugging Face Hub API",
                                          "endpoints": [f"{endpoint}/api"]})
    return ref


def cite(ctx: BomContext, entry: ModelEntry, field: str, source_ref: str | None, note: str) -> None:
    """Record the source of a field of the model component (1.7 citation or a property)."""
    if ctx.cite_in_properties:
        name = field[len("property:"):] if field.startswith("property:") else field.strip("/")
        entry.component.properties.add(Property(name=f"modelshield:source:{name}", value=note))
    else:
        ctx.patches.citations.append(Citation(entry.ref, field, source_ref, note))


# --- files -----------------------------------------------------------------------------------

def _hub_files(entry: ModelEntry, root_paths: list[str]) -> dict[str, FileRecord]:
    """The Hub's file records that belong to this entry (the deepest root above each)."""
    prov = entry.target.provenance or {}
    records = {str(f.get("path")): f for f in prov.get("files") or [] if isinstance(f, dict) and f.get("path")}
    return {p: r for p, r in records.items() if roots.owner(p, root_paths) == entry.root}


def _add_files(ctx: BomContext, entry: ModelEntry, hub_files: dict[str, FileRecord]) -> None:
    for a in sorted(entry.artefacts.values(), key=lambda a: a.path):
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
        ctx.depend(entry.ref, ref_of(comp))
    for path, hub in sorted(hub_files.items()):
        if path not in entry.files:
            _add_listed_file(ctx, entry, path, hub)


def _add_listed_file(ctx: BomContext, entry: ModelEntry, path: str, hub: FileRecord) -> None:
    """A file the Hub lists but that was not downloaded: named, with only the published LFS hash."""
    comp = Component(type=ComponentType.FILE, name=path, bom_ref=f"{entry.ref}#file:{path}")
    if hub.get("lfs_sha256"):
        comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=str(hub["lfs_sha256"]).lower()))
        comp.properties.add(Property(name="modelshield:hash-source", value="hub-lfs-pointer"))
    # Not read: the BSI flags follow the file name only (modelshield:bsi-basis says so).
    comp.properties.update([Property(name="modelshield:status", value="not-downloaded"),
                            Property(name="bsi:component:filename", value=posixpath.basename(path)),
                            *bsi_flags(tables.file_flags("", path)),
                            Property(name="modelshield:bsi-basis", value="file name (not downloaded)")])
    if hub.get("size") is not None:
        comp.properties.add(Property(name="modelshield:size", value=str(hub["size"])))
    entry.files[path] = comp
    entry.component.components.add(comp)
    ctx.depend(entry.ref, ref_of(comp))


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
             Property(name="modelshield:verdict", value=verdict_word([a], []))]
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
    """BSI flags of a component made of files: executable or structured when any file is (the
    taxonomy: "structured" if any part is); a folder of files is not an archive."""
    flags = {"executable": False, "archive": False, "structured": False}
    for path in entry.files:
        artefact = entry.artefacts.get(path)
        child = tables.file_flags(artefact.format if artefact else "", path)
        flags["executable"] |= child["executable"]
        flags["structured"] |= child["structured"]
    return flags


def _hub_file_properties(comp: Component, hub: FileRecord, sha256: str | None) -> None:
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
