"""End to end from the CLI: loader versions x the formats a target holds, waivers, known-bad
hashes, and `sbom audit` of a BOM written before an advisory existed."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from advisories_helpers import build_dump, invoke, osv_record
from helpers.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    """Benign artefacts from the real libraries, one folder each: a .keras model (saved by keras,
    see data/README.md), a GGUF with a chat template (written by gguf), a PyTorch checkpoint."""
    import gguf
    import numpy as np

    root = tmp_path_factory.mktemp("artefacts")
    for name in ("keras", "gguf", "torch"):
        (root / name).mkdir()
    shutil.copy(DATA / "model.keras", root / "keras" / "model.keras")
    shutil.copy(ROOT / "fixtures" / "demo" / "pytorch_model.bin", root / "torch" / "pytorch_model.bin")
    writer = gguf.GGUFWriter(str(root / "gguf" / "model.gguf"), "llama")
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.add_tensor("t", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"keras": root / "keras", "gguf": root / "gguf", "torch": root / "torch"}


@pytest.fixture
def cache(tmp_path) -> dict[str, str]:
    return {"MODELSHIELD_CACHE": str(tmp_path / "cache")}


def scan(target: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    proc = invoke("scan", "--format", "json", str(target), *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def advisory_findings(report: dict, rule: str = "MS-ADV-001") -> dict[str, dict]:
    out = {}
    for target in report["targets"]:
        for f in target["findings"]:
            if f["rule_id"] == rule:
                for ident in f["evidence"]["ids"]:
                    out[ident] = f
    return out


def pins(tmp_path: Path, text: str) -> str:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return str(path)


def test_keras_archive_with_keras_3_8_0_reports_cve_2025_1550_with_fix_3_9_0(artefacts, tmp_path, cache):
    # The headline case runs the real console entry point in a fresh interpreter.
    proc = run_cli("scan", "--format", "json", str(artefacts["keras"]), "--requirements",
                   pins(tmp_path, "keras==3.8.0\n"), env=cache)
    assert "Traceback" not in proc.stderr
    code, report = proc.returncode, json.loads(proc.stdout)
    found = advisory_findings(report)
    assert code == 1
    f = found["CVE-2025-1550"]
    assert f["evidence"]["fix"] == "3.9.0" and f["evidence"]["version"] == "3.8.0"
    assert f["evidence"]["files"] == ["model.keras"] and f["evidence"]["package"] == "keras"
    assert {"GHSA-48g7-3x6r-xfhp", "PYSEC-2025-122"} <= set(f["evidence"]["aliases"])
    assert f["kind"] == "threat" and f["severity"] in ("high", "critical")
    assert sum(1 for x in report["targets"][0]["findings"] if "CVE-2025-1550" in x["evidence"].get("ids", [])) == 1
    assert report["runtime"] == [{"name": "keras", "version": "3.8.0", "source": "requirements.txt:1",
                                  "purl": "pkg:pypi/keras@3.8.0", "hashes": [], "license": None}]
    assert report["runtime_source"].startswith("requirements:")
    assert report["advisory_database"]["kind"] == "shipped"


def test_keras_archive_with_keras_3_12_0_is_not_reported(artefacts, tmp_path, cache):
    code, report, _ = scan(artefacts["keras"], "--requirements", pins(tmp_path, "keras==3.12.0\n"), env=cache)
    assert code == 0 and not advisory_findings(report)
    assert report["verdict"] == "clean"


@pytest.mark.parametrize("version,affected", [("0.2.71", True), ("0.2.72", False)])
def test_gguf_template_vs_llama_cpp_python(artefacts, tmp_path, cache, version, affected):
    code, report, _ = scan(artefacts["gguf"], "-r", pins(tmp_path, f"llama-cpp-python=={version}\n"), env=cache)
    found = advisory_findings(report)
    assert ("CVE-2024-34359" in found) is affected and code == (1 if affected else 0)
    if affected:
        assert found["CVE-2024-34359"]["evidence"]["fix"] == "0.2.72"
        assert found["CVE-2024-34359"]["severity"] == "critical"  # CVSS 3.1 base 9.6


@pytest.mark.parametrize("version,affected", [("2.5.1", True), ("2.5.1+cu121", True), ("2.6.0", False)])
def test_pytorch_checkpoint_vs_torch(artefacts, tmp_path, cache, version, affected):
    code, report, _ = scan(artefacts["torch"], "-r", pins(tmp_path, f"torch=={version}\n"), env=cache)
    found = advisory_findings(report)
    assert ("CVE-2025-32434" in found) is affected
    assert "CVE-2026-24747" in found  # < 2.10.0: still affected at 2.6.0
    assert code == 1
    if affected:
        assert found["CVE-2025-32434"]["evidence"]["fix"] == "2.6.0"


def test_vulnerable_loader_without_a_triggering_file_is_informational(artefacts, tmp_path, cache):
    code, report, _ = scan(artefacts["torch"], "-r", pins(tmp_path, "keras==3.8.0\ntorch==2.13.0\n"), env=cache)
    assert code == 0 and not advisory_findings(report)
    info = advisory_findings(report, "MS-ADV-002")
    assert "CVE-2025-1550" in info and info["CVE-2025-1550"]["kind"] == "info"


def test_unpinned_loader_is_inconclusive_never_guessed(artefacts, tmp_path, cache):
    code, report, _ = scan(artefacts["keras"], "-r", pins(tmp_path, "keras>=3.0\n"), env=cache)
    unknown = [f for f in report["targets"][0]["findings"] if f["rule_id"] == "MS-ADV-003"]
    assert code == 2 and len(unknown) == 1 and unknown[0]["kind"] == "inconclusive"
    assert "CVE-2025-1550" not in advisory_findings(report)


def test_ignore_vuln_and_policy_waivers_with_expiry(artefacts, tmp_path, cache):
    req = pins(tmp_path, "keras==3.10.0\n")  # affected by CVE-2025-8747 and CVE-2025-9906 only
    code, report, _ = scan(artefacts["keras"], "-r", req, "--ignore-vuln", "CVE-2025-8747",
                           "--ignore-vuln", "GHSA-36fq-jgmw-4r9c", env=cache)
    assert code == 0
    found = advisory_findings(report)
    assert found["CVE-2025-8747"]["suppressed"]["reason"] == "--ignore-vuln on the command line"
    policy = tmp_path / "modelshield.toml"
    policy.write_text("""
[[advisories.ignore]]
id = "CVE-2025-8747"
reason = "serving image pins keras; upgrade tracked in OPS-1"
expires = 2999-01-01
vex_justification = "requires_environment"

[[advisories.ignore]]
id = "cve-2025-9906"
reason = "old waiver"
expires = 2020-01-01
""")
    code, report, _ = scan(artefacts["keras"], "-r", req, "--policy", str(policy), env=cache)
    found = advisory_findings(report)
    assert found["CVE-2025-8747"]["suppressed"]["expires"] == "2999-01-01"
    assert found["CVE-2025-9906"]["suppressed"] is None and "expired on 2020-01-01" in found["CVE-2025-9906"]["message"]
    assert code == 1
    policy.write_text("[[advisories.ignore]]\nid = \"CVE-2025-8747\"\n")
    proc = invoke("scan", str(artefacts["keras"]), "--policy", str(policy), env=cache)
    assert proc.returncode == 2 and "reason" in proc.stderr and "Traceback" not in proc.stderr


def test_known_bad_hash_from_the_policy_is_critical(artefacts, tmp_path, cache):
    digest = hashlib.sha256((artefacts["torch"] / "pytorch_model.bin").read_bytes()).hexdigest()
    policy = tmp_path / "modelshield.toml"
    policy.write_text(f'[advisories.known_bad]\n"{digest}" = '
                      '{ source = "incident 42", reference = "https://example.invalid/42" }\n')
    code, report, _ = scan(artefacts["torch"], "-r", pins(tmp_path, "torch==2.13.0\n"), "--policy", str(policy),
                           env=cache)
    [hit] = [f for f in report["targets"][0]["artefacts"][0]["findings"] if f["rule_id"] == "MS-ADV-005"]
    assert code == 1 and hit["severity"] == "critical" and "incident 42" in hit["message"]


def test_current_environment_and_python_flag(artefacts, cache):
    # This process's environment is checked but is not the deployment's runtime (no Report.runtime).
    code, report, _ = scan(artefacts["keras"], env=cache)
    checked = report["advisory_database"]["checked_runtime"]
    assert checked["source"] == f"environment:{sys.executable}" and report["runtime"] == []
    assert any(p["name"] == "keras" for p in checked["packages"])
    code2, report2, _ = scan(artefacts["keras"], "--python", sys.executable, env=cache)
    assert report2["runtime_source"] == f"environment:{sys.executable}"
    assert [p["name"] for p in report2["runtime"]] == [p["name"] for p in checked["packages"]]
    proc = invoke("scan", str(artefacts["keras"]), "--python", "/nonexistent/python", env=cache)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_sarif_and_text_carry_the_advisory(artefacts, tmp_path, cache):
    req = pins(tmp_path, "keras==3.8.0\n")
    proc = invoke("scan", "--format", "sarif", str(artefacts["keras"]), "-r", req, env=cache)
    sarif = json.loads(proc.stdout)
    assert "MS-ADV-001" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    proc = invoke("scan", str(artefacts["keras"]), "-r", req, env=cache)
    assert "CVE-2025-1550" in proc.stdout and "3.9.0" in proc.stdout


def test_sbom_audit_reports_an_advisory_added_after_the_bom_was_written(artefacts, tmp_path, cache):
    bom = tmp_path / "model.cdx.json"
    proc = invoke("sbom", str(artefacts["keras"]), "-o", str(bom), env=cache)
    assert proc.returncode == 0, proc.stderr
    req = pins(tmp_path, "keras==3.12.0\n")
    proc = invoke("sbom", "audit", str(bom), "-r", req, "--format", "json", env=cache)
    assert proc.returncode == 0, proc.stderr
    assert not advisory_findings(json.loads(proc.stdout))
    # A record published later (imported from a dump): keras < 3.99.0, .keras archives.
    new = osv_record("GHSA-late-late-late", "keras", "3.0.0", "3.99.0", aliases=["CVE-2099-0001"],
                     summary="a keras advisory published after the BOM", ml={"formats": ["keras"], "trigger": "load"})
    dump = build_dump(tmp_path / "all.zip", [new])
    assert invoke("advisories", "import", str(dump), env=cache).returncode == 0
    proc = invoke("sbom", "audit", str(bom), "-r", req, "--format", "json", env=cache)
    assert proc.returncode == 1, proc.stderr
    found = advisory_findings(json.loads(proc.stdout))
    assert found["CVE-2099-0001"]["evidence"]["files"] == ["model.keras"]
    assert found["CVE-2099-0001"]["evidence"]["fix"] == "3.99.0"
    out = tmp_path / "audited.cdx.json"
    proc = invoke("sbom", "audit", str(bom), "-r", req, "--format", "cyclonedx", "-o", str(out), env=cache)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text())
    [vuln] = [v for v in doc["vulnerabilities"] if v["id"] == "CVE-2099-0001"]
    refs = [a["ref"] for a in vuln["affects"]]
    assert refs[0] == "pkg:pypi/keras@3.12.0" and any(r.endswith("#file:model.keras") for r in refs)
    assert vuln["recommendation"].startswith("Upgrade keras to 3.99.0")
    assert vuln["ratings"][0]["method"] == "CVSSv31" and vuln["ratings"][0]["score"] == 8.8
    assert {"id": "GHSA-late-late-late",
            "source": {"name": "GitHub Advisory Database",
                       "url": "https://github.com/advisories/GHSA-late-late-late"}} in vuln["references"]
    assert any(c.get("purl") == "pkg:pypi/keras@3.12.0" for c in doc["components"])
    assert doc["version"] == json.loads(bom.read_text())["version"] + 1
    assert invoke("sbom", "validate", str(out)).returncode == 0
    # Auditing the audited BOM replaces, never duplicates, the advisory entries.
    proc = invoke("sbom", "audit", str(out), "-r", req, "--format", "cyclonedx", env=cache)
    assert [v["id"] for v in json.loads(proc.stdout)["vulnerabilities"]].count("CVE-2099-0001") == 1


def test_sbom_audit_of_a_third_party_bom_with_file_hashes(tmp_path, cache):
    digest = "ab" * 32
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
           "metadata": {"component": {"type": "machine-learning-model", "name": "vendor-model", "bom-ref": "m",
                                      "components": [{"type": "file", "name": "weights/model.gguf", "bom-ref": "f1",
                                                      "hashes": [{"alg": "SHA-256", "content": digest}]}]}},
           "components": [{"type": "library", "name": "llama-cpp-python", "version": "0.2.60",
                           "purl": "pkg:pypi/llama-cpp-python@0.2.60", "bom-ref": "lib1"}]}
    bom = tmp_path / "vendor.cdx.json"
    bom.write_text(json.dumps(doc))
    proc = invoke("sbom", "audit", str(bom), "--format", "json", env=cache)
    assert proc.returncode == 1, proc.stderr
    found = advisory_findings(json.loads(proc.stdout))
    assert found["CVE-2024-34359"]["evidence"]["files"] == ["weights/model.gguf"]
    policy = tmp_path / "modelshield.toml"
    policy.write_text(f'[advisories.known_bad]\n"{digest}" = {{ source = "vendor recall" }}\n')
    proc = invoke("sbom", "audit", str(bom), "--policy", str(policy), "--format", "cyclonedx", env=cache)
    audited = json.loads(proc.stdout)
    ids = {v["id"] for v in audited["vulnerabilities"]}
    assert {"CVE-2024-34359", "MS-ADV-005"} <= ids
    [lib_vuln] = [v for v in audited["vulnerabilities"] if v["id"] == "CVE-2024-34359"]
    assert lib_vuln["affects"][0]["ref"] == "lib1" and lib_vuln["affects"][1]["ref"] == "f1"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = invoke("sbom", "audit", str(bad), env=cache)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_scan_sbom_turns_advisory_findings_into_loader_and_file_vulnerabilities(artefacts, tmp_path, cache):
    bom = tmp_path / "deploy.cdx.json"
    req = pins(tmp_path, "keras==3.8.0\n")
    proc = invoke("scan", str(artefacts["keras"]), "-r", req, "--sbom", str(bom), "--phase", "deployment",
                  "--ignore-vuln", "CVE-2025-8747", env=cache)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(bom.read_text())
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    v = vulns["CVE-2025-1550"]
    assert v["affects"][0] == {"ref": "pkg:pypi/keras@3.8.0", "versions": [{"status": "affected", "version": "3.8.0"}]}
    assert v["affects"][1]["ref"].endswith("#file:model.keras")
    assert v["ratings"][0]["method"] == "CVSSv4" and v["ratings"][0]["score"] == 7.3
    assert v["recommendation"] == "Upgrade keras to 3.9.0 or later."
    assert {r["id"] for r in v["references"]} == {"GHSA-48g7-3x6r-xfhp", "PYSEC-2025-122"}
    # --ignore-vuln without a justification accepts the risk in the deployment VEX.
    assert vulns["CVE-2025-8747"]["analysis"]["state"] == "exploitable"
    assert vulns["CVE-2025-8747"]["analysis"]["response"] == ["will_not_fix"]
    assert invoke("sbom", "validate", str(bom)).returncode == 0
