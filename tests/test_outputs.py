"""JSON (our versioned schema), SARIF 2.1.0 (the official schema) and text outputs, from the real CLI."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from helpers.cli import invoke, run_cli

SCHEMAS = Path(__file__).parent / "schemas"
EVIL = b"cos\nsystem\n(S'echo MODELSHIELD'\ntR."  # protocol 0: os.system("echo ...")


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """A folder with an unsafe, an inconclusive, an inventoried file and an escaping symlink."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "notes.txt").write_text("hello\n")
    (root / "weights.bin").write_bytes(b"\x00\x01no known format here" * 10)
    (root / "model.tflite").write_bytes(b"\x00\x01no known format here" * 10)
    (root / "evil.pkl").write_bytes(EVIL)
    (tmp_path / "outside.txt").write_text("x")
    (root / "link.bin").symlink_to(tmp_path / "outside.txt")
    return root


def report_schema() -> dict:
    text = (resources.files("modelshield.scanner") / "schemas" / "report.schema.json").read_text()
    return json.loads(text)


def test_json_report_matches_its_shipped_schema(mixed_folder: Path, tmp_path: Path):
    out = tmp_path / "report.json"
    proc = invoke("scan", str(mixed_folder), "--format", "json", "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, report_schema(), cls=jsonschema.Draft202012Validator)
    arts = {a["path"]: a for a in report["targets"][0]["artefacts"]}
    assert arts["link.bin"]["status"] == "skipped"
    assert arts["model.tflite"]["verdict"] == "inconclusive"  # a loader modelshield cannot follow
    assert arts["weights.bin"]["status"] == "inventoried"  # torch.load refuses it at offset 0 (issue 20)
    assert arts["notes.txt"]["verdict"] == "clean"
    assert report["summary"]["skipped"] == 1 and report["summary"]["skip_reasons"] == {"symlink outside the target": 1}


def test_schema_rejects_a_report_missing_hashes(mixed_folder: Path):
    proc = invoke("scan", str(mixed_folder), "--format", "json")
    report = json.loads(proc.stdout)
    del report["targets"][0]["artefacts"][0]["sha512"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, report_schema(), cls=jsonschema.Draft202012Validator)


def test_sarif_validates_against_the_official_schema(mixed_folder: Path, tmp_path: Path):
    out = tmp_path / "scan.sarif"
    proc = invoke("scan", str(mixed_folder), "--format", "sarif", "-o", str(out), "--fail-on", "critical")
    sarif = json.loads(out.read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema, cls=jsonschema.Draft4Validator)
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert "MS-GEN-004" in rule_ids
    # --fail-on critical: the high symlink finding no longer blocks, but the protocol-0 os.system
    # pickle is critical (1) once the pickle engine lands; before that it is inconclusive (2).
    assert proc.returncode in (1, 2)
    proc = invoke("scan", str(mixed_folder / "model.tflite"), str(mixed_folder / "link.bin"), "--fail-on", "critical")
    assert proc.returncode == 2  # an unanalysable file is never a pass, even beside a non-blocking finding


def test_text_output_has_verdict_lines_findings_and_summary(mixed_folder: Path):
    proc = run_cli("scan", str(mixed_folder))
    lines = proc.stdout.splitlines()
    assert any(line.strip().startswith("inconclusive") and "model.tflite" in line for line in lines)
    assert "link.bin:" in proc.stdout and "MS-GEN-004" in proc.stdout
    assert "files:" in proc.stdout and "analysed" in proc.stdout and "skipped" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("verdict: unsafe")
    assert "\x1b[" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_quiet_shows_only_blocking_findings(mixed_folder: Path):
    proc = invoke("scan", str(mixed_folder), "--quiet")
    assert "MS-GEN-004" in proc.stdout
    assert "MS-GEN-001" not in proc.stdout  # info finding hidden
    assert "notes.txt" not in proc.stdout


def test_unwritable_output_path_is_one_line_error(mixed_folder: Path, tmp_path: Path):
    proc = invoke("scan", str(mixed_folder), "-o", str(tmp_path / "missing-dir" / "r.json"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr


def test_sarif_uris_are_relative_to_the_working_folder_and_fingerprinted(mixed_folder: Path):
    proc = invoke("scan", "repo", "--format", "sarif", cwd=mixed_folder.parent)
    run = json.loads(proc.stdout)["runs"][0]
    uris = {a["location"]["uri"] for a in run["artifacts"]}
    assert "repo/evil.pkl" in uris and "repo/link.bin" in uris, uris
    prints = [r["partialFingerprints"]["modelshieldFinding/v1"] for r in run["results"]]
    assert len(prints) == len(set(prints))  # one per distinct problem
    again = json.loads(invoke("scan", "repo", "--format", "sarif", cwd=mixed_folder.parent).stdout)["runs"][0]
    assert prints == [r["partialFingerprints"]["modelshieldFinding/v1"] for r in again["results"]]
