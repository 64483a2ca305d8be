"""No fixture is a fake: the real loaders, run in subprocesses, execute every technique's marker payload.

One subprocess per loader family (pickle, torch, joblib, numpy, extract-then-load), all started
at once; each writes which marker files appeared.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from corpus_helpers import ROOT, attack_dir

from fixtures import pickle_attacks
from fixtures.run_loaders import family_of

FAMILIES = ("pickle", "torch", "joblib", "numpy", "archive")
MAX_NOT_RUNNABLE = 5


@pytest.fixture(scope="module")
def loader_results(tmp_path_factory):
    corpus = attack_dir(tmp_path_factory)
    work = tmp_path_factory.mktemp("loaders")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    procs = {}
    for family in FAMILIES:
        cwd = work / family
        cwd.mkdir()
        procs[family] = subprocess.Popen(
            [sys.executable, str(ROOT / "fixtures" / "run_loaders.py"), str(corpus), family, str(cwd / "result.json")],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results, failures = {}, {}
    for family, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        if proc.returncode != 0:
            failures[family] = err.decode(errors="replace")[-2000:]
            continue
        results.update(json.loads((work / family / "result.json").read_text()))
    assert not failures, failures
    return results


def test_corpus_is_large_and_distinct():
    techs = pickle_attacks.techniques()
    assert len(techs) >= 45
    assert len({t.id for t in techs}) == len(techs)
    assert len({t.file for t in techs}) == len(techs)
    for t in techs:
        assert t.description and t.severity in ("critical", "high") and t.rules, t.id
        assert family_of(t.loader) in FAMILIES, t.loader


def test_few_techniques_cannot_run_here_and_each_says_why():
    skipped = [t for t in pickle_attacks.techniques() if t.runnable is not None]
    assert len(skipped) <= MAX_NOT_RUNNABLE, [t.id for t in skipped]
    assert all(len(t.runnable) > 20 for t in skipped)


def test_every_runnable_technique_executes_its_marker(loader_results):
    runnable = [t for t in pickle_attacks.techniques() if t.runnable is None]
    assert sorted(loader_results) == sorted(t.id for t in runnable)
    missing = {tid: r["error"] for tid, r in loader_results.items() if not r["marker"]}
    assert not missing, missing


def test_each_family_proves_something(loader_results):
    by_family = {}
    for t in pickle_attacks.techniques():
        if t.runnable is None:
            by_family.setdefault(family_of(t.loader), []).append(loader_results[t.id]["marker"])
    assert set(by_family) == set(FAMILIES)
    assert all(all(v) for v in by_family.values())


def test_markers_come_only_from_the_payloads(tmp_path):
    """Control: the harness itself creates no marker for a benign pickle."""
    import pickle

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "benign.pkl").write_bytes(pickle.dumps({"a": 1}))
    (corpus / "manifest.json").write_text(json.dumps([{"id": "control", "file": "benign.pkl", "loader": "pickle",
                                                        "runnable": None, "setup": None}]))
    proc = subprocess.run([sys.executable, str(ROOT / "fixtures" / "run_loaders.py"), str(corpus), "pickle",
                           str(tmp_path / "r.json")], cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result == {"control": {"marker": False, "error": None}}


def test_docs_table_lists_every_technique_and_benign_artefact():
    from fixtures import benign_models

    doc = (ROOT / "docs" / "corpus.md").read_text()
    missing = [t.id for t in pickle_attacks.techniques() if f"| `{t.id}` |" not in doc]
    missing += [b.id for b in benign_models.artefacts() if f"| `{b.id}` |" not in doc]
    assert not missing, f"regenerate the tables of docs/corpus.md: {missing}"
