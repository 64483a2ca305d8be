"""Held-out regression: opcodes hidden behind inconsistent FRAME boundaries (CPython gh-154848).

Found by scanning fickling's public bypass cases out of tree: a pickle whose BINBYTES length runs
past its frame was `clean` for us while `pickle.load(BytesIO)` / `torch.load` on CPython 3.11 ran
a call that a linear reading never sees.
"""
from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import scan_json
from fixtures import heldout_cases as H
from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.analysis.picklevm import PickleResult, analyse_pickle
from modelshield.scanner.analysis.picklevm import values as V
from modelshield.scanner.analysis.picklevm.session import Session
from modelshield.scanner.policy import Policy

HERE = Path(__file__).resolve().parent


def _vm(data: bytes, flavour: str = "plain") -> Artefact:
    art = Artefact(path="t.pkl")
    ctx = ScanContext(artefact=art, policy=Policy.default(), dispatcher=analyse_blob)
    analyse_pickle(BytesBlob(data), ctx, flavour=flavour)
    return art


def _c_stream_value(data: bytes):
    """What our C-stream reading returns (folded), or the PickleError reason."""
    art = Artefact(path="t.pkl")
    result = PickleResult()
    ctx = ScanContext(artefact=art, policy=Policy.default(), dispatcher=analyse_blob)
    Session(BytesBlob(data), ctx, "plain", result, recurse=analyse_pickle, c_stream=True).run(0, len(data), 1)
    return result.values[0] if result.values else "error"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("heldout_frames")
    out = {
        "straddle.pkl": H.frame_straddle(H.marker_call()),
        "straddle_benign_call.pkl": H.frame_straddle(H.benign_call()),
        "straddle_ckpt.pt": H.torch_checkpoint_with(H.frame_straddle(H.marker_call())),
        "nested_frame.pkl": H.frame_nested_open(),
    }
    for name, data in out.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in out}


def test_hidden_call_behind_frame_is_reported_from_the_loaders_reading(files):
    art = _vm(files["straddle.pkl"].read_bytes())
    assert art.verdict.value == "unsafe"
    straddle = [f for f in art.findings if f.rule_id == "MS-PKL-015"]
    assert len(straddle) == 1 and straddle[0].location.offset == 11  # BINBYTES inside the 2-byte frame
    hidden = [f for f in art.findings if f.rule_id == "MS-PKL-001" and f.callable == "builtins.exec"]
    assert hidden, [f.rule_id for f in art.findings]
    assert "BytesIO" in hidden[0].evidence["view"]
    assert hidden[0].location.offset == 18  # the GLOBAL right after the 4 length bytes + 1 data byte


def test_a_linear_reading_alone_sees_only_bytes(files):
    """The hidden exec is invisible to pickletools: the fixture really hides it."""
    import pickletools
    ops = [op.name for op, _arg, _pos in pickletools.genops(files["straddle.pkl"].read_bytes())]
    assert "GLOBAL" not in ops and "REDUCE" not in ops and "BINBYTES" in ops


def test_straddle_with_only_allowlisted_calls_still_blocks_as_evasion(files):
    art = _vm(files["straddle_benign_call.pkl"].read_bytes())
    ids = {f.rule_id for f in art.findings}
    assert "MS-PKL-015" in ids and "MS-PKL-004" not in ids and art.verdict.value == "unsafe"


def test_frame_opened_inside_a_frame_is_flagged(files):
    art = _vm(files["nested_frame.pkl"].read_bytes())
    f = [f for f in art.findings if f.rule_id == "MS-PKL-015"]
    assert f and f[0].location.offset == 13 and "opens before" in f[0].evidence["reason"]


def test_torch_checkpoint_from_the_cli(files):
    code, rep = scan_json(str(files["straddle_ckpt.pt"]))
    assert code == 1 and rep["verdict"] == "unsafe"
    findings = [f for t in rep["targets"] for a in t["artefacts"] for f in a["findings"]]
    assert {"MS-PKL-015", "MS-PKL-001"} <= {f["rule_id"] for f in findings}
    exec_f = next(f for f in findings if f["rule_id"] == "MS-PKL-001")
    assert exec_f["callable"] == "builtins.exec" and exec_f["location"]["member"].endswith("data.pkl")


@pytest.mark.parametrize("name", sorted(H.straddle_variants()))
def test_c_stream_reading_matches_cpython_bytesio(name):
    """Differential: our C-stream reading returns what _pickle.c returns from an io.BytesIO."""
    data = H.straddle_variants()[name]
    try:
        expected = V.fold(pickle.load(io.BytesIO(data)))  # data-only: no globals, nothing to import
    except pickle.UnpicklingError:
        expected = "error"
    assert _c_stream_value(data) == expected
    assert "MS-PKL-015" in {f.rule_id for f in _vm(data).findings}


@pytest.mark.parametrize("name", sorted(H.benign_framed_pickles()))
def test_well_formed_frames_stay_clean(name):
    art = _vm(H.benign_framed_pickles()[name])
    assert art.verdict.value == "clean", [(f.rule_id, f.evidence) for f in art.findings]


def test_real_loaders_run_the_hidden_marker(files, tmp_path):
    """Proof (subprocess): pickle.load(BytesIO) and torch.load execute what the linear reading hides."""
    jobs = [("pickle-bytesio", str(files["straddle.pkl"]), str(tmp_path / "m1")),
            ("torch", str(files["straddle_ckpt.pt"]), str(tmp_path / "m2"))]
    proc = subprocess.run([sys.executable, str(HERE / "heldout_loaders.py"), json.dumps(jobs)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    if sys.version_info >= (3, 13):  # gh-154848 fixed in 3.13.15 / 3.14.7: the loader rejects the file
        pytest.skip(f"this CPython may enforce frames: {res}")
    assert all(r["marker"] for r in res.values()), res
