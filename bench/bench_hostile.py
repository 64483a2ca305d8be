"""The hostile inputs of issue 10 at the size they were found: wall time, peak RSS, verdict.

Builds each input (fixtures/hostile.py at scale 1, once, under bench/out/hostile/) and scans it with
`modelshield scan --format json` and the default policy, one process per input, printing the wall
time, the peak resident size of the whole process tree (the CLI, its zygote and workers: wait4) and
how the scan ended. Goal: every input ends, under 300 MB, with a finding or inconclusive.

    python bench/bench_hostile.py [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures import hostile  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "hostile"
FIXED = {
    "zip directory at 0": hostile.zip_directory_at_zero,
    "zip overlapping entry": hostile.zip_overlapping,
    "tar after bad checksum": hostile.tar_after_bad_checksum,
}


def inputs() -> dict[str, Path]:
    """name -> path, building what is missing."""
    OUT.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, path in hostile.h5_mutants().items():
        out[name] = path
    for name, build in {**hostile.SCALED, **FIXED}.items():
        folder = OUT / name.replace(" ", "-")
        marker = folder / ".complete"
        if not marker.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            built = build(folder)
            marker.write_text(built.name)
        out[name] = folder / marker.read_text()
    return out


def run(path: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB) of the process tree, exit code, what the report says."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "modelshield", "scan", "--format", "json", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    peak = _peak_of_children()
    if b"Traceback" in stderr:
        return wall, peak, proc.returncode, "TRACEBACK " + stderr.decode(errors="replace")[-300:]
    try:
        report = json.loads(stdout)
    except ValueError:
        return wall, peak, proc.returncode, "no JSON report"
    rules: dict[str, int] = {}
    for target in report["targets"]:
        for artefact in target["artefacts"]:
            for f in artefact["findings"]:
                if f["severity"] != "info":
                    rules[f["rule_id"]] = rules.get(f["rule_id"], 0) + f.get("occurrences", 1)
    top = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(rules.items())[:4])
    return wall, peak, proc.returncode, f"{report['verdict']}: {top}"


def _peak_of_children() -> float:
    """Peak RSS (MB) of the process tree just reaped: run in a fresh child so the maximum is its own."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child mode: one input, so that RUSAGE_CHILDREN holds only this scan
        print(json.dumps(run(Path(args.one))))
        return
    todo = {k: v for k, v in inputs().items() if not args.only or k in args.only}
    print(f"hostile inputs (issue 10), default policy, one scan each; cores: {os.cpu_count()}")
    print(f"{'input':<26} {'size':>10} {'wall':>8} {'peak RSS':>9}  exit  report")
    for name, path in todo.items():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        proc = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True)
        wall, peak, code, what = json.loads(proc.stdout)
        flag = "" if peak < 300 else "  OVER 300 MB"
        print(f"{name:<26} {size / 1e6:>8.1f}MB {wall:>7.1f}s {peak:>7.0f}MB  {code:>4}  {what[:90]}{flag}")


if __name__ == "__main__":
    main()
