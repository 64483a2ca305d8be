"""The VM's fast loop and its reference path read every red-team fixture the same way (findings)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redteam_attacks import ATTACKS  # noqa: E402

from modelshield import scan
from modelshield.scanner.analysis.picklevm.machine import Machine


def _findings(folder: Path) -> dict[str, set]:
    report = scan(str(folder))
    out: dict[str, set] = {}
    for _, art, f in report.all_findings():
        out.setdefault(Path(art.path).name, set()).add((f.rule_id, f.callable, f.location.offset))
    return out


def test_fast_and_reference_paths_agree(tmp_path):
    for a in ATTACKS:
        (tmp_path / a.file).write_bytes(a.build())
    fast = _findings(tmp_path)
    saved = Machine.FAST
    Machine.FAST = False
    try:
        reference = _findings(tmp_path)
    finally:
        Machine.FAST = saved
    assert fast == reference
