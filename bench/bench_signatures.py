"""Cost of signature checking inside a scan: `scan --trust T --require-signature` on the bench folder
signed with `modelshield sign`, against a plain scan of the same folder, alternating in the same run.

Uses the >= 2 GB folder of real-format model files that bench_scan.py builds (bench/out/). The
signature (`files` serialisation, SHA-256) is checked against the digests the scan's single file
pass computes, so the goal is at most 1.05x a plain scan (no second read of tensor bytes).

    python bench/bench_signatures.py [--runs 3] [--size-gb 2.2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scan import OUT  # noqa: E402

GOAL = 1.05


def timed(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"failed ({proc.returncode}): {proc.stderr[-500:]}")
    return wall, proc.returncode, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=2.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([sys.executable, str(HERE / "bench_scan.py"), "--build-only", "--size-gb", str(args.size_gb)],
                   check=True)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    with tempfile.TemporaryDirectory() as tmp:
        key = ec.generate_private_key(ec.SECP256R1())
        priv, pub = Path(tmp, "bench.pem"), Path(tmp, "bench.pub")
        priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        trust = Path(tmp, "trust.toml")
        trust.write_text(f'[trust]\n[[trust.signer]]\nname = "bench"\npublic_keys = ["{pub}"]\n')
        sig_in, sig_aside = OUT / "model.sig", Path(tmp, "model.sig")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "modelshield", "sign", str(OUT), "--private-key", str(priv)],
                       check=True, capture_output=True)
        sign_wall = time.perf_counter() - start
        shutil.move(str(sig_in), sig_aside)
        plain = [sys.executable, "-m", "modelshield", "scan", "--format", "json", str(OUT)]
        signed = [sys.executable, "-m", "modelshield", "scan", "--format", "json", "--trust", str(trust),
                  "--require-signature", str(OUT)]
        timed(plain)  # warm the page cache
        walls: dict[str, list[float]] = {"plain scan": [], "scan --trust --require-signature": []}
        outcome = reread = None
        try:
            for _ in range(args.runs):
                walls["plain scan"].append(timed(plain)[0])
                shutil.copy(sig_aside, sig_in)
                wall, code, out = timed(signed)
                os.unlink(sig_in)
                walls["scan --trust --require-signature"].append(wall)
                target = json.loads(out)["targets"][0]
                outcome, reread = target["signature"]["outcome"], target["signature"]["reread_bytes"]
                if code != 0:
                    raise SystemExit(f"signed scan exited {code}: signature {outcome}")
        finally:
            if sig_in.exists():
                os.unlink(sig_in)
    files = [p for p in OUT.rglob("*") if p.is_file() and p.name != ".complete"]
    total = sum(p.stat().st_size for p in files)
    ref = statistics.median(walls["plain scan"])
    print(f"files: {len(files)}, {total / 1e9:.2f} GB, cores: {os.cpu_count()}, runs: {args.runs} (warm cache)")
    print(f"{'sign (files, SHA-256)':<36} {sign_wall:7.2f} s")
    for name, values in walls.items():
        wall = statistics.median(values)
        print(f"{name:<36} {wall:7.2f} s  {total / wall / 1e9:5.2f} GB/s  ratio {wall / ref:4.3f}x")
    ratio = statistics.median(walls["scan --trust --require-signature"]) / ref
    print(f"signature: {outcome}, bytes read again: {reread}; goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
