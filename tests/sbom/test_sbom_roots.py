"""One component per model root: folders with several models, stray files, HF layouts, and the
BOM's honesty fixes (relative targets, reproducible bytes, VEX of waivers, leaf dependencies)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from modelshield import Policy, scan
from modelshield.cli import app
from modelshield.sbom import build_bom, schema_errors
from modelshield.sbom.roots import split
from modelshield.scanner.findings import Artefact, TargetResult

# PROTO 2, GLOBAL 'os system', BINUNICODE 'echo MODELSHIELD_MARKER', BINPUT 0, TUPLE1, REDUCE, STOP:
# the same technique whose marker tests/sbom/test_sbom_findings_diff.py and the corpus prove.
PAYLOAD = b"echo MODELSHIELD_MARKER"
MALICIOUS = b"\x80\x02cos\nsystem\nX" + len(PAYLOAD).to_bytes(4, "little") + PAYLOAD + b"q\x00\x85R."


def _model(folder: Path, card: str | None, seed: float, config: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.full((2, 3), seed, dtype=np.float32)}, str(folder / "model.safetensors"))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if card is not None:
        (folder / "README.md").write_text(card)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("monorepo") / "models"
    _model(root / "a", "---\nlicense: mit\npipeline_tag: text-classification\n---\n# Model A\n\nFirst.\n", 1.0,
           {"model_type": "bert", "architectures": ["BertModel"]})
    _model(root / "b", "---\nlicense: apache-2.0\n---\n# Model B\n\nSecond.\n", 2.0, {"model_type": "gpt2"})
    (root / "mal").mkdir()
    (root / "mal" / "model.pkl").write_bytes(MALICIOUS)
    (root / "stray.pkl").write_bytes(MALICIOUS)
    (root / "notes.txt").write_text("release notes\n")
    return root


def _walk(comp: dict):
    yield comp
    for sub in comp.get("components") or []:
        yield from _walk(sub)


def _props(comp: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in comp.get("properties") or []:
        out.setdefault(p["name"], []).append(p["value"])
    return out


def test_two_models_and_a_stray_pickle_are_three_components(two_models) -> None:
    doc = build_bom(scan(str(two_models)), spec_version="1.7")
    assert schema_errors(doc, "1.7") == []
    subject = doc["metadata"]["component"]
    assert subject["type"] == "file" and subject["name"] == "models"
    models = {c["name"]: c for c in subject["components"] if c["type"] == "machine-learning-model"}
    assert set(models) == {"Model A", "Model B", "mal"}
    files = {name: sorted(f["name"] for f in comp["components"]) for name, comp in models.items()}
    assert files == {"Model A": ["a/README.md", "a/config.json", "a/model.safetensors"],
                     "Model B": ["b/README.md", "b/config.json", "b/model.safetensors"], "mal": ["mal/model.pkl"]}
    strays = sorted(c["name"] for c in subject["components"] if c["type"] == "file")
    assert strays == ["notes.txt", "stray.pkl"]
    # Each model carries its own card facts; nothing leaks from the first card to the others.
    assert models["Model A"]["licenses"] == [{"license": {"id": "MIT", "acknowledgement": "declared"}}]
    assert models["Model B"]["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]
    assert "licenses" not in models["mal"] and "modelCard" not in models["mal"]
    assert models["Model A"]["modelCard"]["modelParameters"]["task"] == "text-classification"
    assert models["Model A"]["modelCard"]["modelParameters"]["modelArchitecture"] == "BertModel"
    assert models["Model B"]["modelCard"]["modelParameters"]["architectureFamily"] == "gpt2"
    assert "task" not in models["Model B"]["modelCard"]["modelParameters"]
    verdicts = {name: _props(c)["modelshield:verdict"] for name, c in models.items()}
    assert verdicts == {"Model A": ["clean"], "Model B": ["clean"], "mal": ["unsafe"]}
    assert _props(subject)["modelshield:verdict"] == ["unsafe"] and _props(subject)["modelshield:models"] == ["3"]
    # Findings affect the file they are in: the stray pickle is the folder's, the other one mal's.
    names = {c["bom-ref"]: c["name"] for c in _walk(subject)}
    affected = sorted({names[a["ref"]] for v in doc["vulnerabilities"] for a in v["affects"]})
    assert affected == ["mal/model.pkl", "stray.pkl"]
    deps = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    assert set(deps[subject["bom-ref"]]) == {c["bom-ref"] for c in subject["components"]}
    assert all(isinstance(d["dependsOn"], list) for d in doc["dependencies"])  # leaves carry []
    assert deps[models["mal"]["components"][0]["bom-ref"]] == []


def test_sentence_transformers_layout_is_one_model(tmp_path) -> None:
    root = tmp_path / "st"
    _model(root, "---\nlicense: mit\n---\n# ST\n", 0.5, {"model_type": "bert", "architectures": ["BertModel"]})
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "dense_head", "type": "sentence_transformers.models.Dense"}]))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 4}))
    _model(root / "dense_head", None, 0.1, {"in_features": 4})  # a module folder named in modules.json
    _model(root / "onnx", None, 0.2, {"model_type": "bert"})  # an export of the same model
    _model(root / "checkpoint-500", "---\nlicense: mit\n---\n# Checkpoint 500\n", 0.3, {"model_type": "bert"})
    doc = build_bom(scan(str(root)), spec_version="1.6")
    subject = doc["metadata"]["component"]
    assert subject["type"] == "file"  # two models: the ST model and its training checkpoint
    models = {c["name"]: c for c in subject["components"] if c["type"] == "machine-learning-model"}
    assert set(models) == {"ST", "Checkpoint 500"}
    st_files = {f["name"] for f in models["ST"]["components"]}
    assert {"1_Pooling/config.json", "dense_head/model.safetensors", "onnx/model.safetensors",
            "model.safetensors"} <= st_files
    assert not any(name.startswith("checkpoint-500/") for name in st_files)
    assert {f["name"] for f in models["Checkpoint 500"]["components"]} == {
        "checkpoint-500/README.md", "checkpoint-500/config.json", "checkpoint-500/model.safetensors"}
    assert _props(models["Checkpoint 500"])["modelshield:root"] == ["checkpoint-500"]


def _arts(*paths_formats: tuple[str, str], card: set[str] = frozenset()) -> TargetResult:
    arts = []
    for path, fmt in paths_formats:
        props = {"model_card": {"card_data": {"license": "mit"}}} if path in card else {}
        arts.append(Artefact(path=path, format=fmt, sha256="0" * 64, properties=props))
    return TargetResult(target="t", artefacts=arts)


def test_split_rules_on_synthetic_layouts() -> None:
    # diffusers: model_index.json makes the component folders one pipeline
    layout = split(_arts(("model_index.json", "hf_config"), ("unet/config.json", "hf_config"),
                         ("unet/diffusion_pytorch_model.safetensors", "safetensors"),
                         ("vae/config.json", "hf_config"), ("vae/diffusion_pytorch_model.safetensors", "safetensors")))
    assert [r.path for r in layout.roots] == [""] and not layout.strays
    # loose weights beside model folders are strays; a single weights folder is a model
    layout = split(_arts(("x.pkl", "pickle"), ("m1/model.safetensors", "safetensors"),
                         ("m2/model.pkl", "pickle"), ("m2/README.md", "model_card"), card={"m2/README.md"}))
    assert [r.path for r in layout.roots] == ["m1", "m2"] and [a.path for a in layout.strays] == ["x.pkl"]
    # nothing that marks a model: the whole target is one
    layout = split(_arts(("vocab.txt", "text"), ("notes/readme.txt", "text")))
    assert [r.path for r in layout.roots] == [""] and len(layout.roots[0].artefacts) == 2
    # a Hub repo is always a model at its root; its checkpoint folder is another one
    target = _arts(("README.md", "model_card"), ("ckpt/config.json", "hf_config"),
                   ("ckpt/model.safetensors", "safetensors"))
    target.provenance = {"source": "huggingface", "repo_id": "acme/m"}
    assert [r.path for r in split(target).roots] == ["", "ckpt"]


def test_same_bytes_elsewhere_give_the_same_bom(two_models, tmp_path, monkeypatch) -> None:
    first, second = tmp_path / "x" / "models", tmp_path / "y" / "deeper" / "models"
    shutil.copytree(two_models, first)
    shutil.copytree(two_models, second)
    outs = []
    for folder in (first, second):
        out = tmp_path / f"{folder.parent.name}.json"
        result = CliRunner().invoke(app, ["sbom", str(folder), "--reproducible", "--spec-version", "1.7",
                                          "-o", str(out)], env={"SOURCE_DATE_EPOCH": None})
        assert result.exit_code == 0, result.output
        assert "without SOURCE_DATE_EPOCH: the BOM has no timestamp" in result.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert "timestamp" not in doc["metadata"] and str(tmp_path) not in outs[0].decode()
    notes = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:note"]
    assert any(n.startswith("timestamp: not recorded") for n in notes)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    docs = [build_bom(scan(str(f)), spec_version="1.7") for f in (first, second)]
    assert json.dumps(docs[0]) == json.dumps(docs[1])
    assert docs[0]["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")


def _policy(tmp_path: Path, body: str) -> Policy:
    path = tmp_path / "modelshield.toml"
    path.write_text(body)
    return Policy.load(path)


def test_waiver_vex_is_honest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(MALICIOUS)
    accepted = _policy(tmp_path, '[[suppress]]\nrule = "MS-PKL-*"\nreason = "sandboxed loader"\n'
                                 'expires = 2099-01-01\n')
    report = scan(str(folder), policy=accepted)
    doc = build_bom(report, phase="deployment", spec_version="1.6")
    for vuln in doc["vulnerabilities"]:
        assert vuln["analysis"]["state"] == "exploitable" and vuln["analysis"]["response"] == ["will_not_fix"]
        assert "risk accepted" in vuln["analysis"]["detail"] and "sandboxed loader" in vuln["analysis"]["detail"]
        assert vuln["analysis"]["firstIssued"] == vuln["analysis"]["lastUpdated"] == "2023-11-14T22:13:20+00:00"
        assert "url" not in vuln["source"] and vuln["description"]
        assert len(vuln["detail"]) > len(vuln["description"]) / 2
    verdict = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}["modelshield:verdict"]
    assert report.verdict.value == "waived" and verdict == "waived"  # never "clean" when all is waived
    # The development BOM builds on: the deployment BOM keeps the first time a finding was issued.
    dev = build_bom(report, phase="development", spec_version="1.6")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    later = build_bom(report, phase="deployment", spec_version="1.6", from_bom=dev)
    first = {v["analysis"]["firstIssued"] for v in later["vulnerabilities"]}
    assert first == {"2023-11-14T22:13:20+00:00"}
    assert {v["analysis"]["lastUpdated"] for v in later["vulnerabilities"]} == {"2027-01-15T08:00:00+00:00"}

    expired = _policy(tmp_path, '[[suppress]]\nrule = "MS-PKL-*"\nreason = "old exception"\nexpires = 2020-01-01\n')
    doc = build_bom(scan(str(folder), policy=expired), phase="deployment", spec_version="1.6")
    threat = [v for v in doc["vulnerabilities"] if v["analysis"]["state"] == "exploitable"]
    assert threat and all("expired on 2020-01-01" in v["analysis"]["detail"] for v in threat)
    assert all({"name": "modelshield:waiver:expired", "value": "2020-01-01"} in v["properties"] for v in threat)
