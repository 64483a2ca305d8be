"""Many small files: `modelshield scan` with each file analysed in a worker process (the default)
against the same scan analysed in the scanning process (`workers=0`, the way it ran before
worker processes), in the same run.

Builds (once, under bench/out/small/, git-ignored) 10,000 small real-format files: pickles and
torch-free state dicts written by `pickle`, safetensors written by the `safetensors` library,
.npy arrays written by numpy, config/tokenizer JSON, model cards and text. Then times, alternating,
warm-cache runs of a driver that scans the folder and renders the JSON report, once per mode, and
prints median wall time, CPU time (the process and its workers) and peak RSS.

    python bench/bench_small_files.py [--files 10000] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "small"
DRIVER = """
import sys
from modelshield import scan
from modelshield.scanner.output import json as json_out
report = scan(sys.argv[1], workers=None if sys.argv[2] == "workers" else 0)
report.started = report.finished = ""
sys.stdout.write(json_out.render(report))
"""


def build(n: int) -> None:
    """Write the folder once (10 kinds of small files, round robin)."""
    marker = OUT / ".complete"
    if marker.exists() and marker.read_text() == str(n):
        return
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    for i in range(n):
        kind = i % 10
        sub = OUT / f"d{i // 500:03d}"
        sub.mkdir(exist_ok=True)
        if kind == 0:
            (sub / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [float(x) for x in rng.standard_normal(8)],
                                                         "step": i}, protocol=4))
        elif kind == 1:
            (sub / f"m{i}.safetensors").write_bytes(save({"w": rng.standard_normal((4, 4), dtype=np.float32)}))
        elif kind == 2:
            np.save(sub / f"a{i}.npy", rng.standard_normal(16))
        elif kind == 3:
            (sub / f"config{i}.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "i": i}))
        elif kind == 4:
            (sub / f"README{i}.md").write_text(f"---\nlicense: mit\n---\n# model {i}\n")
        elif kind == 5:
            (sub / f"vocab{i}.txt").write_text("\n".join(f"tok{j}" for j in range(50)))
        elif kind == 6:
            (sub / f"tokenizer_config{i}.json").write_text(json.dumps({"model_max_length": 512}))
        elif kind == 7:
            (sub / f"m{i}.bin").write_bytes(pickle.dumps([i, "x" * 20, (1, 2)], protocol=2))
        elif kind == 8:
            (sub / f"data{i}.csv").write_text("a,b\n1,2\n3,4\n")
        else:
            (sub / f"notes{i}").write_bytes(os.urandom(200))
    marker.write_text(str(n))


def timed(mode: str, report: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (incl. workers) and peak RSS (KiB) of one driver run."""
    start = time.perf_counter()
    with open(report or os.devnull, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(OUT), mode], stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"driver failed: {proc.stderr.read().decode()[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import bench_small_files as b; b.build({args.files})"], check=True)
    results: dict[str, list[tuple[float, float, int]]] = {"in-process": [], "workers": []}
    reports = {mode: OUT.parent / f"small-{mode}.json" for mode in results}
    for mode, path in reports.items():  # warm the page cache; both modes must report the same
        timed(mode, path)
    if reports["in-process"].read_bytes() != reports["workers"].read_bytes():
        raise SystemExit(f"the two modes reported differently: diff {reports['in-process']} {reports['workers']}")
    for _ in range(args.runs):
        for mode in results:
            results[mode].append(timed(mode))
    ref = statistics.median(w for w, _, _ in results["in-process"])
    print(f"{args.files} small files, cores: {os.cpu_count()}, runs: {args.runs} (warm cache), "
          f"load average {os.getloadavg()[0]:.1f}")
    for mode, runs in results.items():
        wall = statistics.median(w for w, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        rss = max(r for _, _, r in runs) / 1024
        print(f"scan, analysis {mode:<11} {wall:6.2f} s  ratio {wall / ref:4.2f}x  CPU {cpu:6.2f} s  "
              f"peak RSS {rss:5.0f} MB")


if __name__ == "__main__":
    main()
