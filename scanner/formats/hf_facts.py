"""What a model repository's JSON files *state*, copied for the ML-BOM (no findings here).

`hf_config` parses these files; this module picks the facts an ML-BOM reports from them: the
scalar settings of `config.json` (hyperparameters), tokenizer and preprocessor settings,
sentence-transformers pooling and sequence length, and training-data manifests such as
sentence-transformers' `data_config.json` (a list of `{name, lines, weight}`). Values are
copied as stated, bounded in number and size; nothing is interpreted or guessed.
"""
from __future__ import annotations

from typing import Any

# File names (lower case) whose top-level scalar settings are recorded in `stated`.
SETTINGS_FILES = {"config.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json",
                  "processor_config.json", "feature_extractor_config.json", "image_processor_config.json",
                  "sentence_bert_config.json", "config_sentence_transformers.json", "generation_config.json",
                  "adapter_config.json"}
# Training-data manifests: a JSON list of objects naming data files (sentence-transformers).
MANIFEST_FILES = {"data_config.json"}
MAX_SETTINGS = 200
MAX_TEXT = 200
MAX_MANIFEST = 5000
MANIFEST_KEYS = ("name", "lines", "weight", "size", "path", "url", "split")


def stated(base: str, doc: Any) -> dict[str, Any]:
    """Facts for `properties["hf_config"]`: "stated" settings, sentence-transformers "modules",
    and a data "manifest" (with "manifest_entries", the count before the cap)."""
    out: dict[str, Any] = {}
    if base in SETTINGS_FILES and isinstance(doc, dict):
        settings = _settings(doc)
        if settings:
            out["stated"] = settings
    if base == "modules.json" and isinstance(doc, list):
        out["modules"] = [{k: item[k] for k in ("name", "path", "type") if isinstance(item.get(k), str)}
                          for item in doc[:100] if isinstance(item, dict)]
    if base in MANIFEST_FILES and isinstance(doc, list):
        entries, total = _manifest(doc)
        out["manifest"] = entries
        out["manifest_entries"] = total
    return out


def _settings(doc: dict[str, Any]) -> dict[str, Any]:
    """Top-level scalars, plus special tokens written as `{"content": ...}` objects."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if len(out) >= MAX_SETTINGS:
            break
        if not isinstance(key, str) or len(key) > 100 or key == "chat_template":
            continue
        if isinstance(value, dict) and isinstance(value.get("content"), str) and key.endswith("_token"):
            value = value["content"]
        scalar = _scalar(value)
        if scalar is not _SKIP:
            out[key] = scalar
    return out


_SKIP = object()


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else _SKIP
    if isinstance(value, list) and len(value) <= 16 and all(
            isinstance(v, (bool, int, float)) or (isinstance(v, str) and len(v) <= 100) for v in value):
        return value
    return _SKIP


def _manifest(doc: list[Any]) -> tuple[list[dict[str, Any]], int]:
    entries: list[dict[str, Any]] = []
    total = 0
    for item in doc:
        if not isinstance(item, dict):
            continue
        total += 1
        if len(entries) >= MAX_MANIFEST:
            continue
        entry = {k: item[k] for k in MANIFEST_KEYS if _scalar(item.get(k)) is not _SKIP and item.get(k) is not None}
        if entry:
            entries.append(entry)
    return entries, total
