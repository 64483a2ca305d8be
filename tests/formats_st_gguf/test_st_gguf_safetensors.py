"""safetensors: benign files from the real library are clean with BOM facts; every header the library
refuses is inconclusive here (differential test with hypothesis-mutated headers)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from helpers.cli import scan_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file as np_save
from safetensors.torch import save_file as torch_save
from st_gguf_helpers import analyse_bytes

from modelshield.scanner.findings import Verdict


def build(header: dict | bytes, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def library_accepts(path) -> bool:
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                f.get_slice(key)
        return True
    except Exception:  # noqa: BLE001 - any refusal counts
        return False


def test_benign_files_clean_via_cli(tmp_path):
    torch_save({"w": torch.zeros(3, 4), "b": torch.ones(4, dtype=torch.bfloat16), "e": torch.zeros(0)},
               str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    np_save({"a": np.arange(10, dtype=np.int64), "s": np.array(1.5, dtype=np.float16)},
            str(tmp_path / "np.safetensors"))
    code, report = scan_json(str(tmp_path))
    assert code == 0
    arts = {a["path"]: a for a in report["targets"][0]["artefacts"]}
    for art in arts.values():
        assert art["format"] == "safetensors" and art["verdict"] == "clean" and art["findings"] == []
    facts = arts["model.safetensors"]["properties"]["safetensors"]
    assert facts["tensors"] == 3 and facts["parameters"] == 16 == facts["total"]
    assert facts["dtypes"] == {"BF16": 1, "F32": 2} and facts["metadata"] == {"format": "pt"}
    assert arts["np.safetensors"]["properties"]["safetensors"]["parameters"] == 11


GOOD = {"__metadata__": {"k": "v"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F4", "shape": [4], "data_offsets": [16, 18]}}


@pytest.mark.parametrize("mutate, reason", [
    (lambda h: h["a"].update(dtype="F128"), "unknown dtype"),
    (lambda h: h["a"].update(shape=[2, 3]), "offsets span"),
    (lambda h: h["a"].update(data_offsets=[0, 8]), "offsets span"),
    (lambda h: h["b"].update(data_offsets=[15, 17]), "overlaps"),
    (lambda h: h["b"].update(shape=[3]), "whole number of bytes"),
    (lambda h: h["a"].update(shape=[-1]), "unsigned 64-bit"),
    (lambda h: h["a"].update(shape=[True, 4]), "unsigned 64-bit"),
    (lambda h: h["a"].update(shape=[2.0, 2]), "unsigned 64-bit"),
    (lambda h: h["a"].update(shape=[1 << 40, 1 << 40]), "overflows 64 bits"),
    (lambda h: h["a"].pop("shape"), "missing field"),
    (lambda h: h.update(__metadata__={"k": 1}), "strings to strings"),
])
def test_mutations_inconclusive(tmp_path, mutate, reason):
    header = json.loads(json.dumps(GOOD))
    mutate(header)
    data = build(header, b"\0" * 18)
    (tmp_path / "m.safetensors").write_bytes(data)
    assert not library_accepts(tmp_path / "m.safetensors")
    art = analyse_bytes(data, "m.safetensors")
    assert art.verdict is Verdict.INCONCLUSIVE
    assert [f.rule_id for f in art.findings] == ["MS-ST-001"] and reason in art.findings[0].message


@pytest.mark.parametrize("data, reason", [
    (build(GOOD, b"\0" * 19), "not fully covered"),
    (build(GOOD, b"\0" * 17), "holds only"),
    (struct.pack("<Q", 100_000_001) + b"{" + b" " * 64, "library limit"),
    (struct.pack("<Q", 500) + b'{"a": 1}', "past the end"),
    (build(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":NaN}', b"\0"), "not JSON"),
    (build(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}\x00', b"\0"), "invalid JSON"),
    (build(b'{"\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"), "not UTF-8"),
    (build(b'{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"), "surrogate"),
])
def test_malformed_files(data, reason):
    art = analyse_bytes(data, "m.safetensors")
    assert art.format == "safetensors" and art.verdict is Verdict.INCONCLUSIVE
    assert reason in art.findings[0].message, art.findings[0].message


def test_duplicate_keys_rule():
    raw = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    art = analyse_bytes(build(raw, b"\0"), "m.safetensors")
    assert [f.rule_id for f in art.findings] == ["MS-ST-002"] and "'a'" in art.findings[0].message


def test_tensor_data_is_never_read():
    class Counting(type(analyse_bytes.__globals__["BytesBlob"](b""))):
        read = 0

        def read_at(self, offset, n):
            out = super().read_at(offset, n)
            Counting.read += len(out)
            return out

    header = {"w": {"dtype": "F32", "shape": [1 << 18], "data_offsets": [0, 1 << 20]}}
    data = build(header, b"\0" * (1 << 20))
    art = analyse_bytes(Counting(data, "big.safetensors"), "big.safetensors")
    assert art.verdict is Verdict.CLEAN
    assert Counting.read < 70_000  # sniff head + header only


_DTYPES = st.sampled_from(["F32", "F16", "BF16", "U8", "I64", "BOOL", "F4", "F6_E2M3", "C64", "F8_E4M3",
                           "X", "f32", "U1"])
_INTS = st.one_of(st.integers(0, 40), st.integers(-3, -1), st.just(1 << 64), st.booleans(), st.floats(0, 4))
_ENTRY = st.fixed_dictionaries({"dtype": _DTYPES, "shape": st.lists(_INTS, max_size=3),
                                "data_offsets": st.lists(_INTS, min_size=1, max_size=3)})
_META = st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()),
                                             max_size=2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=st.dictionaries(st.text(min_size=1, max_size=4), _ENTRY, max_size=4), meta=_META,
       extra=st.integers(0, 64), trailer=st.sampled_from([b"", b"  ", b"\0", b"}"]))
def test_differential_with_library(tmp_path, tensors, meta, extra, trailer):
    """Whatever the safetensors library refuses, we never call clean (and valid ones are clean)."""
    header: dict = dict(tensors)
    if meta is not None:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode() + trailer
    data = build(raw, b"\0" * extra)
    path = tmp_path / "d.safetensors"
    path.write_bytes(data)
    accepted = library_accepts(path)
    art = analyse_bytes(data, "d.safetensors")
    if not accepted:
        assert art.verdict is not Verdict.CLEAN, (raw, extra)
    else:
        assert art.verdict is Verdict.CLEAN, ([f.message for f in art.findings], raw, extra)
