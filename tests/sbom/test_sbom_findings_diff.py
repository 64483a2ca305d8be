"""A malicious pickle's BOM, `sbom diff` on a flipped byte, --from-bom drift, reproducible output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import run_cli
from typer.testing import CliRunner

from modelshield import scan
from modelshield.cli import app

# PROTO 2, GLOBAL 'os system', BINUNICODE 'echo MODELSHIELD_MARKER', BINPUT 0, TUPLE1, REDUCE, STOP
PAYLOAD = b"echo MODELSHIELD_MARKER"
MALICIOUS = (b"\x80\x02cos\nsystem\nX" + len(PAYLOAD).to_bytes(4, "little") + PAYLOAD + b"q\x00\x85R.")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("malicious")
    (root / "model.pkl").write_bytes(MALICIOUS)
    (root / "README.md").write_text("---\nlicense: mit\npipeline_tag: text-classification\n---\n# Evil\n")
    (root / "weights.bin").write_bytes(bytes(range(256)) * 4)
    return root


class _Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def cli(*args: str, env: dict | None = None) -> _Result:
    """The real CLI in-process (each subprocess pays ~3 s importing the schema validators)."""
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return _Result(result.exit_code, result.stdout, result.stderr)


def _sbom(*args: str, env: dict | None = None) -> tuple[int, str]:
    proc = cli("sbom", *args, env=env)
    return proc.returncode, proc.stderr


def test_findings_become_vulnerabilities_on_the_right_file(model_dir, tmp_path) -> None:
    out = tmp_path / "dev.json"
    code, err = _sbom(str(model_dir), "-o", str(out), "--spec-version", "1.7")
    assert code == 0, err
    doc = json.loads(out.read_text())
    files = {c["bom-ref"]: c["name"] for c in doc["metadata"]["component"]["components"]}
    report = scan(str(model_dir))
    pkl = next(a for a in report.artefacts if a.path == "model.pkl")
    expected = sorted(f.rule_id for f in pkl.findings if f.kind.value != "info")
    assert expected, "the scanner must say something about a pickle calling os.system"
    on_pkl = [v for v in doc["vulnerabilities"] if files.get(v["affects"][0]["ref"]) == "model.pkl"]
    assert sorted(v["id"] for v in on_pkl) == expected
    for vuln in on_pkl:
        assert vuln["source"]["name"] == "modelshield" and vuln["ratings"][0]["severity"]
        assert vuln["analysis"]["state"] in ("exploitable", "in_triage")
        assert vuln["description"]
    threats = [f for f in pkl.findings if f.kind.value == "threat"]
    for f in threats:  # once the pickle analysis names the callable, the BOM carries it
        vuln = next(v for v in on_pkl if v["id"] == f.rule_id)
        assert vuln["analysis"]["state"] == "exploitable"
        props = {p["name"]: p["value"] for p in vuln.get("properties", [])}
        if f.callable:
            assert props["modelshield:callable"] == f.callable
    assert not [v for v in doc["vulnerabilities"] if files.get(v["affects"][0]["ref"]) == "README.md"]


def test_diff_catches_a_flipped_byte_and_deployment_calls_it_out(model_dir, tmp_path) -> None:
    dev = tmp_path / "dev.json"
    assert _sbom(str(model_dir), "-o", str(dev))[0] == 0
    release = tmp_path / "release"
    release.mkdir()
    for p in model_dir.iterdir():
        (release / p.name).write_bytes(p.read_bytes())
    same = tmp_path / "same.json"
    assert _sbom(str(release), "-o", str(same))[0] == 0
    proc = run_cli("sbom", "diff", str(dev), str(same))  # the real entry point once
    assert proc.returncode == 0 and "drift: none" in proc.stdout, proc.stdout + proc.stderr

    data = bytearray((release / "weights.bin").read_bytes())
    data[100] ^= 0x01
    (release / "weights.bin").write_bytes(bytes(data))
    dep = tmp_path / "deploy.json"
    code, err = _sbom(str(release), "--phase", "deployment", "--from-bom", str(dev), "-o", str(dep))
    assert code == 0 and "1 file(s) changed since the development BOM: weights.bin" in err
    doc = json.loads(dep.read_text())
    dev_doc = json.loads(dev.read_text())
    link = next(r for r in doc["externalReferences"] if r["type"] == "bom")
    assert link["url"] == f"urn:cdx:{dev_doc['serialNumber'][len('urn:uuid:'):]}/1"
    props = [p for p in doc["metadata"]["properties"] if p["name"] == "modelshield:drift:changed"]
    assert [p["value"] for p in props] == ["weights.bin"]
    assert {"phase": "post-build"} in doc["metadata"]["lifecycles"]

    proc = cli("sbom", "diff", str(dev), str(dep), "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert [c["file"] for c in result["changed"]] == ["weights.bin"] and result["drifted"] is True
    assert result["added"] == [] and result["removed"] == []


def test_diff_reports_new_findings_and_errors(model_dir, tmp_path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "weights.bin").write_bytes((model_dir / "weights.bin").read_bytes())
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert _sbom(str(clean), "-o", str(old))[0] == 0
    assert _sbom(str(model_dir), "-o", str(new))[0] == 0
    proc = cli("sbom", "diff", str(old), str(new))
    assert proc.returncode == 1
    assert "added    model.pkl" in proc.stdout and "new finding" in proc.stdout and "in model.pkl" in proc.stdout
    (tmp_path / "junk.json").write_text("{not json")
    assert cli("sbom", "diff", str(old), str(tmp_path / "junk.json")).returncode == 2
    assert cli("sbom", "validate", str(tmp_path / "junk.json")).returncode == 2
    assert cli("sbom", "validate", str(tmp_path / "missing.json")).returncode == 2
    proc = cli("sbom", "validate", str(old))
    assert proc.returncode == 0 and "valid CycloneDX 1.6" in proc.stdout


def test_reproducible_mode_is_byte_identical(model_dir, tmp_path) -> None:
    outs = []
    for n, env in enumerate([None, None, {"SOURCE_DATE_EPOCH": "1700000000"}, {"SOURCE_DATE_EPOCH": "1700000000"}]):
        out = tmp_path / f"r{n}.json"
        args = [str(model_dir), "-o", str(out), "--spec-version", "1.7"] + (["--reproducible"] if env is None else [])
        assert _sbom(*args, env=env)[0] == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[2] == outs[3] and outs[0] != outs[2]
    doc = json.loads(outs[2])
    assert doc["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    normal = tmp_path / "normal.json"
    assert _sbom(str(model_dir), "-o", str(normal))[0] == 0
    assert json.loads(normal.read_text())["serialNumber"] != json.loads(outs[0])["serialNumber"]


def test_scan_sbom_single_pass(model_dir, tmp_path) -> None:
    out = tmp_path / "scan.cdx.json"
    proc = run_cli("scan", str(model_dir), "--sbom", str(out), "--format", "json")
    assert "Traceback" not in proc.stderr
    doc = json.loads(out.read_text())
    report = json.loads(proc.stdout)
    hashes = {a["path"]: a["sha512"] for a in report["targets"][0]["artefacts"]}
    files = {c["name"]: {h["alg"]: h["content"] for h in c["hashes"]}
             for c in doc["metadata"]["component"]["components"]}
    assert {k: v["SHA-512"] for k, v in files.items()} == hashes
    assert cli("sbom", "validate", str(out)).returncode == 0
