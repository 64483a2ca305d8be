"""Object-heavy pickles: modelshield's pickle VM against `pickle.load`, `pickletools.genops` and
picklescan on the same bytes, in the same run (issue 17).

Builds (once, under bench/out/pickle/, git-ignored):
  - a 15 MB and a 61 MB protocol-4 pickle of a list of 300k / 1.2M small dicts (`pickle.dumps`),
  - a ~5 MB object `.npy` (numpy object array of strings, floats, tuples),
  - a ~500 MB pickle of the same list-of-dicts shape, streamed to disk by a writer that emits the
    opcodes `pickle.dumps` emits for that shape (checked against `pickle.loads` on a small one).
Then times each tool in its own process (peak RSS from wait4) and prints one table with the
ratios against `pickle.load` and `pickletools.genops`:

  ours        `modelshield scan FILE --format json` (hashing included), and the VM alone
              (`analyse_pickle` on the file, no hashing) for the opcode throughput
  pickle.load the C unpickler building the real objects (the floor, not a scanner)
  genops      `for _ in pickletools.genops(f)`: the simplest pure-Python walk of the opcodes
  picklescan  `picklescan -p FILE`, when installed

The 500 MB pickle runs twice: with the default budgets (it ends inconclusive on max_memo) and
with a policy raising max_opcodes/max_memo so that the whole file is walked.

    python bench/bench_pickle.py [--skip-500] [--only NAME] [--no-picklescan]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "pickle"
FRAME_TARGET = 64 * 1024


def row(i: int) -> dict:
    """One record of the list-of-dicts pickles (13 opcodes, ~50 bytes each in protocol 4)."""
    return {"id": i, "name": f"user{i:07d}@example.org", "score": i * 0.5, "ok": i % 3 != 0}


class _FramedWriter:
    """Protocol-4 framing as `_pickle.c` does it: a FRAME committed at object boundaries >= 64 KiB."""

    def __init__(self, f) -> None:
        self.f = f
        self.cur = bytearray()

    def write(self, data: bytes) -> None:
        self.cur += data

    def boundary(self) -> None:
        if len(self.cur) >= FRAME_TARGET:
            self.commit()

    def commit(self) -> None:
        if self.cur:
            self.f.write(b"\x95" + struct.pack("<Q", len(self.cur)) + self.cur)
            self.cur = bytearray()


def write_rows(f, count: int) -> None:
    """Stream `pickle.dumps([row(i) for i in range(count)], 4)`'s opcodes without building the list."""
    w = _FramedWriter(f)
    f.write(b"\x80\x04")
    w.write(b"]\x94")  # EMPTY_LIST MEMOIZE (memo 0)
    memo = 1
    keys: dict[str, int] = {}

    def key(name: str) -> bytes:
        nonlocal memo
        if name in keys:
            idx = keys[name]
            return b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)
        keys[name] = memo
        memo += 1
        raw = name.encode()
        return b"\x8c" + bytes([len(raw)]) + raw + b"\x94"

    def index(idx: int) -> bytes:
        return b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)

    batch = 1000
    for start in range(0, count, batch):
        n = min(batch, count - start)
        w.write(b"(")  # MARK (APPENDS batch)
        for i in range(start, start + n):
            r = row(i)
            w.write(b"}\x94")  # EMPTY_DICT MEMOIZE
            memo += 1
            w.write(b"(")
            w.write(key("id"))
            w.write(b"J" + struct.pack("<i", r["id"]) if r["id"] >= 256 else b"K" + bytes([r["id"]]))
            w.write(key("name"))
            raw = r["name"].encode()
            w.write(b"\x8c" + bytes([len(raw)]) + raw + b"\x94")
            memo += 1
            w.write(key("score"))
            w.write(b"G" + struct.pack(">d", r["score"]))
            w.write(key("ok"))
            w.write(b"\x88" if r["ok"] else b"\x89")
            w.write(b"u")  # SETITEMS
            w.boundary()
        w.write(b"e")  # APPENDS
        w.boundary()
    w.write(b".")
    w.commit()
    _ = index  # kept for readability of the memo layout above


def build(skip_500: bool) -> dict[str, Path]:
    """Write the benchmark files once; returns name -> path."""
    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "list of 300k dicts": OUT / "dicts_300k.pkl",
        "list of 1.2M dicts": OUT / "dicts_1200k.pkl",
        "object .npy": OUT / "objects.npy",
    }
    if not skip_500:
        files["500 MB list of dicts"] = OUT / "dicts_500mb.pkl"
    for count, path in ((300_000, files["list of 300k dicts"]), (1_200_000, files["list of 1.2M dicts"])):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps([row(i) for i in range(count)], protocol=4))
            tmp.replace(path)
    npy = files["object .npy"]
    if not npy.exists():
        import numpy as np

        items = []
        for i in range(60_000):
            items += [f"token-{i}", i * 0.1, (i, f"t{i}")]
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        with open(npy.with_suffix(".tmp"), "wb") as f:
            np.save(f, arr, allow_pickle=True)
        npy.with_suffix(".tmp").replace(npy)
    # the streaming writer must say what pickle.dumps says (same value, same opcode shape)
    probe = io.BytesIO()
    write_rows(probe, 5000)
    assert pickle.loads(probe.getvalue()) == [row(i) for i in range(5000)], "writer broken"
    if not skip_500:
        big = files["500 MB list of dicts"]
        if not big.exists():
            with open(big.with_suffix(".tmp"), "wb") as f:
                write_rows(f, 10_000_000)
            big.with_suffix(".tmp").replace(big)
    return files


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, stdout) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out_chunks = []
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
        out_chunks.append(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode, b"".join(out_chunks).decode(errors="replace")


GENOPS = """
import pickletools, sys
n = 0
with open(sys.argv[1], 'rb') as f:
    for _ in pickletools.genops(f):
        n += 1
print(n)
"""
PICKLE_LOAD = """
import pickle, sys
import numpy
with open(sys.argv[1], 'rb') as f:
    if sys.argv[1].endswith('.npy'):
        numpy.load(f, allow_pickle=True)
    else:
        pickle.load(f)
"""
VM_ONLY = """
import sys, json, time
from modelshield.scanner.blob import FileBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.policy import Policy
from modelshield.scanner.analysis.picklevm import analyse_pickle
policy = Policy.load(sys.argv[2]) if len(sys.argv) > 2 else Policy.default()
art = Artefact(path=sys.argv[1])
ctx = ScanContext(artefact=art, policy=policy, dispatcher=analyse_blob, budgets=policy.budgets)
blob = FileBlob(sys.argv[1])
start = 0
if sys.argv[1].endswith('.npy'):
    head = blob.read_at(0, 10)
    start = 10 + int.from_bytes(head[8:10], 'little')
t0 = time.perf_counter()
try:
    analyse_pickle(blob, ctx, start=start, flavour='numpy' if start else 'plain')
    outcome = 'complete'
except Exception as exc:
    outcome = type(exc).__name__ + ': ' + str(exc)
print(json.dumps({'seconds': time.perf_counter() - t0, 'outcome': outcome,
                  'findings': sorted({f.rule_id for f in art.findings})}))
"""


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def fmt_mb(x: int | None) -> str:
    return "-" if x is None else f"{x / 1e6:.0f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-500", action="store_true", help="leave out the 500 MB pickle")
    ap.add_argument("--only", help="run only the file whose name contains this")
    ap.add_argument("--no-picklescan", action="store_true")
    args = ap.parse_args()
    files = build(args.skip_500)
    py = sys.executable
    picklescan = None if args.no_picklescan else shutil.which("picklescan")
    raised = Path(tempfile.mkdtemp()) / "raised.toml"
    raised.write_text("[budgets]\nmax_opcodes = 1000000000\nmax_memo = 100000000\nmax_seconds = 3600\n")
    rows_out = []
    for name, path in files.items():
        if args.only and args.only not in name:
            continue
        size = path.stat().st_size
        t_gen, m_gen, _, out = run([py, "-c", GENOPS, str(path)])
        opcodes = int(out.strip() or 0)
        t_load, m_load, _, _ = run([py, "-c", PICKLE_LOAD, str(path)]) if size < 200e6 else (None, None, 0, "")
        policies = [("default", None)] + ([("raised budgets", str(raised))] if size > 200e6 else [])
        for label, pol in policies:
            extra = ["--policy", str(pol)] if pol else ["--no-policy"] if False else []
            t_ms, m_ms, rc, _ = run([py, "-m", "modelshield", "scan", str(path), "--format", "json",
                                     "-o", os.devnull, *extra])
            _, m_vm, _, vm_out = run([py, "-c", VM_ONLY, str(path), *([pol] if pol else [])])
            vm = json.loads(vm_out.strip().splitlines()[-1]) if vm_out.strip() else {}
            t_ps = m_ps = None
            if picklescan and label == "default" and size < 200e6:
                t_ps, m_ps, _, _ = run([picklescan, "-p", str(path)])
            rows_out.append(dict(file=f"{name} ({label})" if len(policies) > 1 else name, size=size,
                                 opcodes=opcodes, load=t_load, load_rss=m_load, genops=t_gen, genops_rss=m_gen,
                                 ours=t_ms, ours_rss=m_ms, exit=rc, vm=vm.get("seconds"), vm_rss=m_vm,
                                 vm_outcome=vm.get("outcome"), picklescan=t_ps, picklescan_rss=m_ps))
    print()
    print("| file | size | opcodes | `pickle.load` (C) | `pickletools.genops` | modelshield scan | VM alone "
          "| VM opcodes/s | VM vs genops | picklescan |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows_out:
        rate = r["opcodes"] / r["vm"] if r["vm"] else None
        ratio = r["genops"] / r["vm"] if r["vm"] else None
        print(f"| {r['file']} | {r['size'] / 1e6:.1f} MB | {r['opcodes'] / 1e6:.1f} M "
              f"| {fmt_s(r['load'])}, {fmt_mb(r['load_rss'])} | {fmt_s(r['genops'])} "
              f"| {fmt_s(r['ours'])}, {fmt_mb(r['ours_rss'])} (exit {r['exit']}) "
              f"| {fmt_s(r['vm'])}, {fmt_mb(r['vm_rss'])} | {(rate or 0) / 1e6:.2f} M/s "
              f"| **{(ratio or 0):.2f}x** | {fmt_s(r['picklescan'])}, {fmt_mb(r['picklescan_rss'])} |")
    print()
    for r in rows_out:
        print(f"{r['file']}: VM outcome {r['vm_outcome']}")
    worst = max(r["ours_rss"] for r in rows_out)
    print(f"\npeak RSS of modelshield scan over all files: {worst / 1e6:.0f} MB (goal < 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
