"""Bare Keras model configs (`model.to_json()`, a `.keras` archive's extracted `config.json`).

Recognised by content: a JSON object whose top level has Keras' `class_name` and `config` keys.
The analysis is shared with `.keras` archives and `.h5` files (scanner/keras_analysis.py).
"""
from __future__ import annotations

import json
import re
from typing import Any

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..context import ScanContext
from ..analysis.keras_walker import analyse_config
from ..findings import FormatName

NAME = FormatName.KERAS_CONFIG
MAX_BYTES = 256 << 20
_KEY = re.compile(rb'^\s*\{\s*(?:"[A-Za-z_]+"\s*:\s*(?:"[^"\\]{0,200}"|null)\s*,\s*)*"class_name"\s*:\s*"')


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """A JSON object that starts with Keras' serialisation keys and names a class."""
    if not head.lstrip()[:1] == b"{":
        return False
    return bool(_KEY.match(head[:4096])) and b'"config"' in head


def analyse(blob: Blob, ctx: ScanContext) -> None:
    """Parse the JSON (bounded) and run the shared Keras config analysis."""
    config = load_json(blob, ctx.artefact.path if ctx.member is None else ctx.member)
    if not isinstance(config, dict) or "class_name" not in config:
        raise FormatError("not a Keras object config (no top-level class_name)")
    summary = analyse_config(config, ctx, source=blob.name or "the config")
    props = summary.as_dict()
    for key in ("keras_version", "backend"):
        if isinstance(config.get(key), str):
            props[key] = config[key][:100]
    props["model_class"] = str(config.get("class_name"))[:100]
    ctx.artefact.properties["keras"] = props


def load_json(blob: Blob, label: str) -> Any:
    """Read and decode a JSON member of at most MAX_BYTES; malformed JSON is a FormatError."""
    if blob.size > MAX_BYTES:
        raise BudgetExceeded("keras config bytes", MAX_BYTES)
    raw = blob.read_at(0, blob.size)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{label} is not valid JSON: {str(exc)[:200]}", rule_id="MS-GEN-006") from None
