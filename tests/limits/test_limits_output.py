"""Names that are not UTF-8 never crash an output, and are shown losslessly (`\\xNN`, through the
output escaping helper); a missing target exits 2; a FIFO named like a model makes the scan
inconclusive, from the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD = b"\xff\xfebad.pkl"
PICKLE = b"\x80\x04N."


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "modelshield", *args], capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    with open(os.fsencode(tmp_path / "repo") + b"/" + BAD, "wb") as fh:
        fh.write(PICKLE)
    return tmp_path / "repo"


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_output_file_with_a_non_utf8_name(folder, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    proc = _cli("scan", "--format", fmt, "-o", str(out), str(folder))
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    text = out.read_text(encoding="utf-8")  # valid UTF-8
    if fmt == "text":
        assert "\\xff\\xfebad.pkl" in text
    elif fmt == "json":
        [artefact] = json.loads(text)["targets"][0]["artefacts"]
        assert os.fsencode(artefact["path"]) == BAD  # lossless: the bytes come back


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_stdout_with_a_strict_encoding(folder, encoding):
    proc = _cli("scan", str(folder), env={"PYTHONIOENCODING": encoding})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert b"\\xff\\xfebad.pkl" in proc.stdout


def test_missing_target_with_a_non_utf8_name_exits_2(tmp_path):
    missing = os.fsencode(tmp_path) + b"/\xffmissing.pkl"
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", os.fsdecode(missing)], capture_output=True,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"\\xffmissing.pkl: no such file or directory" in proc.stderr


def test_fifo_named_like_a_model_is_inconclusive_from_the_cli(tmp_path):
    os.mkfifo(tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    proc = _cli("scan", "--format", "json", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    arts = {a["path"]: a for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    assert arts["pytorch_model.bin"]["status"] == "skipped"
    assert [f["rule_id"] for f in arts["pytorch_model.bin"]["findings"]] == ["MS-LIM-004"]
    single = _cli("scan", str(tmp_path / "pytorch_model.bin"))
    assert single.returncode == 2 and b"not a regular file" in single.stderr
