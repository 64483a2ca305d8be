"""Issue 20 class 3: content decides, the name only words the message.

Executable content under any name is analysed (tests/views/test_loader_views.py proves that with
the real loaders); content no loader can execute is inventoried, including under names that
unpickling loaders open, since those loaders decide by content and the pickle trial shows they
stop before running anything. Names of loaders modelshield cannot follow stay inconclusive.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from modelshield import scan


def _one(path):
    [art] = scan(str(path)).artefacts
    return art


@pytest.mark.parametrize("name", ["weights.bin", "model.pt", "arrays.npy", "state.pkl", "cache.joblib"])
def test_raw_array_bytes_under_unpickler_names_are_inventoried(tmp_path, name):
    path = tmp_path / name
    np.linspace(-3, 3, 4096, dtype=np.float32).tofile(path)  # what ONNX external data / raw dumps are
    art = _one(path)
    assert art.verdict.value == "clean" and art.status.value == "inventoried", [f.rule_id for f in art.findings]
    [note] = [f for f in art.findings if f.rule_id == "MS-PKL-016"]
    assert "offset 0" in note.message or "load key" in note.message


def test_the_loaders_really_refuse_such_content(tmp_path):
    path = tmp_path / "weights.bin"
    np.linspace(-3, 3, 4096, dtype=np.float32).tofile(path)
    code = ("import sys, pickle, torch, joblib\n"
            "loaders = (lambda p: pickle.load(open(p, 'rb')), lambda p: torch.load(p, weights_only=False),\n"
            "           joblib.load)\n"
            "for load in loaders:\n"
            "    try:\n        load(sys.argv[1])\n    except Exception:\n        continue\n    sys.exit('loaded')\n")
    assert subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True).returncode == 0


def test_unknown_content_under_a_name_no_view_follows_stays_inconclusive(tmp_path):
    path = tmp_path / "model.tflite"
    np.linspace(-3, 3, 256, dtype=np.float32).tofile(path)
    art = _one(path)
    assert art.verdict.value == "inconclusive" and any(f.rule_id == "MS-GEN-002" for f in art.findings)
