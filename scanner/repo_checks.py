"""Checks across the files of one target (a repo or folder), run after every file was scanned.

E.g. Hugging Face `auto_map` entries pointing at remote-code files, dataset loading scripts.
Called once per target by the engine with the complete `TargetResult`.
"""
from __future__ import annotations

from .findings import TargetResult
from .rules import RuleTable


def check_target(target: TargetResult, rules: RuleTable) -> None:
    """Add target-level findings (or raise artefact findings) from cross-file facts."""
    return None
