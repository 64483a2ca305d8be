"""Benign twins of the red-team fixtures (clean, nothing above info) and the text-number parsers
checked against CPython's own unpicklers (C and pure Python)."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.cli import scan_json  # noqa: E402
from redteam_attacks import torch_tar  # noqa: E402

from modelshield.scanner.formats.numpy import has_object
from modelshield.scanner.analysis.picklevm.opcodes import _float_line, _int_line, _long_line
from modelshield.scanner.errors import PickleError

ABOVE_INFO = {"low", "medium", "high", "critical"}


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("redteam_benign")
    np.save(folder / "structured.npy", np.zeros(4, dtype="i4,f8"))
    np.save(folder / "subarray.npy", np.zeros(3, dtype="(2,)f4"))
    np.save(folder / "dates.npy", np.array(["2024-01-01"], dtype="datetime64[ns]"))
    np.save(folder / "objects.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    image = np.frombuffer(b"N0cos\nsystem\n" * 64, dtype=np.uint8).copy()  # raw bytes that look like opcodes
    joblib.dump({"w": np.arange(12.0).reshape(3, 4), "rec": np.zeros(2, dtype="i4,f8"),
                 "sub": np.zeros(2, dtype="(2,)f4"), "obj": np.array([1, "x"], dtype=object),
                 "img": image}, folder / "mixed.joblib")
    (folder / "hex_int.pkl").write_bytes(b"(I0x10\nL0x20L\nF1.5\ntp0\n.")
    (folder / "legacy_tar.pt").write_bytes(torch_tar(b"\x80\x02]."))  # torch.load gives {}
    return folder


def test_benign_twins_are_clean(benign):
    code, report = scan_json(str(benign))
    arts = {Path(a["path"]).name: a for a in report["targets"][0]["artefacts"]}
    assert len(arts) == 7
    for name, art in arts.items():
        assert art["verdict"] == "clean", (name, art["findings"])
        assert not [f for f in art["findings"] if f["severity"] in ABOVE_INFO], (name, art["findings"])
    assert arts["objects.npy"]["properties"]["numpy"]["object_dtype"] is True
    assert arts["mixed.joblib"]["properties"]["pickle"]["flavour"] == "joblib"
    assert code == 0


@pytest.mark.parametrize("descr,expected", [("<f4", False), ("i4,f8", False), ("(2,)f4", False), ("|S5", False),
                                            ("<M8[ns]", False), ("O", True), ("object_", True), ("2O", True),
                                            ("i4, O", True), ([("a", "<f4"), ("b", "|O")], True),
                                            (("<f4", (2,)), False), (("|O", (2,)), True)])
def test_numpy_object_detection_follows_numpy(descr, expected):
    assert has_object(descr) is expected


def _reference(opcode: bytes, body: bytes):
    values = []
    for load in (pickle.loads, pickle._loads):
        try:
            values.append(load(opcode + body + b"\n."))
        except Exception:  # noqa: BLE001 - the loader rejects it
            pass
    return values


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=8).filter(lambda b: b"\n" not in b) |
       st.text(alphabet="0123456789xXabcdefoOL+-_ \t\x00.eE", max_size=8).map(str.encode))
def test_text_numbers_accepted_wherever_a_loader_accepts_them(body):
    for opcode, parse in ((b"I", _int_line), (b"L", _long_line), (b"F", _float_line)):
        accepted = _reference(opcode, body)
        if not accepted:
            continue
        try:
            value = parse(body + b"\n", 0)
        except PickleError:
            pytest.fail(f"{opcode!r}{body!r}: a loader accepts it, the VM stopped")
        assert any(value == v or (v != v and value != value) for v in accepted), (opcode, body, value, accepted)
