"""Prove fixtures run under their real loaders: `real_loaders.py` in one throw-away process per family."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Protocol

SCRIPT = Path(__file__).resolve().with_name("real_loaders.py")


class Case(Protocol):
    id: str
    file: str
    loader: str


def run_real_loaders(cases: Iterable[Case], corpus: Path, scratch: Path,
                     env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{case id: {"marker": created?, "error": what the loader raised}} for each case's file in `corpus`;
    markers are written under `scratch`, the loaders' working directory."""
    cases = list(cases)
    results: dict[str, dict[str, Any]] = {}
    for family in sorted({c.loader for c in cases}):
        mine = [c for c in cases if c.loader == family]
        items = [[str(corpus / c.file), str(scratch / f"{c.id}.marker")] for c in mine]
        proc = subprocess.run([sys.executable, str(SCRIPT), family, json.dumps(items)], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        for c in mine:
            results[c.id] = out[str(corpus / c.file)]
    return results
