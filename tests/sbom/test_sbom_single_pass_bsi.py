"""`scan --sbom` reads each artefact once; BSI TR-03183-2 flags on every component; taxonomy names."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.sbom import build_bom, schema_errors
from modelshield.sbom.modelcard import short_count
from modelshield.scanner.findings import Finding, Kind, Location, Report, Severity, TargetResult

BSI_FLAGS = {"bsi:component:executable": {"executable", "non-executable"},
             "bsi:component:archive": {"archive", "no archive"},
             "bsi:component:structured": {"structured", "unstructured"}}
PAYLOAD = b"echo MODELSHIELD_MARKER"
MALICIOUS = b"\x80\x02cos\nsystem\nX" + len(PAYLOAD).to_bytes(4, "little") + PAYLOAD + b"q\x00\x85R."

_OPENS: dict[str, int] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENS is not None and event == "open" and isinstance(args[0], (str, Path)):
        _OPENS[str(args[0])] = _OPENS.get(str(args[0]), 0) + 1


sys.addaudithook(_audit)  # cannot be removed: it only counts while _OPENS is a dict


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(root / "model.safetensors"))
    (root / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (root / "README.md").write_text("---\nlicense: mit\nlanguage: [en, de, multilingual]\n---\n# Tiny\n\nA test.\n")
    (root / "extra.pkl").write_bytes(MALICIOUS)
    return root


def _opens_of(model_dir: Path, *args: str) -> dict[str, int]:
    global _OPENS
    _OPENS = {}
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        counts, _OPENS = _OPENS, None
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return {Path(k).name: v for k, v in counts.items() if str(model_dir) in k and Path(k).is_file()}


def test_scan_sbom_reads_no_artefact_twice(model_dir, tmp_path) -> None:
    plain = _opens_of(model_dir, "scan", str(model_dir), "-f", "json", "-o", str(tmp_path / "r.json"))
    out = tmp_path / "bom.json"
    with_bom = _opens_of(model_dir, "scan", str(model_dir), "-f", "json", "-o", str(tmp_path / "r2.json"),
                         "--sbom", str(out), "--spec-version", "1.7")
    assert set(plain) == {"model.safetensors", "config.json", "README.md", "extra.pkl"}, plain
    assert with_bom == plain  # the BOM adds no read of any artefact
    doc = json.loads(out.read_text())
    report = json.loads((tmp_path / "r2.json").read_text())
    ours = {a["path"]: a["sha512"] for a in report["targets"][0]["artefacts"]}
    bom = {c["name"]: {h["alg"]: h["content"] for h in c["hashes"]}["SHA-512"]
           for c in doc["metadata"]["component"]["components"]}
    assert bom == ours and schema_errors(doc, "1.7") == []


def _walk(components):
    for comp in components:
        yield comp
        yield from _walk(comp.get("components") or [])


@pytest.mark.parametrize("phase", ["development", "deployment"])
def test_bsi_flags_exactly_once_per_component(model_dir, tmp_path, phase) -> None:
    out = tmp_path / "bom.json"
    result = CliRunner().invoke(app, ["sbom", str(model_dir), "--phase", phase, "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    model = doc["metadata"]["component"]
    comps = list(_walk([model] + [c for c in doc.get("components", []) if c["type"] != "data"]))
    assert len(comps) >= 5
    for comp in comps:
        names = [p["name"] for p in comp.get("properties", [])]
        for flag, values in BSI_FLAGS.items():
            assert names.count(flag) == 1, (comp["name"], flag)
            assert next(p["value"] for p in comp["properties"] if p["name"] == flag) in values
    flags = {c["name"]: {p["name"]: p["value"] for p in c["properties"]} for c in _walk([model])}
    assert flags["extra.pkl"]["bsi:component:executable"] == "executable"
    assert flags["model.safetensors"]["bsi:component:executable"] == "non-executable"
    assert flags[model["name"]]["bsi:component:executable"] == "executable"  # it contains a pickle
    assert flags[model["name"]]["bsi:component:archive"] == "no archive"
    # Taxonomy names: cdx:ai-ml:model:language with ISO 639-1 codes only.
    props = [(p["name"], p["value"]) for p in model["properties"]]
    assert ("cdx:ai-ml:model:language", "en,de") in props and ("modelshield:language", "multilingual") in props
    assert not [n for n, _ in props if n == "cdx:ai-ml:model:languages"]


def test_target_level_info_is_an_observation_not_a_vulnerability() -> None:
    info = Finding(rule_id="MS-HUB-005", severity=Severity.INFO, kind=Kind.INFO, message="custom code declared",
                   location=Location(path="."))
    threat = Finding(rule_id="MS-HUB-001", severity=Severity.CRITICAL, kind=Kind.THREAT, message="hash mismatch",
                     location=Location(path="."))
    report = Report(targets=[TargetResult(target="x", kind="local", findings=[info, threat])], tool_version="0")
    doc = build_bom(report, phase="development", spec_version="1.6", reproducible=True)
    assert [v["id"] for v in doc["vulnerabilities"]] == ["MS-HUB-001"]
    model = doc["metadata"]["component"]
    assert {"name": "modelshield:observation", "value": "MS-HUB-005: custom code declared"} in model["properties"]


def test_parameter_count_uses_the_taxonomy_notation() -> None:
    assert [short_count(n) for n in (64, 999_999, 22_713_216, 7_241_732_096, 1_000_000_000_000)] == [
        "64", "999999", "22.7M", "7.2B", "1T"]
