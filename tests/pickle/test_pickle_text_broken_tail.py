"""Protocol 0 payload followed by a broken tail (nullifAI in text form), under any name."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelshield import Verdict, scan

PAYLOAD = b"cos\nsystem\n(S'touch \"$MODELSHIELD_MARKER\"'\ntR\x00 not a pickle any more"


def test_real_loader_runs_the_payload_before_failing(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(PAYLOAD)
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", str(path)],
                          env={**os.environ, "MODELSHIELD_MARKER": str(marker)}, capture_output=True, text=True)
    assert proc.returncode != 0 and "UnpicklingError" in proc.stderr  # it fails...
    assert marker.exists()  # ...after running the payload


@pytest.mark.parametrize("name", ["notes.txt", "model.bin", "data.json", "noext"])
def test_broken_tail_text_pickle_is_unsafe_whatever_its_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(PAYLOAD)
    report = scan(str(path))
    assert report.verdict is Verdict.UNSAFE
    ids = {f.rule_id for _, _, f in report.all_findings()}
    assert {"MS-PKL-001", "MS-PKL-003", "MS-PKL-009"} <= ids


@pytest.mark.parametrize("text", [b"cuda=true\nbatch=32\nlr=0.1\n", b"conclusion\nwe found that\nit works\n",
                                  b"(a) first\n(b) second\n", b"I think\nso\n"])
def test_prose_and_configs_are_not_taken_for_pickles(tmp_path, text):
    path = tmp_path / "readme.txt"
    path.write_bytes(text)
    [art] = scan(str(path)).artefacts
    assert art.format != "pickle_text" and art.verdict is Verdict.CLEAN
