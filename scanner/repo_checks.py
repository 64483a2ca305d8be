"""Checks across the files of one target (a repo or folder), run after every file was scanned.

- Remote code: every code reference a config made (`properties["hf_config"]["code_refs"]`:
  auto_map, custom_pipelines, modules.json, model_index.json) is looked up among the scanned
  files, with the relative imports transformers would fetch with it. Reached files get their
  behaviours promoted from observations to threats (`analysis.python.promote`), the config's
  MS-HF-001 rises to the worst of them, and a missing file is MS-HF-003.
- Dataset loading scripts named after the repository (`<name>/<name>.py`) are scripts even
  without a recognisable builder class.
- The `custom_code` model-card tag without any code reference in the scan is MS-HF-004.

Called once per target by the engine with the complete `TargetResult`. Reads at most the
README front matter from disk (never artefact content otherwise).
"""
from __future__ import annotations

import os
import posixpath
from typing import Any

from .findings import Artefact, Location, Severity, Status, TargetResult
from .analysis import python as python_code
from .formats import python_file as python_source
from .rules import RuleTable

REMOTE_CODE = "MS-HF-001"
MISSING = "MS-HF-003"
MAX_CARD = 1 << 20


def check_target(target: TargetResult, rules: RuleTable) -> None:
    """Add target-level findings (or raise artefact findings) from cross-file facts."""
    by_path = {_norm(a.path): a for a in target.artefacts}
    any_refs = False
    for cfg in target.artefacts:
        refs = (cfg.properties.get("hf_config") or {}).get("code_refs") or []
        if refs:
            any_refs = True
            _check_config(cfg, refs, by_path, rules)
    _check_dataset_scripts(target, by_path, rules)
    if not any_refs and "custom_code" in _card_tags(target):
        py = sorted(p for p, a in by_path.items() if a.format == python_source.NAME)
        detail = f"{len(py)} Python file(s) in the scan, none referenced" if py else "no Python file in the scan"
        target.findings.append(rules.finding("MS-HF-004", Location(path="."), detail=detail))


def _check_config(cfg: Artefact, refs: list[dict[str, Any]], by_path: dict[str, Artefact],
                  rules: RuleTable) -> None:
    worst: Severity | None = None
    reached_files: list[str] = []
    for ref in refs:
        if ref.get("repo"):
            continue  # MS-HF-002 already reported by hf_config
        folder = ref.get("folder", "")
        candidates = [posixpath.normpath(posixpath.join(folder, c))
                      for c in [ref["file"], *ref.get("alternatives", [])]]
        found = next((c for c in candidates if c in by_path), None)
        source = f"{cfg.path} {ref['source']} {ref['key']}"
        if found is None:
            cfg.findings.append(rules.finding(MISSING, Location(path=cfg.path), source=f"{cfg.path} {ref['source']}",
                                              file=candidates[0], ref=ref["ref"]))
            continue
        for path, via in _closure(found, by_path):
            if path not in by_path:
                cfg.findings.append(rules.finding(MISSING, Location(path=cfg.path),
                                                  source=f"{via} (relative import, fetched with it)",
                                                  file=path, ref=ref["ref"]))
                continue
            art = by_path[path]
            reached_files.append(path)
            sev = _reach(art, rules, source)
            if sev is not None:
                worst = sev if worst is None else max(worst, sev)
    if worst is not None and worst > Severity.MEDIUM:
        _raise_remote_code(cfg, worst, sorted(set(reached_files)), rules)


def _closure(start: str, by_path: dict[str, Artefact]) -> list[tuple[str, str]]:
    """`start` and the files its relative imports pull in (transformers: relative to start's folder)."""
    folder = posixpath.dirname(start)
    out, todo, seen = [], [(start, start)], {start}
    while todo and len(out) < 500:
        path, via = todo.pop(0)
        out.append((path, via))
        art = by_path.get(path)
        if art is None:
            continue
        for mod in (art.properties.get(python_source.NAME) or {}).get("relative_imports", []):
            nxt = posixpath.normpath(posixpath.join(folder, mod + ".py"))
            if nxt not in by_path:  # transformers keeps dots; a package layout uses slashes
                alt = posixpath.normpath(posixpath.join(folder, mod.replace(".", "/") + ".py"))
                nxt = alt if alt in by_path else nxt
            if nxt not in seen:
                seen.add(nxt)
                todo.append((nxt, path))
    return out


def _reach(art: Artefact, rules: RuleTable, reached_by: str) -> Severity | None:
    """Promote a reached file's observations; return its worst threat severity."""
    if art.status is Status.SKIPPED or art.format != python_source.NAME:
        return None
    props = art.properties.setdefault(python_source.NAME, {})
    props.setdefault("reached_by", [])
    if reached_by not in props["reached_by"]:
        props["reached_by"].append(reached_by)
    return python_code.promote(art, rules, reached_by)


def _raise_remote_code(cfg: Artefact, worst: Severity, files: list[str], rules: RuleTable) -> None:
    for i, f in enumerate(cfg.findings):
        if f.rule_id == REMOTE_CODE and f.severity < worst:
            ev = dict(f.evidence, detail=f"; that code reaches {worst} findings ({', '.join(files[:5])})")
            new = rules.finding(REMOTE_CODE, f.location, severity=worst, callable=f.callable, args=f.args, **ev)
            new.suppressed = f.suppressed
            cfg.findings[i] = new


def _check_dataset_scripts(target: TargetResult, by_path: dict[str, Artefact], rules: RuleTable) -> None:
    names = _repo_names(target)
    for path, art in by_path.items():
        if art.format != python_source.NAME:
            continue
        props = art.properties.get(python_source.NAME) or {}
        is_script = props.get("role") == "dataset_script"
        named = "/" not in path and path[:-3] in names
        if not (is_script or named):
            continue
        if not is_script:
            props["role"] = "dataset_script"
            python_code.mark_dataset_script(art, rules, "script named after the repository", line=None)
        for dep, _via in _closure(path, by_path)[1:]:
            if dep in by_path:
                _reach(by_path[dep], rules, f"{path} (dataset script import)")


def _repo_names(target: TargetResult) -> set[str]:
    out: set[str] = set()
    prov = target.provenance or {}
    for key in ("repo_id", "repo", "id"):
        if isinstance(prov.get(key), str):
            out.add(prov[key].rstrip("/").rsplit("/", 1)[-1])
    for value in (target.root, target.target):
        if isinstance(value, str) and value:
            v = value.split("@", 1)[0].rstrip("/\\")
            if v.startswith("hf://"):
                v = v[5:]
            out.add(os.path.basename(v))
    out.discard("")
    return out


def _card_tags(target: TargetResult) -> set[str]:
    """Model-card tags from the README front matter, card properties or Hub provenance."""
    tags: set[str] = set()

    def take(value: Any) -> None:
        if isinstance(value, str):
            tags.add(value)
        elif isinstance(value, list):
            tags.update(t for t in value if isinstance(t, str))

    prov = target.provenance or {}
    for key in ("card_data", "cardData", "card"):
        if isinstance(prov.get(key), dict):
            take(prov[key].get("tags"))
    take(prov.get("tags"))
    for art in target.artefacts:
        if posixpath.basename(_norm(art.path)).lower() != "readme.md":
            continue
        for value in art.properties.values():
            if isinstance(value, dict):
                take(value.get("tags"))
                for nested in ("card_data", "data", "front_matter"):
                    if isinstance(value.get(nested), dict):
                        take(value[nested].get("tags"))
        if "/" not in _norm(art.path) and art.absolute_path:
            take(_front_matter_tags(art.absolute_path))
    return tags


def _front_matter_tags(path: str) -> Any:
    """`tags` of a README's YAML front matter (safe_load of the front matter only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_CARD)
    except OSError:
        return None
    text = head.decode("utf-8", "replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        import yaml
        data = yaml.safe_load(text[3:end])
    except Exception:  # noqa: BLE001 - a broken card only loses its tags
        return None
    return data.get("tags") if isinstance(data, dict) else None


def _norm(path: str) -> str:
    path = path.replace("\\", "/")
    return path[2:] if path.startswith("./") else path
