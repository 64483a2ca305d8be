"""Issue 20 classes 1-3: every fixture runs its marker under the real loader AND the scan blocks it.

One loader subprocess per family proves the fixtures execute; one CLI run scans them all. The
h5py/tar builders check that the container side is real too (the other loader opens it).
"""
from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from fixtures.loader_views import CASES, build_all  # noqa: E402
from helpers.cli import scan_json  # noqa: E402
from helpers.loaders import run_real_loaders  # noqa: E402

HERE = Path(__file__).resolve().parent
BLOCKING = {"high", "critical"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("loader_views")
    build_all(folder)
    (folder / "manifest.json").unlink()
    return folder


@pytest.fixture(scope="module")
def loader_results(corpus, tmp_path_factory) -> dict[str, dict]:
    return run_real_loaders(CASES, corpus, tmp_path_factory.mktemp("loader_views_run"))


@pytest.fixture(scope="module")
def scanned(corpus) -> dict[str, dict]:
    code, report = scan_json(str(corpus))
    assert code == 1, report
    return {Path(a["path"]).name: a for a in report["targets"][0]["artefacts"]}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real_loader_runs_the_payload(case, loader_results):
    assert loader_results[case.id]["marker"], loader_results[case.id]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scan_blocks_it(case, scanned):
    art = scanned[case.file]
    blocking = [(f["rule_id"], f.get("callable")) for f in art["findings"]
                if f["severity"] in BLOCKING and f["kind"] == "threat" and f["rule_id"].startswith("MS-PKL")]
    seen = [(f["rule_id"], f["severity"]) for f in art["findings"]]
    assert art["verdict"] == "unsafe" and blocking, (art["format"], seen)
    assert any(c == "os.system" for _, c in blocking), blocking


def test_the_polyglots_are_real_containers_too(corpus):
    import h5py

    with h5py.File(corpus / "model.h5", "r") as f:
        assert f["dense/kernel"].shape == (2, 3)
    with tarfile.open(corpus / "weights.tar") as tf:
        assert tf.getmembers()[0].name.startswith("cos\nsystem")
