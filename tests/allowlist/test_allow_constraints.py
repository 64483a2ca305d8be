"""Issue 20 class 4: allow entries that cover one use only, and the entries the audit moved to deny.

A constrained entry (allow.toml `only = ...`) passes the use real artefacts make of it and flags
every other one: calling a `newobj` class (its __init__ reaches outside), a `none-first` callable
with a path, or handing either to another callable (which may call it any way). The removed
joblib side-file wrapper is proven dangerous under the real joblib.load.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pickle"))
from pickle_vm_helpers import call, glob, run_vm  # noqa: E402

from modelshield import Verdict, scan  # noqa: E402

TA = glob("transformers.training_args", "TrainingArguments")
PS = glob("accelerate.state", "PartialState")
TZ = glob("dateutil.tz.tz", "tzfile")
S = lambda text: b"S'" + text.encode() + b"'\n"  # noqa: E731


def _flagged(data: bytes) -> list[str]:
    run = run_vm(data)
    return [f.evidence.get("why", "") for f in run.by_rule("MS-PKL-004")]


@pytest.mark.parametrize("body", [
    TA + b")\x81}b",                                  # NEWOBJ + state: what torch.save writes
    PS + b")\x81}b",
    TZ + b"(N" + S("Europe/Paris") + b"tR",           # tzfile(None, filename): dateutil's __reduce__
    glob("copyreg", "_reconstructor") + b"(" + TA + glob("builtins", "object") + b"NtR",
])
def test_the_uses_real_artefacts_make_pass(body):
    assert _flagged(b"\x80\x02" + body + b".") == []


@pytest.mark.parametrize("body, needle", [
    (call(TA, S("/tmp/out")), "NEWOBJ"),                                    # runs __init__/__post_init__
    (call(PS), "NEWOBJ"),                                                   # starts distributed state
    (call(TZ, S("/etc/hostname")), "None as its first argument"),           # opens the file
    (glob("copyreg", "_reconstructor") + b"(" + TA + TA + S("x") + b"tR", "handed to"),  # base.__init__ runs
    (call(glob("torch._tensor", "_rebuild_from_type_v2"), TA, glob("torch", "Tensor"), b")", b"N"), "handed to"),
    (call(glob("collections", "defaultdict"), TZ), "handed to"),
])
def test_other_uses_are_unverified_calls(body, needle):
    whys = _flagged(b"\x80\x02" + body + b".")
    assert any(needle in w for w in whys), whys


def test_joblib_side_file_wrapper_runs_a_pickle_from_anywhere_and_is_denied(tmp_path):
    outside, scanned = tmp_path / "elsewhere", tmp_path / "model"
    outside.mkdir()
    scanned.mkdir()
    (outside / "evil.npy").write_bytes(b"\x80\x02cos\nsystem\nX\x1b\x00\x00\x00touch \"$MODELSHIELD_MARKER\"\x85R.")
    wrapper = glob("joblib.numpy_pickle", "NDArrayWrapper") + b"(" + S(str(outside / "evil.npy")) + \
        glob("numpy", "ndarray") + b"tR}b"
    (scanned / "model.pkl").write_bytes(b"\x80\x02" + wrapper + b".")
    marker = tmp_path / "marker"
    subprocess.run([sys.executable, "-c", "import joblib, sys; joblib.load(sys.argv[1])", str(scanned / "model.pkl")],
                   env={**os.environ, "MODELSHIELD_MARKER": str(marker)}, capture_output=True, cwd=tmp_path)
    assert marker.exists()  # joblib.load ran a pickle that is not even in the scanned folder
    report = scan(str(scanned))
    assert report.verdict is Verdict.UNSAFE
    assert any(f.rule_id == "MS-PKL-001" and f.callable == "joblib.numpy_pickle.NDArrayWrapper"
               for _, _, f in report.all_findings())
