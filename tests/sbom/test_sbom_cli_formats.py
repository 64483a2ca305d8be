"""`modelshield sbom` from the command line: SPDX 3 output, end-of-life BOMs, attribution options."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from modelshield.cli import app


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "tiny"
    root.mkdir()
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(root / "model.safetensors"))
    (root / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": "gelu"}))
    (root / "README.md").write_text("---\nlicense: mit\ndatasets: [acme/corpus]\n---\n# Tiny\n\nA model.\n")
    return root


def _run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, ["sbom", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_spdx3_output_from_the_cli(model, tmp_path) -> None:
    out = tmp_path / "tiny.spdx.json"
    result = _run(str(model), "--format", "spdx3", "-o", str(out), "--supplier", "Acme",
                  "--author", "Jane Doe <jane@acme.example>", env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert result.exit_code == 0, result.output
    assert "SPDX 3.0.1" in result.stderr
    doc = json.loads(out.read_text())
    graph = {item.get("spdxId") or item.get("@id"): item for item in doc["@graph"]}
    kinds = sorted({item["type"] for item in doc["@graph"]})
    assert {"ai_AIPackage", "dataset_DatasetPackage", "software_File", "Relationship", "SpdxDocument",
            "software_Sbom", "Person", "Organization", "simplelicensing_LicenseExpression"} <= set(kinds)
    [pkg] = [i for i in doc["@graph"] if i["type"] == "ai_AIPackage"]
    assert pkg["name"] == "Tiny" and graph[pkg["suppliedBy"]]["name"] == "Acme"
    assert {"key": "hidden_act", "value": "gelu", "type": "DictionaryEntry"} in pkg["ai_hyperparameter"]
    rels = {(r["relationshipType"], graph[r["from"]]["name"]) for r in doc["@graph"] if r["type"] == "Relationship"}
    assert {("contains", "Tiny"), ("trainedOn", "Tiny"), ("hasDeclaredLicense", "Tiny")} <= rels
    files = [i for i in doc["@graph"] if i["type"] == "software_File"]
    assert all({h["algorithm"] for h in f["verifiedUsing"]} == {"sha256", "sha512"} for f in files)
    [person] = [i for i in doc["@graph"] if i["type"] == "Person"]
    assert person["externalIdentifier"][0]["identifier"] == "jane@acme.example"
    [document] = [i for i in doc["@graph"] if i["type"] == "SpdxDocument"]
    # A local folder has no release time or download location: the AI profile is not claimed,
    # and the comment lists what is missing instead of inventing it.
    assert "ai" not in document["profileConformance"] and "releaseTime NoAssertion" in document["comment"]
    assert "compliant" not in out.read_text().lower() and "conformant" not in out.read_text().lower()

    result = _run(str(model), "--format", "spdx3", "--reproducible", "-o", str(tmp_path / "x.json"),
                  env={"SOURCE_DATE_EPOCH": None})
    assert result.exit_code == 2 and "set SOURCE_DATE_EPOCH" in result.stderr and "Traceback" not in result.output


def test_end_of_life_bom_records_the_decision(model, tmp_path) -> None:
    out = tmp_path / "eol.json"
    result = _run(str(model), "--phase", "end-of-life", "--decision", "retired, weights destroyed", "-o", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["metadata"]["lifecycles"][0] == {"phase": "decommission"}
    assert doc["metadata"]["lifecycles"][1]["name"] == "etsi-en-304-223:end-of-life"
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert props["modelshield:decommission:decision"] == "retired, weights destroyed"
    retired = doc["metadata"]["component"]["components"]
    assert retired and all({h["alg"] for h in f["hashes"]} == {"SHA-256", "SHA-512"} for f in retired)
    result = _run(str(model), "--phase", "end-of-life", "-o", str(tmp_path / "none.json"))
    assert result.exit_code == 2 and "--decision" in result.stderr and not (tmp_path / "none.json").exists()


def test_attribution_options_and_notes(model, tmp_path) -> None:
    out = tmp_path / "bom.json"
    result = _run(str(model), "--supplier", "Acme", "--manufacturer", "https://acme.example",
                  "--author", "Jane Doe <jane@acme.example>", "-o", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["metadata"]["authors"] == [{"name": "Jane Doe", "email": "jane@acme.example"}]
    comp = doc["metadata"]["component"]
    assert comp["supplier"] == {"name": "Acme"} and comp["manufacturer"] == {"url": ["https://acme.example"]}
    notes = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:note"]
    assert not any(n.startswith(("supplier of", "manufacturer of", "BOM author")) for n in notes)
    assert any(n.startswith("version of model Tiny") for n in notes)
    result = _run(str(model), "--manufacturer", "acme.example", "-o", str(tmp_path / "bad.json"))
    assert result.exit_code == 2 and "takes a URL" in result.stderr


def test_deployment_runtime_comes_from_what_the_user_names(model, tmp_path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("safetensors==0.4.1 --hash=sha256:" + "ab" * 32 + "\ntransformers==4.30.0\nnumpy>=1.20\n")
    out = tmp_path / "dep.json"
    result = _run(str(model), "--phase", "deployment", "-r", str(req), "-o", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    libs = {c["name"]: c for c in doc["components"] if c["type"] == "library"}
    assert set(libs) == {"safetensors", "transformers", "numpy"}  # exactly the named ones, not this environment
    st = libs["safetensors"]
    assert st["version"] == "0.4.1" and st["purl"] == "pkg:pypi/safetensors@0.4.1"
    assert st["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    props = {p["name"]: p["value"] for p in st["properties"]}
    assert props["modelshield:role"] == "loader"
    assert props["modelshield:runtime:source"].startswith("requirements.txt:1")
    assert "version" not in libs["numpy"]  # unpinned: never guessed
    model_ref = doc["metadata"]["component"]["bom-ref"]
    deps = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    assert st["bom-ref"] in deps[model_ref]  # the model's loader (it holds a safetensors file)
    notes = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:note"]
    assert not any(n.startswith("runtime loader libraries") for n in notes)
