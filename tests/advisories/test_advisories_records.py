"""Every shipped OSV record validates against the OSV 1.7 schema and carries usable ML fields."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from modelshield.advisories import osv, tables
from modelshield.advisories.matching import parse_version
from modelshield.advisories.shipped import ShippedDatabase
from modelshield.scanner.rules import load_rules

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "osv-schema.json").read_text())
RECORDS = sorted(p for p in resources.files("modelshield.advisories").joinpath("data", "osv").iterdir()
                 if p.name.endswith(".json"))
# Format ids the scanner produces (artefact.format values and property keys, after aliasing).
SCANNER_FORMATS = {"pickle", "pickle_text", "torch-zip", "torch_legacy", "torchscript", "keras", "keras_config",
                   "hdf5", "tensorflow", "onnx", "gguf", "chat_template", "numpy", "safetensors", "zip", "tar",
                   "python_source", "hf_config", "dataset_files", "sevenzip", "compressed", "model_card", "text"}


def test_there_are_records_for_every_seeded_loader():
    packages = {e.name for a in ShippedDatabase().advisories() for e in a.affected}
    assert {"torch", "transformers", "keras", "tensorflow", "onnx", "llama-cpp-python", "joblib", "numpy", "vllm",
            "langchain-core", "langgraph-checkpoint", "skops", "picklescan"} <= packages


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_record_validates_against_the_osv_schema(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert path.name == record["id"] + ".json"
    assert record["schema_version"].startswith("1.7")


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_record_has_ml_fields_and_matchable_ranges(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    adv = osv.parse(record)
    rules = load_rules()
    assert adv.summary and adv.details and adv.references
    assert any(i.startswith("CVE-") for i in adv.ids), "every seeded record names its CVE"
    for entry in adv.affected:
        assert entry.ecosystem == "PyPI" and entry.name
        assert entry.ml is not None, f"{adv.id}: database_specific.ml missing for {entry.name}"
        assert entry.ml.trigger in ("load", "save", "inference")
        for fmt in entry.ml.formats:
            assert fmt in SCANNER_FORMATS or fmt.startswith("*"), f"{adv.id}: unknown format id {fmt}"
        for rule in entry.ml.detectors:
            assert rule in rules.rules, f"{adv.id}: detector {rule} is not a rule id"
        assert tables.is_ml_package(entry.name), f"{entry.name} missing from ml_packages.toml"
        for rng in entry.ranges:
            assert rng.type == "ECOSYSTEM"
            for event in rng.events:
                assert event.version == "0" or parse_version(event.version) is not None
        for v in entry.versions:
            assert parse_version(v) is not None


def test_ids_and_aliases_are_unique_across_records():
    seen: dict[str, str] = {}
    for adv in ShippedDatabase().advisories():
        for ident in adv.ids:
            assert ident not in seen, f"{ident} in both {seen[ident]} and {adv.id}"
            seen[ident] = adv.id
            assert re.match(r"^(GHSA|CVE|PYSEC|x_)-?", ident), ident


def test_an_unregistered_prefix_fails_the_schema():
    record = json.loads(RECORDS[0].read_text())
    record["id"] = "MLSEC-2026-0001"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
