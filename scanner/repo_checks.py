"""Checks across the files of one target (a repo or folder), run after every file was scanned.

- Remote code: every code reference a config made (`properties["hf_config"]["code_refs"]`:
  auto_map, custom_pipelines, modules.json, model_index.json), every file loaders import by path
  (`code_review.entry_points`) and every dataset loading script is looked up among the scanned
  files, with the relative imports transformers would fetch with it. Each reached file goes to
  `code_review.review` (allowlist-first: unreviewed code is MS-PY-020), the config's MS-HF-001
  rises to the worst behaviour found in its files, and a missing file is MS-HF-003.
- Dataset loading scripts: a `datasets` builder subclass, or a script named after the repository
  (`<name>/<name>.py`) even without a recognisable builder class.
- ONNX external data: files a model's `external_data` names are raw tensor bytes (MS-ONNX-007).
- The `custom_code` model-card tag without any code reference in the scan is MS-HF-004.

Called once per target by the engine with the complete `TargetResult`. Reads at most the
README front matter from disk (never artefact content otherwise).
"""
from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, Any

from . import code_review
from .findings import Artefact, FormatName, Kind, Location, Severity, Status, TargetResult
from .analysis import python as python_code
from .formats import python_file as python_source
from .rules import RuleTable

if TYPE_CHECKING:
    from .policy import Policy

REMOTE_CODE = "MS-HF-001"
_UNIDENTIFIED = ("MS-GEN-001", "MS-GEN-002", "MS-PKL-016")  # content no format module recognised
MISSING = "MS-HF-003"
MAX_CARD = 1 << 20


def check_target(target: TargetResult, rules: RuleTable, policy: "Policy | None" = None) -> None:
    """Add target-level findings (or raise artefact findings) from cross-file facts."""
    by_path = {_norm(a.path): a for a in target.artefacts}
    reached: dict[str, list[str]] = {}
    configs: list[tuple[Artefact, list[str]]] = []
    any_refs = False
    for cfg in target.artefacts:
        refs = (cfg.properties.get("hf_config") or {}).get("code_refs") or []
        if refs:
            any_refs = True
            configs.append((cfg, _check_config(cfg, refs, by_path, rules, reached)))
    for path, how in code_review.entry_points(by_path).items():
        _reach_closure(path, how, by_path, reached)
    _check_dataset_scripts(target, by_path, reached)
    _onnx_external_data(by_path, rules)
    for path, hows in reached.items():
        code_review.review(by_path[path], hows, rules, policy)
    for cfg, files in configs:
        worst = max((s for f in files if (s := _worst_behaviour(by_path[f])) is not None), default=None)
        if worst is not None and worst > Severity.MEDIUM:
            _raise_remote_code(cfg, worst, sorted(set(files)), rules)
    if not any_refs and not reached and "custom_code" in _card_tags(target):
        py = sorted(p for p, a in by_path.items() if a.format == python_source.NAME)
        detail = f"{len(py)} Python file(s) in the scan, none referenced" if py else "no Python file in the scan"
        target.findings.append(rules.finding("MS-HF-004", Location(path="."), detail=detail))


def _check_config(cfg: Artefact, refs: list[dict[str, Any]], by_path: dict[str, Artefact],
                  rules: RuleTable, reached: dict[str, list[str]]) -> list[str]:
    """Look the config's code references up; record what they reach; return the reached files."""
    files: list[str] = []
    for ref in refs:
        if ref.get("repo"):
            continue  # MS-HF-002 already reported by hf_config
        folder = ref.get("folder", "")
        candidates = [posixpath.normpath(posixpath.join(folder, c))
                      for c in [ref["file"], *ref.get("alternatives", [])]]
        found = next((c for c in candidates if c in by_path), None)
        source = f"{cfg.path} {ref['source']} {ref['key']}"
        if found is None:
            if not ref.get("optional"):
                cfg.findings.append(rules.finding(MISSING, Location(path=cfg.path),
                                                  source=f"{cfg.path} {ref['source']}", file=candidates[0],
                                                  ref=ref["ref"]))
            continue
        if ref.get("optional") and not any(f.rule_id == REMOTE_CODE for f in cfg.findings):
            cfg.findings.append(rules.finding(REMOTE_CODE, Location(path=cfg.path), source=source,
                                              entries=f"{ref['key']} -> {ref['ref']}", files=found, detail="",
                                              refs=[{k: ref[k] for k in ("key", "ref", "file")}]))
        for path, via in code_review.relative_closure(found, by_path):
            if path not in by_path:
                cfg.findings.append(rules.finding(MISSING, Location(path=cfg.path),
                                                  source=f"{via} (relative import, fetched with it)",
                                                  file=path, ref=ref["ref"]))
                continue
            # imported as Python whatever the content sniffed as: reviewed all the same
            reached.setdefault(path, []).append(source if path == found else f"{source} via {via}")
            files.append(path)
    return files


def _reach_closure(start: str, how: str, by_path: dict[str, Artefact], reached: dict[str, list[str]]) -> None:
    for path, via in code_review.relative_closure(start, by_path):
        if path in by_path:
            reached.setdefault(path, []).append(how if path == start else f"{how} via {via}")


def _worst_behaviour(art: Artefact) -> Severity | None:
    sev = [f.severity for f in art.findings if f.kind is Kind.THREAT and f.active
           and f.rule_id not in (python_code.DATASET_SCRIPT, code_review.UNREVIEWED)]
    return max(sev) if sev else None


def _raise_remote_code(cfg: Artefact, worst: Severity, files: list[str], rules: RuleTable) -> None:
    for i, f in enumerate(cfg.findings):
        if f.rule_id == REMOTE_CODE and f.severity < worst:
            ev = dict(f.evidence, detail=f"; that code reaches {worst} findings ({', '.join(files[:5])})")
            new = rules.finding(REMOTE_CODE, f.location, severity=worst, callable=f.callable, args=f.args, **ev)
            new.suppressed = f.suppressed
            cfg.findings[i] = new


def _check_dataset_scripts(target: TargetResult, by_path: dict[str, Artefact],
                           reached: dict[str, list[str]]) -> None:
    names = _repo_names(target)
    for path, art in by_path.items():
        if art.format != python_source.NAME:
            continue
        props = art.properties.get("python_source", {})
        is_script = props.get("role") == "dataset_script"
        named = "/" not in path and path[:-3] in names
        if not (is_script or named):
            continue
        props["role"] = "dataset_script"
        _reach_closure(path, "datasets.load_dataset (loading script)", by_path, reached)


def _onnx_external_data(by_path: dict[str, Artefact], rules: RuleTable) -> None:
    """Files an ONNX model names in `external_data` are raw tensor bytes, whatever their name
    (`weights.bin`, `model.onnx_data`): onnxruntime reads them as such and nothing else. A file no
    format module recognised (only then) is inventoried as that model's data instead of
    inconclusive; one that is also something a loader executes (a pickle at offset 0...) keeps
    that analysis."""
    for model in list(by_path.values()):
        entries = (model.properties.get("onnx") or {}).get("external_data") or []
        folder = posixpath.dirname(_norm(model.path))
        for entry in entries:
            location = str(entry.get("location", "")).replace("\\", "/")
            path = posixpath.normpath(posixpath.join(folder, location))
            data = by_path.get(path)
            if data is None or data is model:
                continue
            claims = data.properties.setdefault("onnx_external_data", {"models": [], "tensors": 0})
            if model.path not in claims["models"]:
                claims["models"].append(model.path)
                claims["tensors"] += int(entry.get("tensors", 0))
            if data.format != "unknown" or data.members:
                continue
            unidentified = [f for f in data.findings if f.rule_id in _UNIDENTIFIED]
            if not unidentified:
                continue
            data.findings[:] = [f for f in data.findings if f.rule_id not in _UNIDENTIFIED]
            data.format = FormatName.ONNX_EXTERNAL_DATA
            data.status = Status.INVENTORIED
            data.findings.append(rules.finding("MS-ONNX-007", Location(path=data.path), model=model.path,
                                               tensors=claims["tensors"]))


def _repo_names(target: TargetResult) -> set[str]:
    out: set[str] = set()
    prov = target.provenance or {}
    repo_id = prov.get("repo_id")
    if isinstance(repo_id, str):
        out.add(repo_id.rstrip("/").rsplit("/", 1)[-1])
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
    card_data = prov.get("card_data")
    if isinstance(card_data, dict):
        take(card_data.get("tags"))
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
