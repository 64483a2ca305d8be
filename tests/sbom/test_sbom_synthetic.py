"""BOMs from synthetic reports: Hub provenance (purl, lineage, metrics), VEX per phase, validity."""
from __future__ import annotations

import json

import pytest

from modelshield.sbom import build_bom, schema_errors
from modelshield.scanner.findings import (Artefact, Finding, Kind, Location, Report, Severity, Status,
                                          Suppression, TargetResult)

SHA = "0123456789abcdef0123456789ABCDEF01234567"
CARD = {"license": "other", "license_name": "acme-research", "license_link": "https://acme.example/licence",
        "pipeline_tag": "text-generation", "datasets": ["acme/corpus"], "base_model": "meta/llama-base",
        "base_model_relation": "finetune", "language": ["en", "fr"],
        "model-index": [{"name": "tiny", "results": [{"task": {"type": "text-generation"},
                         "dataset": {"name": "HellaSwag", "type": "hellaswag", "split": "validation"},
                         "metrics": [{"type": "accuracy", "value": 0.612}]}]}]}


def _finding(rule: str, kind: Kind, path: str, waiver: Suppression | None = None) -> Finding:
    return Finding(rule_id=rule, severity=Severity.CRITICAL if kind is Kind.THREAT else Severity.MEDIUM,
                   kind=kind, message=f"{rule} message", title=f"{rule} title", location=Location(path=path, offset=2),
                   callable="os.system" if kind is Kind.THREAT else None, cwe=["CWE-502"],
                   atlas=["AML.T0011.000"], recommendation="Do not load it.", suppressed=waiver)


def _report() -> Report:
    waiver = Suppression(reason="only safetensors are loaded in production", expires="2027-01-31",
                         vex_state="not_affected", vex_justification="code_not_reachable")
    pkl = Artefact(path="pytorch_model.bin", size=10, sha256="a" * 64, sha512="b" * 128, format="torch-zip",
                   findings=[_finding("MS-TEST-001", Kind.THREAT, "pytorch_model.bin", waiver),
                             _finding("MS-TEST-002", Kind.THREAT, "pytorch_model.bin")])
    st = Artefact(path="model.safetensors", size=20, sha256="c" * 64, sha512="d" * 128, format="safetensors",
                  properties={"safetensors": {"parameter_count": 1234}})
    cfg = Artefact(path="config.json", size=5, sha256="e" * 64, sha512="f" * 128, format="hf_config",
                   status=Status.ANALYSED,
                   properties={"hf_config": {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}})
    prov = {"source": "huggingface", "endpoint": "https://huggingface.co", "repo_id": "acme/tiny",
            "repo_type": "model", "revision": "main", "commit": SHA, "author": "acme", "private": False,
            "gated": False, "disabled": False, "pipeline_tag": "text-generation", "library_name": "transformers",
            "tags": ["base_model:finetune:meta/llama-base"], "card_data": CARD, "config": None,
            "files": [{"path": "model.safetensors", "size": 20, "blob_id": "9" * 40, "lfs_sha256": "c" * 64,
                       "downloaded": True},
                      {"path": "big.gguf", "size": 10**10, "blob_id": "8" * 40, "lfs_sha256": "7" * 64,
                       "downloaded": False}]}
    target = TargetResult(target="hf://acme/tiny", kind="hf", artefacts=[pkl, st, cfg], provenance=prov)
    return Report(targets=[target], tool_version="0.1.0")


@pytest.mark.parametrize("version", ["1.6", "1.7"])
@pytest.mark.parametrize("phase", ["development", "deployment"])
def test_hub_model_bom(version, phase, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    doc = build_bom(_report(), phase=phase, spec_version=version, reproducible=True)
    assert schema_errors(doc, version) == []
    model = doc["metadata"]["component"]
    assert model["purl"] == f"pkg:huggingface/acme/tiny@{SHA.lower()}" == model["bom-ref"]
    assert model["version"] == SHA.lower() and model["group"] == "acme" and model["supplier"]["name"] == "acme"
    assert model["licenses"] == [{"license": {"name": "acme-research", "url": "https://acme.example/licence",
                                              "acknowledgement": "declared"}}]
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert refs["model-card"] == f"https://huggingface.co/acme/tiny/blob/{SHA.lower()}/README.md"
    params = model["modelCard"]["modelParameters"]
    assert params["modelArchitecture"] == "LlamaForCausalLM" and params["architectureFamily"] == "llama"
    assert params["task"] == "text-generation" and params["datasets"] == [{"ref": "urn:hf:dataset:acme/corpus"}]
    assert model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "accuracy", "value": "0.612", "slice": "HellaSwag / validation"}]
    (ancestor,) = model["pedigree"]["ancestors"]
    assert ancestor["purl"] == "pkg:huggingface/meta/llama-base"
    assert {"name": "modelshield:base-model:relation", "value": "finetune"} in ancestor["properties"]
    props = [(p["name"], p["value"]) for p in model["properties"]]
    assert ("cdx:ai-ml:model:language", "en,fr") in props and ("cdx:ai-ml:model:parameter:count", "1234") in props
    assert ("modelshield:parameter-count", "1234") in props
    files = {c["name"]: c for c in model["components"]}
    assert {h["alg"]: h["content"] for h in files["big.gguf"]["hashes"]} == {"SHA-256": "7" * 64}
    assert all(h["content"] != "9" * 40 for c in files.values() for h in c.get("hashes", []))  # never blob_id
    st_props = {p["name"]: p["value"] for p in files["model.safetensors"]["properties"]}
    assert st_props["modelshield:hub:lfs-sha256"] == "match"
    assert doc["compositions"][0]["aggregate"] == "incomplete"  # big.gguf was not downloaded
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert {"urn:hf:dataset:acme/corpus", "pkg:huggingface/meta/llama-base"} <= deps[model["bom-ref"]]
    assert files["pytorch_model.bin"]["bom-ref"] in deps[model["bom-ref"]]

    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert set(vulns) == {"MS-TEST-001", "MS-TEST-002"}
    for v in vulns.values():
        assert v["affects"] == [{"ref": files["pytorch_model.bin"]["bom-ref"]}] and v["cwes"] == [502]
        assert v["ratings"][0]["severity"] == "critical"
    assert vulns["MS-TEST-002"]["analysis"] == {"state": "exploitable", "firstIssued": "2023-11-14T22:13:20+00:00",
                                                "lastUpdated": "2023-11-14T22:13:20+00:00"}
    waived = vulns["MS-TEST-001"]["analysis"]
    if phase == "deployment":
        assert waived["state"] == "not_affected" and waived["justification"] == "code_not_reachable"
        assert "only safetensors are loaded" in waived["detail"] and "2027-01-31" in waived["detail"]
        # No runtime was named: nothing from modelshield's own environment, and the notes say so.
        assert not [c for c in doc["components"] if c["type"] == "library"]
        notes = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:note"]
        assert any(n.startswith("runtime loader libraries: not listed") for n in notes)
        assert {"phase": "post-build"} in doc["metadata"]["lifecycles"]
    else:
        assert waived["state"] == "exploitable" and "proposed waiver" in waived["detail"]
        assert not [c for c in doc["components"] if c["type"] == "library"]
    if version == "1.7":
        notes = {p: c["attributedTo"] for c in doc["citations"] for p in c["pointers"]}
        assert notes["/metadata/component/modelCard/modelParameters/modelArchitecture"].endswith("#file:config.json")
    text = json.dumps(doc).lower()
    assert "compliant" not in text and "conformant" not in text


def test_multiple_targets_and_errors_stay_valid() -> None:
    report = _report()
    report.targets.append(TargetResult(target="./missing", error="no such file or directory"))
    doc = build_bom(report, spec_version="1.7")
    assert schema_errors(doc) == []
    assert "component" not in doc["metadata"]
    assert len([c for c in doc["components"] if c["type"] == "machine-learning-model"]) == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_bom(_report(), phase="operation")
    with pytest.raises(ValueError):
        build_bom(_report(), spec_version="1.5")
