"""Shared helpers of the wide benign corpus tests: build once per session, scan once, summarise."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures import benign_wide  # noqa: E402

from modelshield import Kind, Severity, scan  # noqa: E402

# Observations that are true and harmless on a benign artefact: the verdict stays clean.
TOLERATED_RULES = {
    "MS-ARC-016": "TorchScript archives carry serialized code by design (kind info, severity low)",
}

# False alarms found by this corpus that an allow entry cannot fix (a scanner change is needed);
# each is a strict xfail, so the test fails (XPASS) as soon as the scanner is fixed.
KNOWN_FALSE_ALARMS: dict[str, str] = {
    # Issue 20 fixed the five listed here before: dill's _create_array/_load_type (judged by what
    # they do), bound methods of allowed instances (scipy frozen distributions), legacy full-module
    # persistent ids (resolved to the class) and TorchBind packed parameters (torch.ScriptObject).
}


@dataclass
class Outcome:
    """What the scan of one artefact said, reduced to what the tests assert."""

    verdict: str
    problems: list[str]          # active findings above info (false alarms), one line each
    tolerated: list[str]


def summarise(path: Path) -> Outcome:
    """Scan one artefact (file or folder) in process and keep what matters for a false-alarm test."""
    report = scan(str(path))
    problems, tolerated = [], []
    for _target, artefact, f in report.all_findings():
        if not f.active or (f.severity <= Severity.INFO and f.kind == Kind.INFO):
            continue
        where = artefact.path if artefact else "-"
        line = (f"{Path(where).name} {f.rule_id} {f.severity.name} {f.kind.value} callable={f.callable} "
                f"{f.message[:140]}")
        (tolerated if f.kind == Kind.INFO and f.rule_id in TOLERATED_RULES else problems).append(line)
    return Outcome(report.verdict.value, problems, tolerated)


_CACHE: dict[str, object] = {}


def wide_corpus(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The wide benign corpus, built once per session (families in parallel subprocesses)."""
    if "corpus" not in _CACHE:
        out = tmp_path_factory.mktemp("benign_wide")
        manifests = benign_wide.build_all(out, jobs=3, timeout=300)
        rows = {r["id"]: r for m in manifests.values() for r in m["artefacts"]}
        _CACHE["corpus"] = (out, rows, manifests)
    out, rows, _m = _CACHE["corpus"]
    return out, rows


def manifests() -> dict:
    return _CACHE["corpus"][2]
