"""Red team: Keras configs and archives that the first analysis missed or under-rated."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Severity

HERE = Path(__file__).resolve().parent
PROOF = HERE.parent / "formats_keras" / "keras_loader_proof.py"


def _findings(path: Path):
    report = scan([str(path)])
    return [f for t in report.targets for a in t.artefacts for f in a.findings]


def _model(activation) -> dict:
    dense = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 2, "activation": activation}}
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "s", "layers": [dense]}}


def _fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def _keras(path: Path, members: list[tuple[str, str]]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        for name, data in members:
            z.writestr(name, data)
    return path


@pytest.mark.parametrize("module,name,severity", [
    # Keras < 3.9 imports any keras.* module and returns the attribute (CVE-2025-1550)
    ("keras.src.utils.python_utils", "func_load", Severity.CRITICAL),
    ("keras.src.utils.file_utils", "extract_archive", Severity.HIGH),
    ("keras.src.legacy.saving.legacy_h5_format", "load_model_from_hdf5", Severity.HIGH),
    # exported public APIs that Keras 3.15's own NON_MODELING_APIS list misses
    ("keras.utils", "plot_model", Severity.MEDIUM),
    ("keras.datasets.mnist", "load_data", Severity.MEDIUM),
])
def test_keras_internal_gadgets(tmp_path, module, name, severity):
    path = _keras(tmp_path / "m.keras", [("config.json", json.dumps(_model(_fn(module, name))))])
    hits = [f for f in _findings(path) if f.rule_id == "MS-KERAS-002"]
    assert hits and hits[0].severity is severity and hits[0].evidence["reference"] == f"{module}.{name}"


@pytest.mark.parametrize("module", ["distutils.spawn", "setuptools._distutils.spawn", "IPython.utils.process",
                                    "numexpr", "yaml"])
def test_more_stdlib_and_tooling_gadget_modules(tmp_path, module):
    path = _keras(tmp_path / "m.keras", [("config.json", json.dumps(_model(_fn(module, "spawn"))))])
    assert any(f.rule_id == "MS-KERAS-003" and f.severity is Severity.CRITICAL for f in _findings(path))


def test_user_modules_stay_informational(tmp_path):
    path = _keras(tmp_path / "m.keras", [("config.json", json.dumps(_model(_fn("my_project.layers", "swish2"))))])
    assert {f.rule_id for f in _findings(path)} == {"MS-KERAS-004"}


@pytest.mark.parametrize("decoy", ["/config.json", "./config.json"])
@pytest.mark.parametrize("order", ["evil_first", "evil_last"])
def test_config_decoys_and_key_order(tmp_path, decoy, order):
    evil = _model(_fn("os", "system"))
    evil_text = json.dumps(dict(reversed(list(evil.items()))))  # "config" before "class_name"
    benign = json.dumps(_model("relu"))
    members = [("config.json", evil_text), (decoy, benign)]
    path = _keras(tmp_path / "m.keras", members if order == "evil_first" else members[::-1])
    assert any(f.rule_id == "MS-KERAS-003" for f in _findings(path))


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_config_with_reversed_keys(tmp_path):
    evil = json.dumps(dict(reversed(list(_model(_fn("os", "system")).items()))))
    path = _keras(tmp_path / "m.keras", [("config.json", evil), ("config.json", json.dumps(_model("relu")))])
    assert any(f.rule_id == "MS-KERAS-003" for f in _findings(path))


def test_keras_loads_the_exact_name_behind_a_decoy(tmp_path):
    """Proof: keras.load_model reads `config.json` (Lambda marker) not the `/config.json` decoy; we flag it."""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    built, marker = tmp_path / "decoy.keras", tmp_path / "marker"
    proc = subprocess.run([sys.executable, str(HERE / "redteam_keras_builder.py"), str(built), str(marker)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr
    rules = {(f.rule_id, f.severity) for f in _findings(built)}
    assert ("MS-KERAS-001", Severity.CRITICAL) in rules, rules
    proof = subprocess.run([sys.executable, str(PROOF), str(marker), str(built)],
                           capture_output=True, text=True, timeout=240, env=env)
    assert proof.stdout.split() == ["decoy.keras", "True"], proof.stderr
