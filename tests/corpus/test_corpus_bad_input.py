"""Bad input (empty, truncated, random, deeply nested, huge declared sizes) gives a clear result:
never clean, exit 1 or 2, no traceback, bounded time and memory (peak RSS of the scanning process)."""
from __future__ import annotations

import json
import pickle
import random
import struct
import subprocess
import sys
import zlib

import pytest

MAX_SECONDS = 60
MAX_RSS_MB = 700  # the scanner process, python + its imports; a 1 GB read would blow it


def _zip_declaring(name: str, declared: int, data: bytes) -> bytes:
    """A stored zip member whose local and central headers declare `declared` bytes."""
    crc = zlib.crc32(data)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, declared, declared, len(name), 0)
    local += name.encode() + data
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, declared, declared,
                          len(name), 0, 0, 0, 0, 0, 0) + name.encode()
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + eocd


def _bad_inputs() -> dict[str, bytes]:
    benign = pickle.dumps({"weights": list(range(200)), "name": "x" * 100}, protocol=4)
    rng = random.Random(1234)
    npy_header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    npy_header += b" " * (63 - (10 + len(npy_header)) % 64) + b"\n"
    return {
        "empty.pkl": b"",
        "truncated.pkl": benign[: len(benign) // 2],
        "random.bin": bytes(rng.getrandbits(8) for _ in range(65536)),
        "deep_nesting.pkl": b"\x80\x04" + b"(]" * 1_000_000 + b".",
        "huge_binunicode.pkl": b"\x80\x04X" + struct.pack("<I", 0xFFFFFFFF) + b"abc",
        "huge_binbytes8.pkl": b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"x",
        "huge_frame.pkl": b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N.",
        "huge_shape.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", len(npy_header)) + npy_header + b"\x00" * 64,
        "declares_1gb.zip": _zip_declaring("model/data.pkl", 1 << 30, b"\x80\x02N."),
        "huge_header.safetensors": struct.pack("<Q", 1 << 40) + b'{"a":1}',
        "huge_counts.gguf": b"GGUF" + struct.pack("<IQQ", 3, 1 << 62, 1 << 62) + b"\x00" * 32,
    }


MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.monotonic()
proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", "--format", "json", sys.argv[1]],
                      capture_output=True, text=True, timeout=float(sys.argv[2]))
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                  "seconds": time.monotonic() - t0,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


@pytest.fixture(scope="module")
def bad_scan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    for name, data in _bad_inputs().items():
        (folder / name).write_bytes(data)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(MAX_SECONDS * 3)], capture_output=True,
                         text=True, timeout=MAX_SECONDS * 4)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    result["report"] = json.loads(result["stdout"]) if result["stdout"].strip().startswith("{") else None
    return result


def test_no_traceback_and_exit_code_is_1_or_2(bad_scan):
    assert "Traceback" not in bad_scan["stderr"], bad_scan["stderr"][-3000:]
    assert bad_scan["rc"] in (1, 2), bad_scan["stderr"][-2000:]
    assert bad_scan["report"] is not None


def test_bounded_time_and_memory(bad_scan):
    assert bad_scan["seconds"] < MAX_SECONDS, bad_scan["seconds"]
    assert bad_scan["maxrss_mb"] < MAX_RSS_MB, bad_scan["maxrss_mb"]


@pytest.mark.parametrize("name", sorted(_bad_inputs()))
def test_bad_input_is_never_clean_and_says_why(name, bad_scan):
    artefacts = {a["path"]: a for t in bad_scan["report"]["targets"] for a in t["artefacts"]}
    art = artefacts[name]
    if name == "random.bin":
        # Not a malformed model but raw bytes: torch.load/pickle.load refuse them before running
        # anything (the name only words the message, issue 20), so they are inventoried, saying why.
        assert art["verdict"] == "clean" and art["status"] == "inventoried", art
        assert [f for f in art["findings"] if f["rule_id"] == "MS-PKL-016"], art["findings"]
        return
    assert art["verdict"] in ("inconclusive", "unsafe"), art
    findings = art["findings"]
    assert any(f["kind"] in ("inconclusive", "threat") for f in findings), findings
    # a parser crash is a bug even when it ends inconclusive
    assert not [f for f in findings if "internal error" in f["message"]], findings
