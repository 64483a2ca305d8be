"""Red-team bypasses: each fixture runs its marker under the real loader AND modelshield says unsafe (>= high).

One loader subprocess per loader family proves the fixtures execute; one CLI run scans them all.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.cli import scan_json_process  # noqa: E402
from helpers.loaders import run_real_loaders  # noqa: E402
from redteam_attacks import ATTACKS, IMPORT_MODULE, IMPORT_MODULE_SOURCE  # noqa: E402

HERE = Path(__file__).resolve().parent
HIGH = {"high", "critical"}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("redteam")
    for a in ATTACKS:
        (folder / a.file).write_bytes(a.build())
    return folder


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> dict[str, str]:
    """PYTHONPATH holding a module whose import creates the marker (loader and scan both see it)."""
    folder = tmp_path_factory.mktemp("redteam_planted")
    (folder / f"{IMPORT_MODULE}.py").write_text(IMPORT_MODULE_SOURCE)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="session")
def loader_results(corpus, planted, tmp_path_factory) -> dict[str, dict]:
    return run_real_loaders(ATTACKS, corpus, tmp_path_factory.mktemp("redteam_run"), env={**os.environ, **planted})


@pytest.fixture(scope="session")
def scanned(corpus, planted) -> dict[str, dict]:
    code, report = scan_json_process(str(corpus), env=planted)  # a process that can import the planted module
    assert code == 1, report
    return {Path(a["path"]).name: a for a in report["targets"][0]["artefacts"]}


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_real_loader_runs_the_payload(attack, loader_results):
    assert loader_results[attack.id]["marker"], loader_results[attack.id]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_modelshield_blocks_it(attack, scanned):
    art = scanned[attack.file]
    assert art["verdict"] == "unsafe", (attack.note, art["findings"])
    threats = [f for f in art["findings"] if f["kind"] == "threat" and f["severity"] in HIGH]
    assert threats, art["findings"]
    if attack.expect == IMPORT_MODULE:  # an import that runs a module: the import itself is the finding
        assert any((f.get("callable") or "").split(".")[0] == IMPORT_MODULE for f in threats), art["findings"]
    else:
        assert any(f.get("callable") == attack.expect and f["rule_id"] in ("MS-PKL-001", "MS-PKL-003")
                   for f in art["findings"]), art["findings"]
