"""Keras Lambda payloads decoded the way keras' `func_load` decodes them: a payload that is not
base64 is marshalled from its raw-unicode-escape bytes (loader-proven), and one that does not
decode at all is inconclusive as well as a Lambda (never clean)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelshield import scan

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    root = tmp_path_factory.mktemp("keras_lambda")
    marker = root / "marker"
    proc = subprocess.run([sys.executable, str(HERE / "keras_fixture_builder.py"), str(root), str(marker)],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, marker


def _recode(src: Path, dst: Path, recode) -> None:
    """Copy a .keras archive, passing every `__lambda__` code string through `recode`."""
    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "__lambda__" and isinstance(node.get("config"), dict):
                node["config"]["code"] = recode(node["config"]["code"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                walk(config)
                data = json.dumps(config).encode()
            zout.writestr(info, data)


def _raw_unicode(code: str) -> str:
    """The same bytecode as a string keras' base64 step rejects (non-ASCII), so func_load falls back
    to `code.encode("raw_unicode_escape")`, which gives the marshal bytes back."""
    raw = base64.b64decode(code)
    assert any(b > 127 for b in raw)
    return raw.decode("latin-1")


def test_raw_unicode_escape_payload_runs_under_keras_and_is_critical(lambda_keras, tmp_path):
    root, marker = lambda_keras
    path = tmp_path / "raw.keras"
    _recode(root / "lambda.keras", path, _raw_unicode)
    marker.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, str(HERE / "keras_loader_proof.py"), str(marker), str(path)],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert proc.stdout.split() == ["raw.keras", "True"], proc.stderr[-2000:]
    report = scan(str(path))
    [f] = [f for _, _, f in report.all_findings() if f.rule_id == "MS-KERAS-001"]
    assert f.severity.name == "CRITICAL" and "open" in f.evidence["dangerous"], f.evidence


@pytest.mark.parametrize("payload", ["not marshal data at all", "QUJD", ""])
def test_undecodable_payload_is_inconclusive_and_never_clean(lambda_keras, tmp_path, payload):
    root, _ = lambda_keras
    path = tmp_path / "bad.keras"
    _recode(root / "lambda.keras", path, lambda code: payload)
    report = scan(str(path))
    ids = {f.rule_id: f for _, _, f in report.all_findings()}
    assert "MS-KERAS-006" in ids and ids["MS-KERAS-001"].severity.name == "HIGH"
    assert report.verdict.value != "clean"
