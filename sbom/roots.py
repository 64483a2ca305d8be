"""Split one scanned target into model roots: one ML-BOM model component per root.

A folder is a *root candidate* when it directly holds a model card with front matter, a model
config, or weight files (`data/model_roots.toml`). Candidates are taken shallowest first:
- a candidate below no root becomes a root, except a folder whose only marker is loose weight
  files while model folders lie below it (those weights are stray files of the target);
- a candidate inside a root is part of that root (sentence-transformers module folders such as
  `1_Pooling/`, export folders such as `onnx/`, diffusers pipeline components, configs or weights
  alone) unless it holds weights together with its own config or card (a checkpoint folder):
  then it is a model of its own.
Every file belongs to the deepest root above it; files below no root are *strays*. A target
without any candidate, a single file and a dataset repository are one root covering everything.
Only the report is read (paths, formats, parsed properties); artefacts are never re-opened.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from modelshield.scanner.findings import Artefact, TargetResult
from . import tables


@dataclass
class Root:
    """One model: `path` relative to the target ("" = the target itself) and its artefacts."""

    path: str
    artefacts: list[Artefact] = field(default_factory=list)


@dataclass
class Layout:
    roots: list[Root]
    strays: list[Artefact]  # files below no root


@dataclass
class _Markers:
    card: bool = False
    config: bool = False
    weights: bool = False
    pipeline: bool = False  # diffusers model_index.json: sub-folders are its components
    modules: set[str] = field(default_factory=set)  # sentence-transformers module paths

    @property
    def candidate(self) -> bool:
        return self.card or self.config or self.weights


def split(target: TargetResult) -> Layout:
    """The model roots of `target` and its stray files."""
    arts = sorted(target.artefacts, key=lambda a: a.path)
    prov = target.provenance or {}
    if prov.get("repo_type") == "dataset" or len(arts) <= 1:
        return Layout([Root("", arts)], [])
    markers = _markers(arts)
    roots = _choose(markers, hub=bool(prov.get("repo_id")))
    if not roots:
        return Layout([Root("", arts)], [])
    by_path = {r: Root(r) for r in roots}
    strays: list[Artefact] = []
    for a in arts:
        found = owner(a.path, roots)
        (by_path[found].artefacts if found is not None else strays).append(a)
    return Layout([by_path[r] for r in sorted(by_path)], strays)


def _folder(path: str) -> str:
    return posixpath.dirname(path.replace("\\", "/"))


def _ancestors(folder: str) -> list[str]:
    """`a/b/c` -> ["a/b", "a", ""] (nearest first)."""
    out = []
    while folder:
        folder = posixpath.dirname(folder)
        out.append(folder)
    return out


def owner(path: str, roots: list[str]) -> str | None:
    """The deepest of `roots` holding the file at `path`, None when no root does."""
    folder = _folder(path)
    for candidate in [folder, *_ancestors(folder)]:
        if candidate in roots:
            return candidate
    return None


def _markers(arts: list[Artefact]) -> dict[str, _Markers]:
    table = tables.load("model_roots")
    weights, configs = set(table["weight_formats"]), set(table["config_names"])
    out: dict[str, _Markers] = {}
    for a in arts:
        folder = _folder(a.path)
        mark = out.setdefault(folder, _Markers())
        base = posixpath.basename(a.path).lower()
        card = a.properties.get("model_card")
        if isinstance(card, dict) and card.get("card_data"):
            mark.card = True
        mark.config |= base in configs
        mark.weights |= a.format in weights
        mark.pipeline |= base == "model_index.json"
        facts = a.properties.get("hf_config")
        if base == "modules.json" and isinstance(facts, dict):
            mark.modules |= {posixpath.normpath(posixpath.join(folder, str(m["path"])))
                             for m in facts.get("modules") or [] if isinstance(m, dict) and m.get("path")}
    return out


def _part_of_parent(folder: str, parent: str, markers: dict[str, _Markers]) -> bool:
    """A module, export or pipeline-component folder of `parent` (or anything below one)."""
    table = tables.load("model_roots")
    pattern = re.compile(table["module_folder_pattern"])
    exports = set(table["export_folders"])
    rel = folder[len(parent):].lstrip("/") if parent else folder
    first = rel.split("/", 1)[0]
    own = markers.get(parent, _Markers())
    if own.pipeline or first.lower() in exports or pattern.match(first):
        return True
    return (posixpath.join(parent, first) if parent else first) in own.modules


def _choose(markers: dict[str, _Markers], hub: bool) -> list[str]:
    candidates = sorted((f for f, m in markers.items() if m.candidate), key=lambda f: (f.count("/"), f))
    roots: list[str] = [""] if hub else []
    for folder in candidates:
        if folder in roots:
            continue
        parent = next((p for p in _ancestors(folder) if p in roots), None) if folder else None
        mark = markers[folder]
        if parent is None:
            if mark.weights and not (mark.card or mark.config) and _has_model_below(folder, markers):
                continue  # loose weights beside model folders: strays
            roots.append(folder)
        elif not _part_of_parent(folder, parent, markers) and mark.weights and (mark.config or mark.card):
            roots.append(folder)
    return roots


def _has_model_below(folder: str, markers: dict[str, _Markers]) -> bool:
    prefix = folder + "/" if folder else ""
    return any(f != folder and f.startswith(prefix) and m.candidate and not _part_of_parent(f, folder, markers)
               for f, m in markers.items())
