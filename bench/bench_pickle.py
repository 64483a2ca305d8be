"""Object-heavy pickles: modelshield's pickle VM against `pickle.load`, `pickletools.genops`,
picklescan and the VM as it was before issue 17, on the same bytes, in the same run.

Builds (once, under bench/out/pickle/, git-ignored, in a child process):
  - a 15 MB and a 61 MB protocol-4 pickle of a list of 300k / 1.2M small dicts (`pickle.dumps`),
  - a ~5 MB object `.npy` (numpy object array of strings, floats and tuples, `numpy.save`),
  - a list of 200k (datetime, OrderedDict) pairs (objects: REDUCE/SETITEM per item),
  - a ~500 MB pickle of the list-of-dicts shape, streamed to disk by a writer that emits the
    opcodes `pickle.dumps` emits for it (checked against `pickle.loads` on a small one).
Each tool runs in its own process (peak RSS from wait4):

  scan        `modelshield scan FILE --format json` (hashing, sniffing, reporting included)
  VM          `analyse_pickle` alone, CPU seconds after a warm-up (policy tables loaded)
  VM before   the same with the VM of BASELINE_REF (main before issue 17, extracted with
              `git archive`), for the speed-up
  pickle.load the C unpickler building the real objects (the floor; not a scanner)
  genops      `for _ in pickletools.genops(f)`: the simplest pure-Python walk of the opcodes
  picklescan  `picklescan -p FILE`, when installed

The 500 MB pickle runs with the default budgets (it ends inconclusive on max_memo: memory must
stay bounded until then) and with a policy raising max_opcodes/max_memo (the whole file walked).
CPU seconds are used for the ratios because the machine is shared (wall times vary with load).

    python bench/bench_pickle.py [--skip-500] [--only NAME] [--no-picklescan] [--baseline-ref REF]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "pickle"
BASELINE_REF = "b2471aa"  # main before issue 17 (the VM that kept every value)
FRAME_TARGET = 64 * 1024
FILES = {
    "list of 300k dicts": "dicts_300k.pkl",
    "list of 1.2M dicts": "dicts_1200k.pkl",
    "object .npy": "objects.npy",
    "200k (datetime, OrderedDict)": "objects_200k.pkl",
    "500 MB list of dicts": "dicts_500mb.pkl",
}


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

    for start in range(0, count, 1000):
        w.write(b"(")  # MARK (APPENDS batch of 1000, as the pickler batches)
        for i in range(start, min(start + 1000, count)):
            r = row(i)
            w.write(b"}\x94(")  # EMPTY_DICT MEMOIZE MARK
            memo += 1
            w.write(key("id") + (b"J" + struct.pack("<i", r["id"]) if r["id"] >= 256 else b"K" + bytes([r["id"]])))
            raw = r["name"].encode()
            w.write(key("name") + b"\x8c" + bytes([len(raw)]) + raw + b"\x94")
            memo += 1
            w.write(key("score") + b"G" + struct.pack(">d", r["score"]))
            w.write(key("ok") + (b"\x88" if r["ok"] else b"\x89") + b"u")  # ... SETITEMS
            w.boundary()
        w.write(b"e")  # APPENDS
        w.boundary()
    w.write(b".")
    w.commit()


def build(skip_500: bool) -> None:
    """Write the benchmark files once (run in a child: the lists built here take ~600 MB)."""
    import collections
    import datetime

    import numpy as np

    OUT.mkdir(parents=True, exist_ok=True)
    for count, name in ((300_000, FILES["list of 300k dicts"]), (1_200_000, FILES["list of 1.2M dicts"])):
        if not (OUT / name).exists():
            (OUT / "tmp").write_bytes(pickle.dumps([row(i) for i in range(count)], protocol=4))
            (OUT / "tmp").replace(OUT / name)
    if not (OUT / FILES["object .npy"]).exists():
        items: list = []
        for i in range(140_000):
            items += [f"token-{i}", i * 0.1, (i, f"t{i}")]
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        with open(OUT / "tmp", "wb") as f:
            np.save(f, arr, allow_pickle=True)
        (OUT / "tmp").replace(OUT / FILES["object .npy"])
    if not (OUT / FILES["200k (datetime, OrderedDict)"]).exists():
        base = datetime.datetime(2024, 1, 1)
        pairs = [(base + datetime.timedelta(seconds=i), collections.OrderedDict(a=i)) for i in range(200_000)]
        (OUT / "tmp").write_bytes(pickle.dumps(pairs, protocol=4))
        (OUT / "tmp").replace(OUT / FILES["200k (datetime, OrderedDict)"])
    probe = io.BytesIO()
    write_rows(probe, 5000)
    assert pickle.loads(probe.getvalue()) == [row(i) for i in range(5000)], "writer broken"
    if not skip_500 and not (OUT / FILES["500 MB list of dicts"]).exists():
        with open(OUT / "tmp", "wb") as f:
            write_rows(f, 10_000_000)
        (OUT / "tmp").replace(OUT / FILES["500 MB list of dicts"])


def baseline_tree(ref: str) -> Path | None:
    """The package as of `ref` (git archive), for the 'VM before' column; None outside a git checkout."""
    dest = OUT.parent / f"baseline-{ref}"
    if (dest / "modelshield").is_dir():
        return dest
    try:
        data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "modelshield", "scanner", "sbom", "advisories"],
                              check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, stdout) of one process (RSS from wait4)."""
    import time

    t0 = time.perf_counter()
    # cwd OUT, not ROOT: `python -c` puts the cwd first on sys.path (the baseline would import this tree)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=str(OUT))
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), out.decode()


# Children print one JSON line: {"cpu": seconds, ...}. They measure CPU time (process_time).
GENOPS = """
import json, pickletools, sys, time
f = open(sys.argv[1], 'rb')
if sys.argv[1].endswith('.npy'):
    head = f.read(10); f.seek(10 + int.from_bytes(head[8:10], 'little'))
t = time.process_time(); n = 0
for _ in pickletools.genops(f):
    n += 1
print(json.dumps({'cpu': time.process_time() - t, 'opcodes': n}))
"""
PICKLE_LOAD = """
import json, pickle, sys, time
import numpy
t = time.process_time()
with open(sys.argv[1], 'rb') as f:
    numpy.load(f, allow_pickle=True) if sys.argv[1].endswith('.npy') else pickle.load(f)
print(json.dumps({'cpu': time.process_time() - t}))
"""
VM_ONLY = """
import json, sys, time
from modelshield.scanner.blob import BytesBlob, FileBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.policy import Policy
from modelshield.scanner.analysis.picklevm import analyse_pickle
policy = Policy.from_file(__import__('pathlib').Path(sys.argv[2])) if len(sys.argv) > 2 else Policy.default()
warm = ScanContext(artefact=Artefact(path='warm'), policy=policy, dispatcher=analyse_blob)
analyse_pickle(BytesBlob(b'\\x80\\x04\\x8c\\x0bcollections\\x8c\\x0bOrderedDict\\x93)R.'), warm)
art = Artefact(path=sys.argv[1])
ctx = ScanContext(artefact=art, policy=policy, dispatcher=analyse_blob, budgets=policy.budgets)
blob = FileBlob(sys.argv[1])
start = 0
if sys.argv[1].endswith('.npy'):
    start = 10 + int.from_bytes(blob.read_at(8, 2), 'little')
t = time.process_time()
try:
    analyse_pickle(blob, ctx, start=start, flavour='numpy' if start else 'plain')
    outcome = 'complete'
except Exception as exc:
    outcome = type(exc).__name__ + ': ' + str(exc)
print(json.dumps({'cpu': time.process_time() - t, 'outcome': outcome,
                  'findings': sorted({f.rule_id for f in art.findings})}))
"""


def child(cmd: list[str], env: dict[str, str] | None = None, repeat: int = 1) -> dict:
    """Best CPU time of `repeat` runs of a child printing a JSON line, with its peak RSS."""
    best: dict = {}
    for _ in range(repeat):
        wall, rss, rc, out = run(cmd, env)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        data = json.loads(lines[-1]) if lines else {"cpu": None}
        data.update(wall=wall, rss=rss, rc=rc)
        if not best or (data["cpu"] is not None and data["cpu"] < best["cpu"]):
            best = data
    return best


def fmt(seconds: float | None, rss: int | None = None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f} s" + (f", {rss / 1e6:.0f} MB" if rss else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-500", action="store_true", help="leave out the 500 MB pickle")
    ap.add_argument("--only", help="run only the files whose name contains this")
    ap.add_argument("--no-picklescan", action="store_true")
    ap.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the 'VM before' column")
    ap.add_argument("--repeat", type=int, default=2, help="runs per VM measurement (best CPU time kept)")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_only:
        build(args.skip_500)
        return 0
    py = sys.executable
    subprocess.run([py, __file__, "--build-only"] + (["--skip-500"] if args.skip_500 else []), check=True)
    picklescan = None if args.no_picklescan else shutil.which("picklescan")
    before = baseline_tree(args.baseline_ref)
    before_env = {**os.environ, "PYTHONPATH": str(before)} if before else None
    raised = Path(tempfile.mkdtemp()) / "raised.toml"
    raised.write_text("[budgets]\nmax_opcodes = 1000000000\nmax_memo = 100000000\nmax_seconds = 3600\n")
    rows = []
    for name, file in FILES.items():
        path = OUT / file
        if (args.only and args.only not in name) or not path.exists():
            continue
        big = path.stat().st_size > 200e6
        gen = child([py, "-c", GENOPS, str(path)])
        load = None if big else child([py, "-c", PICKLE_LOAD, str(path)])
        ps = None
        if picklescan and not big:
            wall, rss, _, _ = run([picklescan, "-p", str(path)])
            ps = {"wall": wall, "rss": rss}
        for label, pol in [("default budgets", None)] + ([("raised budgets", str(raised))] if big else []):
            extra = ["--policy", pol] if pol else ["--no-policy"]
            wall, rss, rc, _ = run([py, "-m", "modelshield", "scan", str(path), "--format", "json", "-o", os.devnull,
                                    *extra])
            vm = child([py, "-c", VM_ONLY, str(path), *([pol] if pol else [])], repeat=1 if big else args.repeat)
            old = None
            if before_env and not big:
                old = child([py, "-c", VM_ONLY, str(path)], env=before_env, repeat=args.repeat)
            rows.append(dict(name=name + (f" ({label})" if big else ""), size=path.stat().st_size,
                             opcodes=gen.get("opcodes", 0), load=load, genops=gen, picklescan=ps,
                             scan=(wall, rss, rc), vm=vm, old=old))
    print(f"\nVM before = {args.baseline_ref} (main before issue 17); CPU seconds (best of {args.repeat}) for the VM, "
          "genops and pickle.load; wall time and peak RSS for the scan and picklescan.\n")
    print("| file | opcodes | `pickle.load` (C) | `pickletools.genops` | picklescan | modelshield scan | VM before "
          "| VM now | VM opcodes/s | now vs before | now vs genops |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vm, old, gen = r["vm"], r["old"], r["genops"]
        rate = r["opcodes"] / vm["cpu"] if vm.get("cpu") else 0
        speedup = old["cpu"] / vm["cpu"] if old and old.get("cpu") and vm.get("cpu") else None
        # (a VM run ended by a budget walked only part of the file: no ratio against a full walk)
        vs_gen = gen["cpu"] / vm["cpu"] if gen.get("cpu") and vm.get("cpu") and vm.get("outcome") == "complete" \
            else None
        wall, rss, rc = r["scan"]
        print(f"| {r['name']} ({r['size'] / 1e6:.0f} MB) | {r['opcodes'] / 1e6:.1f} M "
              f"| {fmt(r['load']['cpu'], r['load']['rss']) if r['load'] else '-'} "
              f"| {fmt(gen.get('cpu'))} "
              f"| {fmt(r['picklescan']['wall'], r['picklescan']['rss']) if r['picklescan'] else '-'} "
              f"| {fmt(wall, rss)} (exit {rc}) "
              f"| {fmt(old['cpu'], old['rss']) if old else '-'} | {fmt(vm.get('cpu'), vm.get('rss'))} "
              f"| {rate / 1e6:.2f} M | {f'**{speedup:.1f}x**' if speedup else '-'} "
              f"| {f'**{vs_gen:.1f}x**' if vs_gen else '-'} |")
    print()
    for r in rows:
        print(f"{r['name']}: VM {r['vm'].get('outcome')} {r['vm'].get('findings')}")
    worst = max(max(r["scan"][1], r["vm"].get("rss") or 0) for r in rows) if rows else 0
    print(f"\npeak RSS over all modelshield runs: {worst / 1e6:.0f} MB (goal: under 300 MB whatever the size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
