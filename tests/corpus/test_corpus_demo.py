"""The shipped demo (`modelshield scan fixtures/demo`, the README's first command): small, reproducible
from fixtures/make_demo.py, one unsafe pickle, everything else clean, exit code 1."""
from __future__ import annotations

from corpus_helpers import ROOT

from helpers.cli import run_cli, scan_json
from fixtures import make_demo

DEMO = ROOT / "fixtures" / "demo"
EXPECTED = {"config.json", "model.safetensors", "pytorch_model.bin", "malicious/evil.pkl"}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_demo_is_committed_small_and_regenerates_byte_for_byte(tmp_path):
    committed = _files(DEMO)
    assert set(committed) == EXPECTED
    assert sum(len(v) for v in committed.values()) < 200_000
    make_demo.build(tmp_path)
    assert _files(tmp_path) == committed


def test_demo_scan_is_unsafe_only_because_of_the_malicious_pickle():
    code, data = scan_json(str(DEMO))
    assert code == 1
    verdicts = {a["path"]: a["verdict"] for t in data["targets"] for a in t["artefacts"]}
    assert verdicts == {"config.json": "clean", "model.safetensors": "clean", "pytorch_model.bin": "clean",
                        "malicious/evil.pkl": "unsafe"}, verdicts
    evil = next(a for t in data["targets"] for a in t["artefacts"] if a["path"] == "malicious/evil.pkl")
    rules = {f["rule_id"] for f in evil["findings"]}
    assert {"MS-PKL-001", "MS-PKL-003"} <= rules, rules


def test_readme_first_command_from_the_repo_root():
    proc = run_cli("scan", "fixtures/demo", cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "evil.pkl" in proc.stdout
