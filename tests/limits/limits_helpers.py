"""Shared by the hard-limit tests: run the CLI measuring its peak memory, policies with low budgets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fixtures import hostile  # noqa: E402,F401 - re-exported for the tests

CAP_MB = 300  # the bound for every hostile input: peak RSS of any scanning process


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float  # largest resident set of the CLI or any process it waited for (workers, zygote)

    def report(self) -> dict:
        return json.loads(self.stdout)

    def artefacts(self) -> list[dict]:
        return [a for t in self.report()["targets"] for a in t["artefacts"]]

    def rules(self) -> set[str]:
        return {f["rule_id"] for a in self.artefacts() for f in a["findings"]}


def scan_measured(*args: str, timeout: float = 120, **kw) -> Run:
    """`modelshield scan --format json ARGS` in a child whose peak RSS is measured exactly.

    Each call runs in a fresh intermediate process, so RUSAGE_CHILDREN there holds only this scan.
    """
    code = (
        "import json, os, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run([sys.executable, '-m', 'modelshield', 'scan', '--format', 'json', *sys.argv[1:]],"
        " capture_output=True)\n"
        "json.dump({'code': p.returncode, 'stdout': p.stdout.decode('utf-8', 'replace'),"
        " 'stderr': p.stderr.decode('utf-8', 'replace'), 'seconds': time.monotonic() - t,"
        " 'peak': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}, sys.stdout)\n"
    )
    env = {**os.environ, **kw.pop("env", {})}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    return Run(data["code"], data["stdout"], data["stderr"], data["seconds"], data["peak"])


def policy(folder: Path, **budgets: float) -> Path:
    """A policy file with these [budgets]."""
    path = folder / "limits-policy.toml"
    path.write_text("[budgets]\n" + "".join(f"{k} = {v}\n" for k, v in budgets.items()))
    return path


def assert_bounded(run: Run, seconds: float) -> None:
    """No traceback, a defined exit code, within time and the memory bound."""
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.code in (0, 1, 2), run.stderr[-2000:]
    assert run.seconds < seconds, f"took {run.seconds:.1f} s"
    assert run.peak_mb < CAP_MB, f"peak RSS {run.peak_mb:.0f} MB"
