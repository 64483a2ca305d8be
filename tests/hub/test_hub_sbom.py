"""Hub -> ML-BOM end to end: `modelshield sbom hf://...` through the real huggingface_hub client
against the Hub-compatible test server on 127.0.0.1 (issues 6 and 7)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from helpers.cli import run_cli
from hub_repos import all_repos
from hub_server import HubServer
from modelshield.cli import app
from modelshield.sbom import schema_errors

SCHEMAS = Path(importlib.util.find_spec("cyclonedx").submodule_search_locations[0]) / "schema" / "_res"
BSI_FLAGS = {"bsi:component:executable": {"executable", "non-executable"},
             "bsi:component:archive": {"archive", "no archive"},
             "bsi:component:structured": {"structured", "unstructured"}}


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        for repo in all_repos():
            server.add_repo(repo)
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-home")  # one HF cache for the module: files download once


def env(hub: HubServer, home: Path, **extra: str) -> dict[str, str]:
    out = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_TOKEN": "",
           "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    out.update(extra)
    return out


def sbom(hub: HubServer, home: Path, out: Path, *args: str) -> tuple[int, str, dict[str, Any] | None]:
    proc = run_cli("sbom", *args, "-o", str(out), env=env(hub, home))
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, proc.stderr, doc


def walk(components: list[dict[str, Any]]):
    for comp in components:
        yield comp
        yield from walk(comp.get("components") or [])


def props(comp: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in comp.get("properties") or []:
        out.setdefault(p["name"], []).append(p["value"])
    return out


def resolve(doc: Any, pointer: str) -> Any:
    """RFC 6901 JSON Pointer lookup (raises KeyError/IndexError when it points nowhere)."""
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def files_of(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in model.get("components") or [] if c["type"] == "file"}


@pytest.fixture(scope="module")
def dev_bom(hub, home, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bom") / "benign.dev.cdx.json"
    code, err, doc = sbom(hub, home, out, "hf://org/benign@v1.0", "--phase", "development", "--spec-version", "1.7")
    assert code == 0 and doc is not None, err
    return out, doc


def test_development_bom_identity_card_and_files(hub, dev_bom) -> None:
    path, doc = dev_bom
    repo = hub.repos[("model", "org/benign")]
    assert doc["specVersion"] == "1.7" and schema_errors(doc, "1.7") == []
    model = doc["metadata"]["component"]
    assert re.fullmatch(r"[0-9a-f]{40}", repo.commit)
    # Identity pinned to the resolved commit (the tag v1.0 is only recorded as the revision asked for).
    assert model["type"] == "machine-learning-model" and model["version"] == repo.commit
    assert model["purl"] == f"pkg:huggingface/org/benign@{repo.commit}?repository_url={hub.endpoint}"
    assert model["name"] == "benign" and model["group"] == "org" and model["supplier"]["name"] == "org"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert refs["distribution"] == f"{hub.endpoint}/org/benign/tree/{repo.commit}"
    assert refs["model-card"].endswith(f"/blob/{repo.commit}/README.md") and refs["vcs"] == f"{hub.endpoint}/org/benign"
    # Hub card data and status as evidence.
    params = model["modelCard"]["modelParameters"]
    assert params["task"] == "feature-extraction" and params["architectureFamily"] == "bert"
    assert "modelArchitecture" not in params  # config.json names no architectures: nothing invented
    data = {c["bom-ref"]: c for c in doc["components"] if c["type"] == "data"}
    assert [data[d["ref"]]["name"] for d in params["datasets"]] == ["org/data"]
    (ancestor,) = model["pedigree"]["ancestors"]
    assert ancestor["purl"] == "pkg:huggingface/org/base" and ancestor["type"] == "machine-learning-model"
    p = props(model)
    assert p["cdx:ai-ml:model:language"] == ["en"]
    assert p["modelshield:hub:revision"] == ["v1.0"] and p["modelshield:hub:gated"] == ["false"]
    assert p["modelshield:hub:private"] == ["false"] and p["modelshield:hub:disabled"] == ["false"]
    assert p["modelshield:hub:pipeline_tag"] == ["feature-extraction"]
    assert json.loads(p["modelshield:hub:security_status"][0])["scansDone"] is True
    # Per-file integrity: our own SHA-256/SHA-512 of the published bytes, never the git blob id.
    files = files_of(model)
    assert set(files) == set(repo.files)
    for name, data_ in repo.files.items():
        hashes = {h["alg"]: h["content"] for h in files[name]["hashes"]}
        assert hashes == {"SHA-256": hashlib.sha256(data_).hexdigest(), "SHA-512": hashlib.sha512(data_).hexdigest()}
        assert props(files[name])["modelshield:hub:verified"] == ["match"]
    assert props(files["model.safetensors"])["modelshield:hub:lfs-sha256"] == ["match"]
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert deps[model["bom-ref"]] >= {f["bom-ref"] for f in files.values()} | {ancestor["bom-ref"]} | set(data)
    comps = {c["bom-ref"]: c["aggregate"] for c in doc["compositions"]}
    assert comps[f"composition:files:{model['bom-ref']}"] == "complete"
    assert comps["composition:dependencies"] == "unknown" and comps["composition:lineage"] == "unknown"
    assert {"phase": "design"} in doc["metadata"]["lifecycles"]
    assert "compliant" not in json.dumps(doc).lower()


def test_bsi_flags_once_on_every_component(dev_bom) -> None:
    _, doc = dev_bom
    model = doc["metadata"]["component"]
    for comp in walk([model]):
        p = props(comp)
        for name, values in BSI_FLAGS.items():
            assert len(p.get(name, [])) == 1 and p[name][0] in values, (comp["bom-ref"], name, p.get(name))
        if comp["type"] == "file":
            assert p["bsi:component:filename"] == [comp["name"].rsplit("/", 1)[-1]]
    assert props(model)["bsi:component:structured"] == ["structured"]  # it holds safetensors + JSON


def test_every_model_card_field_is_cited(dev_bom) -> None:
    _, doc = dev_bom
    model = doc["metadata"]["component"]
    refs = {c["bom-ref"] for c in walk([model])} | {"tool:modelshield"} | {
        s["bom-ref"] for s in doc["metadata"]["tools"].get("services", [])}
    cited = {}
    for citation in doc["citations"]:
        assert citation["attributedTo"] in refs, citation
        for pointer in citation["pointers"]:
            resolve(doc, pointer)  # points at something that exists
            cited[pointer] = citation
    base = "/metadata/component/modelCard"
    leaves = [f"{base}/modelParameters/{k}" for k in model["modelCard"]["modelParameters"]]
    for pointer in leaves + ["/metadata/component/licenses", "/metadata/component/pedigree/ancestors"]:
        assert pointer in cited, pointer
    readme = next(c["bom-ref"] for c in model["components"] if c["name"] == "README.md")
    config = next(c["bom-ref"] for c in model["components"] if c["name"] == "config.json")
    assert cited[f"{base}/modelParameters/task"]["attributedTo"] == readme
    assert cited[f"{base}/modelParameters/architectureFamily"]["attributedTo"] == config
    language = next(c for c in doc["citations"]
                    if resolve(doc, c["pointers"][0]) == {"name": "cdx:ai-ml:model:language", "value": "en"})
    assert language["attributedTo"] == readme


def test_independent_validator_accepts_the_hub_bom(dev_bom) -> None:
    path, _ = dev_bom
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema not installed")
    proc = subprocess.run([exe, "--schemafile", str(SCHEMAS / "bom-1.7.SNAPSHOT.schema.json"),
                           "--base-uri", SCHEMAS.as_uri() + "/", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_findings_hash_mismatch_and_hub_scan_as_evidence(hub, home, tmp_path) -> None:
    code, err, doc = sbom(hub, home, tmp_path / "bad.json", "hf://org/malicious", "hf://org/tampered")
    assert code == 0 and doc is not None, err  # the BOM was written; the findings are in it
    assert schema_errors(doc, "1.6") == []
    names = {c["bom-ref"]: (m["name"], c["name"]) for m in doc["components"]
             if m["type"] == "machine-learning-model" for c in m.get("components", [])}
    vulns = sorted((v["id"], *names[v["affects"][0]["ref"]], v["analysis"]["state"], v["ratings"][0]["severity"])
                   for v in doc["vulnerabilities"])
    assert ("MS-HUB-001", "tampered", "model.safetensors", "exploitable", "critical") in vulns
    assert ("MS-HUB-001", "tampered", "config.json", "exploitable", "critical") in vulns
    assert [v for v in vulns if v[1] == "tampered" and v[0] != "MS-HUB-001"] == []
    pickle = [v for v in vulns if v[1] == "malicious"]
    assert pickle and all(v[2] == "pytorch_model.bin" and v[3] == "exploitable" for v in pickle)
    assert "MS-PKL-001" in {v[0] for v in pickle}
    models = {m["name"]: m for m in doc["components"] if m["type"] == "machine-learning-model"}
    tampered = files_of(models["tampered"])
    served = hub.repos[("model", "org/tampered")].served["model.safetensors"]
    st = {h["alg"]: h["content"] for h in tampered["model.safetensors"]["hashes"]}
    assert st["SHA-256"] == hashlib.sha256(served).hexdigest()  # what we read, not what was published
    assert props(tampered["model.safetensors"])["modelshield:hub:lfs-sha256"][0].startswith("mismatch:")
    # The Hub's own scan is shown beside ours (property), never instead of ours.
    bin_props = props(files_of(models["malicious"])["pytorch_model.bin"])
    assert json.loads(bin_props["modelshield:hub:scan"][0])["status"] == "unsafe"
    assert json.loads(props(models["malicious"])["modelshield:hub:security_status"][0])["filesWithIssues"] == [
        {"level": "unsafe", "path": "pytorch_model.bin"}]


def test_dataset_repo_is_a_data_component_and_the_model_lineage_target(hub, home, tmp_path) -> None:
    code, err, doc = sbom(hub, home, tmp_path / "lineage.json", "hf://org/benign", "hf://datasets/org/data",
                          "--spec-version", "1.7")
    assert code == 0 and doc is not None, err
    repo = hub.repos[("dataset", "org/data")]
    (dataset,) = [c for c in doc["components"] if c["type"] == "data"]
    assert dataset["bom-ref"] == f"urn:hf:dataset:org/data@{repo.commit}" and dataset["version"] == repo.commit
    assert dataset["licenses"] == [{"license": {"id": "CC-BY-4.0", "acknowledgement": "declared"}}]
    files = files_of(dataset)
    assert set(files) == set(repo.files)
    for name, data in repo.files.items():
        assert {h["alg"]: h["content"] for h in files[name]["hashes"]}["SHA-512"] == hashlib.sha512(data).hexdigest()
    entries = {d["name"]: d for d in dataset["data"]}
    assert entries["org/data"]["contents"]["url"].endswith(f"/datasets/org/data/tree/{repo.commit}")
    parquet = entries["data/train.parquet"]
    assert parquet["type"] == "dataset" and "3 rows" in parquet["description"]
    assert {"name": "modelshield:file", "value": files["data/train.parquet"]["bom-ref"]} \
        in parquet["contents"]["properties"]
    model = next(c for c in doc["components"] if c["type"] == "machine-learning-model")
    assert model["modelCard"]["modelParameters"]["datasets"] == [{"ref": dataset["bom-ref"]}]
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert dataset["bom-ref"] in deps[model["bom-ref"]]
    assert "MS-PY-010" in {v["id"] for v in doc["vulnerabilities"]
                           if v["affects"][0]["ref"] == files["data.py"]["bom-ref"]}


def test_filtered_files_are_listed_not_scanned_and_gated_writes_no_bom(hub, home, tmp_path) -> None:
    code, err, doc = sbom(hub, home, tmp_path / "json-only.json", "hf://org/benign", "--include", "*.json",
                          "--include", "*.md")
    assert code == 0 and doc is not None, err
    model = doc["metadata"]["component"]
    weights = files_of(model)["model.safetensors"]
    published = hub.repos[("model", "org/benign")].files["model.safetensors"]
    assert weights["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(published).hexdigest()}]
    assert props(weights)["modelshield:hash-source"] == ["hub-lfs-pointer"]
    comps = {c["bom-ref"]: c["aggregate"] for c in doc["compositions"]}
    assert comps[f"composition:files:{model['bom-ref']}"] == "incomplete"

    out = tmp_path / "gated.json"
    code, err, doc = sbom(hub, home, out, "hf://org/gated")
    assert code == 2 and doc is None and not out.exists()
    assert "gated" in err and "HF_TOKEN" in err and "no BOM written" in err


@pytest.mark.parametrize("flip", [False, True])
def test_deployment_bom_links_the_hub_development_bom(hub, home, dev_bom, tmp_path, flip) -> None:
    dev_path, dev = dev_bom
    repo = hub.repos[("model", "org/benign")]
    release = tmp_path / "release"
    release.mkdir()
    for name, data in repo.files.items():
        (release / name).write_bytes(data)
    if flip:
        data = bytearray(repo.files["model.safetensors"])
        data[-3] ^= 0x01
        (release / "model.safetensors").write_bytes(bytes(data))
    out = tmp_path / "deploy.json"
    result = CliRunner().invoke(app, ["sbom", str(release), "--phase", "deployment", "--from-bom", str(dev_path),
                                      "--spec-version", "1.7", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    serial = dev["serialNumber"][len("urn:uuid:"):]
    assert {"type": "bom", "url": f"urn:cdx:{serial}/1",
            "comment": "development BOM this one was derived from"} in doc["externalReferences"]
    model = doc["metadata"]["component"]
    assert model["name"] == "benign" and model["group"] == "org" and "purl" not in model
    assert props(model)["modelshield:development:purl"] == [dev["metadata"]["component"]["purl"]]
    assert any(r["type"] == "bom" and r["url"].startswith(f"urn:cdx:{serial}/1#") for r in model["externalReferences"])
    # No runtime named (no requirements/lock file, no --python): none listed, and the notes say so;
    # never the scanner's own environment.
    assert not [c for c in doc["components"] if c["type"] == "library"]
    assert any(p["value"].startswith("runtime loader libraries: not listed") for p in doc["metadata"]["properties"]
               if p["name"] == "modelshield:note")
    assert {"phase": "post-build"} in doc["metadata"]["lifecycles"]
    changed = [p["value"] for p in doc["metadata"]["properties"] if p["name"] == "modelshield:drift:changed"]
    assert changed == (["model.safetensors"] if flip else [])
    diff = CliRunner().invoke(app, ["sbom", "diff", str(dev_path), str(out)])
    # Identity differs (a release folder has no commit) but the BOM-Link says it is derived: not drift.
    assert diff.exit_code == (1 if flip else 0), diff.output
    assert ("changed  model.safetensors" in diff.output) is flip
