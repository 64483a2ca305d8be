"""Loader views of one pickle file: what `pickle.load` runs and what `joblib.load` runs differ.

joblib's Unpickler skips raw array bytes after each `NumpyArrayWrapper` BUILD (or reads a nested
pickle there, for object dtypes); `pickle.load`/`torch.load` parse the very same bytes as opcodes.
A file can therefore hide a payload from one view in the other (a joblib file loaded with
`pickle.load`, or a pickle whose wrapper import is not where a head sniff looks). Both views are
analysed: the joblib view is the primary one whenever the file imports an array wrapper (its
errors and budgets count), the plain view adds its threat findings with well-formed names (raw
array bytes read as opcodes must not produce noise).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any

from ...errors import BudgetExceeded
from ...findings import Artefact, Kind
from .machine import ARRAY_WRAPPERS

SECONDARY_DROPPED = {"MS-PKL-008", "MS-PKL-009", "MS-PKL-010", "MS-PKL-014"}
_WELL_FORMED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _plausible(name: str, rule_id: str) -> bool:
    """A name a real payload could import: denied, or a module that exists on this machine.

    Raw array bytes read as opcodes can re-synchronise onto the real opcodes and pair up stray
    strings into an "import" (`OneHotEncoder.dtype`); those are not reported.
    """
    if rule_id in ("MS-PKL-001", "MS-PKL-003", "MS-PKL-005", "MS-PKL-006"):
        return True
    return importable(name)


def importable(name: str) -> bool:
    """A well-formed dotted name whose top-level module exists here (stdlib, builtin, installed)."""
    if not _WELL_FORMED.fullmatch(name):
        return False
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    try:
        return importlib.util.find_spec(top) is not None  # locates, never imports, a top-level name
    except (ImportError, ValueError):
        return False


def imports_array_wrapper(globals_seen: list[str]) -> bool:
    """True if a joblib array wrapper was imported (the joblib view applies)."""
    return any(g in ARRAY_WRAPPERS for g in globals_seen)


C_STREAM = ("_pickle.c reading a file object without peek (torch.load, pickle.load of a BytesIO) on CPython "
            "< 3.13.15 / 3.14.7: the rest of a frame is dropped when an opcode crosses its end")


FRAME_SKIP = ("a reader that takes a whole FRAME from the file (the pure-Python unpickler behind joblib and dill, "
              "_pickle.c on a BytesIO or on a frame larger than the file's read-ahead): after a STOP inside "
              "a frame, the next load starts at the frame end")


def secondary(run: Any, ctx: Any, flavour: str, view: str | None = None) -> None:
    """Run `run(shadow_ctx, flavour)` on a throw-away context and keep its threat findings.

    `view` names the reading in the findings' evidence (default: the flavour's loader). Names
    read from raw array bytes are kept only when plausible; the C_STREAM and FRAME_SKIP readings
    are what a loader runs (and only crafted files have them), so they keep every name.
    """
    from ...context import ScanContext

    shadow = ScanContext(artefact=Artefact(path=ctx.artefact.path), policy=ctx.policy, budgets=ctx.budgets,
                         rules=ctx.rules, members=list(ctx.members), container_depth=ctx.container_depth,
                         nested_depth=ctx.nested_depth, deadline=ctx.deadline, dispatcher=ctx.dispatcher)
    try:
        run(shadow, flavour)
    except BudgetExceeded as exc:
        if exc.budget == "max_seconds":
            raise
        # Raw array bytes that keep decoding as opcodes for a whole budget are not array data.
        ctx.add("MS-PKL-008", reason=f"the {flavour} view of this file exhausted {exc.budget} "
                f"(limit {exc.limit}); what a {flavour} loader runs past that point is not analysed")
    seen = {(f.rule_id, f.callable, f.location.offset) for f in ctx.artefact.findings}
    for finding in shadow.artefact.findings:
        if finding.kind != Kind.THREAT or finding.rule_id in SECONDARY_DROPPED:
            continue
        name = finding.callable
        if name is not None and view not in (C_STREAM, FRAME_SKIP) and not _plausible(name, finding.rule_id):
            continue
        key = (finding.rule_id, finding.callable, finding.location.offset)
        if key in seen:
            continue
        seen.add(key)
        if view is not None:
            finding.evidence["view"] = view
        else:
            finding.evidence["view"] = f"{flavour} loader (pickle.load / torch.load)" if flavour == "plain" \
                else f"{flavour} loader"
        ctx.artefact.findings.append(finding)
