"""Speed and memory of `modelshield scan` against `sha512sum` on the same files, in the same run.

Builds (once, under bench/out/, git-ignored) a folder of >= 2 GB of real-format model files:
safetensors shards written by the safetensors library, a torch zip checkpoint written by
torch.save, a GGUF file written by gguf's GGUFWriter, an ONNX model with external data and
configs. Then times, alternating, warm-cache runs of:
  - sha512sum over the files (the reference),
  - the floor: SHA-256 and SHA-512 of the same bytes in two threads (what the file pass cannot beat),
  - modelshield scan --format json --no-store (the default result store would make repeats lookups),
  - the same scan from Python with the analysis in worker processes and in-process (workers=0).
Prints median wall times, the ratios against sha512sum, and the scanner's peak RSS.

    python bench/bench_scan.py [--size-gb 2.2] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "model"
FLOOR = """
import hashlib, os, sys, threading
def run(path):
    fd = os.open(path, os.O_RDONLY); h1, h2 = hashlib.sha256(), hashlib.sha512(); off = 0
    import queue; q = queue.Queue(4)
    def w():
        while (c := q.get()) is not None: h2.update(c)
    t = threading.Thread(target=w); t.start()
    while (c := os.pread(fd, 8 << 20, off)):
        off += len(c); q.put(c); h1.update(c)
    q.put(None); t.join(); os.close(fd)
for p in sys.argv[1:]: run(p)
"""


# The same scan and JSON rendering with the analysis in worker processes (the default) or in the
# scanning process (workers=0, as before issue 10): the cost of the hard limits, like for like.
DRIVER = """
import sys
from modelshield import scan
from modelshield.scanner.output import json as json_out
workers = None if sys.argv[2] == "workers" else 0
sys.stdout.writelines(json_out.render_chunks(scan(sys.argv[1], workers=workers)))
"""


def build(size_gb: float) -> list[Path]:
    """Write the benchmark folder once; returns its files."""
    marker = OUT / ".complete"
    if marker.exists() and float(marker.read_text()) >= size_gb:
        return sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != ".complete")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    shard_bytes = 512 << 20
    shards = max(1, int(size_gb * (1 << 30) * 0.8) // shard_bytes)
    for i in range(shards):
        tensors = {f"layer{i}.w{j}": rng.standard_normal((4096, 4096), dtype=np.float32) for j in range(8)}
        save_file(tensors, str(OUT / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"), metadata={"format": "pt"})
    state = {f"block{j}.weight": torch.randn(2048, 2048) for j in range(12)}  # ~200 MB torch zip
    torch.save(state, OUT / "pytorch_model.bin")
    try:
        import gguf

        writer = gguf.GGUFWriter(str(OUT / "model.gguf"), "llama")
        writer.add_name("bench")
        writer.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
        for j in range(4):
            writer.add_tensor(f"blk.{j}.w", rng.standard_normal((4096, 4096), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except ImportError:
        print("gguf not installed: no GGUF file in the benchmark", file=sys.stderr)
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        weight = numpy_helper.from_array(rng.standard_normal((4096, 4096), dtype=np.float32), "W")
        graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "bench",
                                  [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4096])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4096])], [weight])
        onnx.save(helper.make_model(graph), str(OUT / "model.onnx"))
    except ImportError:
        print("onnx not installed: no ONNX file in the benchmark", file=sys.stderr)
    (OUT / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    (OUT / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages[0]['content'] }}"}))
    marker.write_text(str(size_gb))
    return sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != ".complete")


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=2.2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile inputs")
    args = parser.parse_args()
    if args.build_only:
        build(args.size_gb)
        return
    # Build in a child process: children forked from a process that held GBs of tensors would
    # start with its resident set and report it as their peak.
    subprocess.run([sys.executable, __file__, "--build-only", "--size-gb", str(args.size_gb)], check=True)
    files = sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != ".complete")
    total = sum(p.stat().st_size for p in files)
    names = [str(p) for p in files]
    commands = {
        "sha512sum": ["sha512sum", *names],
        "floor (sha256+sha512, 2 threads)": [sys.executable, "-c", FLOOR, *names],
        "modelshield scan": [sys.executable, "-m", "modelshield", "scan", "--format", "json", "--no-store", str(OUT)],
        "scan(), analysis in workers": [sys.executable, "-c", DRIVER, str(OUT), "workers"],
        "scan(), analysis in-process": [sys.executable, "-c", DRIVER, str(OUT), "in-process"],
    }
    timed(commands["sha512sum"])  # warm the page cache
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            results[name].append(timed(cmd))
    ref = statistics.median(w for w, _ in results["sha512sum"])
    print(f"files: {len(files)}, {total / 1e9:.2f} GB, cores: {os.cpu_count()}, runs: {args.runs} (warm cache)")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = max(r for _, r in runs) / 1024
        print(f"{name:<38} {wall:7.2f} s  {total / wall / 1e9:5.2f} GB/s  ratio {wall / ref:4.2f}x  "
              f"peak RSS {rss:6.0f} MB")
    workers = statistics.median(w for w, _ in results["scan(), analysis in workers"])
    inproc = statistics.median(w for w, _ in results["scan(), analysis in-process"])
    print(f"hard limits (worker processes) cost: {workers / inproc:4.2f}x the in-process scan")
    if not args.no_hostile:
        print()
        subprocess.run([sys.executable, str(Path(__file__).with_name("bench_hostile.py"))], check=True)


if __name__ == "__main__":
    main()
