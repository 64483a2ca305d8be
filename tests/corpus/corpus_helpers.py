"""Shared helpers of the corpus tests: build the fixture corpora once per session, scan, summarise."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures import benign_models, pickle_attacks  # noqa: E402

from modelshield import Severity  # noqa: E402

_CACHE: dict[str, Path] = {}


def attack_dir(tmp_path_factory) -> Path:
    """The malicious corpus, written once per session."""
    if "attacks" not in _CACHE:
        out = tmp_path_factory.mktemp("attacks")
        pickle_attacks.build_all(out)
        _CACHE["attacks"] = out
    return _CACHE["attacks"]


def benign_dir(tmp_path_factory) -> Path:
    """The benign corpus, written once per session."""
    if "benign" not in _CACHE:
        out = tmp_path_factory.mktemp("benign")
        benign_models.build_all(out)
        _CACHE["benign"] = out
    return _CACHE["benign"]


def describe(report) -> str:
    """One line per finding: enough to read a failing assertion."""
    lines = []
    for _target, artefact, f in report.all_findings():
        where = artefact.path if artefact else "-"
        lines.append(f"{where} {f.rule_id} {f.severity} {f.kind.value} callable={f.callable} {f.message[:160]}")
    return "\n".join(lines) or "(no findings)"


def max_severity(report) -> Severity | None:
    sevs = [f.severity for _t, _a, f in report.all_findings() if f.active]
    return max(sevs) if sevs else None
