"""A seeded mutation loop per format reader: a few hundred mutants of a valid seed each, analysed in
the worker processes. Every mutant ends without an internal error (a traceback in the parser),
within its time, and with the memory the worker measured staying under the cap. One CLI run over
some of the mutants checks the end-to-end contract (exit 0/1/2, no traceback, valid JSON)."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import random
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from limits_helpers import hostile

from modelshield import Policy
from modelshield.scanner.engine import analyse_open_file
from modelshield.scanner.worker import WorkerPool

CASES = 200  # per reader
CLI_CASES = 25  # per reader, through the CLI
SEED = 20_260_101
MAX_MEMORY = 160 << 20
# Third-party native parsers with known hangs and crashes on crafted input: contained, not ours.
NATIVE = {"model.h5"}


def _pickles() -> bytes:
    value = {"w": [1.5, 2.5], "t": (1, "a", b"b"), "n": None, "nested": {"k": list(range(20))}}
    return pickle.dumps(value, protocol=4)


def _torch_like_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\0" * 64)
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in (("a/" + "l" * 120 + ".pkl", _pickles()), ("b.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sevenzip() -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as sz:
        sz.writestr(_pickles(), "m.pkl")
    return buf.getvalue()


def _npy(dtype: str) -> bytes:
    buf = io.BytesIO()
    array = np.arange(12, dtype="f4") if dtype == "f4" else np.array([{"a": 1}, [2]], dtype=object)
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _safetensors() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.ones((2, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float16)},
                metadata={"format": "pt"})


def _gguf() -> bytes:
    def s(text: bytes) -> bytes:
        return struct.pack("<Q", len(text)) + text

    kv = (s(b"general.architecture") + struct.pack("<I", 8) + s(b"llama")
          + s(b"tokenizer.chat_template") + struct.pack("<I", 8) + s(b"{{ messages[0]['content'] }}")
          + s(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s(b"a") + s(b"b"))
    tensor = s(b"w") + struct.pack("<IQIQ", 1, 32, 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 3) + kv + tensor
    head += b"\0" * (-len(head) % 32)
    return head + b"\0" * 128


def _onnx() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph).SerializeToString()


def _keras() -> bytes:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"units": 2}},
        {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {"code": "AA=="}}}}]}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        zf.writestr("model.weights.h5", b"")
    return buf.getvalue()


def _parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), buf)
    return buf.getvalue()


SEEDS: dict[str, Callable[[], bytes]] = {
    "model.pkl": _pickles,
    "text.pkl": lambda: pickle.dumps({"a": [1, 2], "b": "s"}, protocol=0),
    "pytorch_model.bin": _torch_like_zip,
    "archive.tar": _tar,
    "model.pkl.gz": lambda: gzip.compress(_pickles()),
    "model.pkl.xz": lambda: lzma.compress(_pickles()),
    "model.pkl.bz2": lambda: bz2.compress(_pickles()),
    "archive.7z": _sevenzip,
    "array.npy": lambda: _npy("f4"),
    "objects.npy": lambda: _npy("O"),
    "model.safetensors": _safetensors,
    "model.gguf": _gguf,
    "model.h5": lambda: (hostile.HERE / "h5-seed.h5").read_bytes(),
    "model.onnx": _onnx,
    "model.keras": _keras,
    "data.parquet": _parquet,
    "config.json": lambda: json.dumps({"model_type": "bert", "auto_map": {"AutoModel": "modeling.Model"},
                                       "architectures": ["BertModel"]}).encode(),
    "tokenizer_config.json": lambda: json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}"
                                                 "{% endfor %}"}).encode(),
    "modeling.py": lambda: (b"import torch\nclass Model(torch.nn.Module):\n"
                            b"    def forward(self, x):\n        return x\n"),
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Byte flips, overwrites, cuts, inserts, huge sizes and duplicated runs."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            out += bytes([rng.randrange(256)])
        pos = rng.randrange(len(out))
        op = rng.randrange(6)
        if op == 0:
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:
            del out[pos:pos + rng.randint(1, 64)]
        elif op == 3:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:
            out[pos:pos + 4] = rng.choice((b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff"))
        else:
            end = min(len(out), pos + rng.randint(1, 32))
            out[pos:pos] = out[pos:end] * rng.randint(2, 8)
    return bytes(out)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    rng = random.Random(SEED)
    out: dict[str, list[Path]] = {}
    for name, build in SEEDS.items():
        seed = build()
        folder = root / name.replace(".", "_")
        folder.mkdir()
        out[name] = []
        for i in range(CASES):
            path = folder / f"{i:03d}-{name}"
            path.write_bytes(mutate(seed, rng) if i else seed)
            out[name].append(path)
    return out


@pytest.fixture(scope="module")
def outcomes(mutants):
    """Every mutant through the worker pool, 16 files per job, under low limits."""
    policy = Policy.default()
    policy.budgets.max_memory = MAX_MEMORY
    policy.budgets.max_seconds = 10
    policy.budgets.max_native_seconds = 2
    results: dict[str, list] = {}
    started = time.monotonic()
    with WorkerPool(policy, analyse_open_file, size=2) as pool:
        for name, paths in mutants.items():
            jobs = []
            for i in range(0, len(paths), 16):
                chunk = paths[i:i + 16]
                fds = [os.open(p, os.O_RDONLY) for p in chunk]
                jobs.append((pool.submit_many([(fd, p.name, str(p)) for fd, p in zip(fds, chunk)]), fds))
            results[name] = []
            for job, fds in jobs:
                results[name] += pool.wait_many(job)
                for fd in fds:
                    os.close(fd)
    results["__seconds__"] = [time.monotonic() - started]
    return results


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_reader_survives_mutation(outcomes, name):
    failures = []
    for outcome in outcomes[name]:
        art = outcome.artefact
        internal = [f.message for f in art.findings if "internal error" in f.message]
        if internal:
            failures.append(f"{art.path}: {internal[0][:300]}")
        if outcome.limit == "memory" or (outcome.limit and name not in NATIVE):
            failures.append(f"{art.path}: worker ended by the {outcome.limit} limit")
        timed = [f for f in art.findings if f.rule_id == "MS-LIM-002"]
        if timed and name not in NATIVE:
            failures.append(f"{art.path}: {timed[0].message}")
        if outcome.peak_rss and outcome.peak_rss - outcome.baseline_rss > MAX_MEMORY:
            failures.append(f"{art.path}: grew by {(outcome.peak_rss - outcome.baseline_rss) >> 20} MiB")
    assert not failures, "\n".join(failures[:10])
    assert len(outcomes[name]) == CASES


def test_fuzzing_stays_fast(outcomes):
    assert outcomes["__seconds__"][0] < 60


def test_cli_contract_over_mutants(mutants, tmp_path):
    """The first CLI_CASES mutants of every reader in one CLI run (the pool run above saw them all)."""
    files = [str(p) for paths in mutants.values() for p in paths[:CLI_CASES]]
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", "--format", "json", *files],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert sum(len(t["artefacts"]) for t in report["targets"]) == CLI_CASES * len(SEEDS)
