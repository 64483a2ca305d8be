"""Keras v3 `.keras` archives: a zip flavour (config.json + metadata.json + model.weights.h5).

`zip.py` recognises the container and hands it over through `matches(names)` and
`analyse_archive(archive, ctx)`. The model config goes through the shared Keras analysis; every
other member (weights `.h5`, assets, anything unexpected) is sent back through the sniffer.
`sniff`/`analyse` exist only to satisfy the module interface: this module never claims raw bytes.
"""
from __future__ import annotations

import json
from typing import Any

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..context import ScanContext
from ..analysis.keras_walker import analyse_config
from .interface import Archive, Member
from .keras_config import MAX_BYTES
from ..findings import FormatName

NAME = FormatName.KERAS
CONFIG, METADATA = "config.json", "metadata.json"
_WEIGHTS = ("model.weights.h5", "model.weights.json", "model.weights.npz")


def matches(names: list[str]) -> bool:
    """A `.keras` archive: config.json at the root plus Keras' metadata.json or weights file."""
    top = {_normal(n) for n in names}
    return CONFIG in top and (METADATA in top or any(w in top for w in _WEIGHTS))


def _normal(name: str) -> str:
    """The name other extractors may map a member to (`/config.json`, `./config.json`, `a\\b`)."""
    name = name.split("\0", 1)[0].replace("\\", "/")
    while name.startswith(("/", "./")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def analyse_archive(archive: Archive, ctx: ScanContext) -> None:
    """Analyse every config.json look-alike and metadata.json; dispatch every other member to the sniffer.

    Keras reads `config.json` with zipfile (the last exact-name entry wins); other extractors may
    pick another copy or map `/config.json`, `./config.json` to the same file, so every member whose
    name normalises to config.json is analysed as a Keras config, whatever its key order.
    """
    members = archive.members()
    configs = [m for m in members if m.kind == "file" and _normal(m.name) == CONFIG]
    exact = [m for m in configs if m.name == CONFIG]
    primary = exact[-1] if exact else (configs[-1] if configs else None)
    meta_member = None
    for m in members:
        if m.name == METADATA:
            meta_member = m  # the last duplicate wins, as in zipfile's name lookup
    props: dict = {"flavour": "keras_v3"}
    if primary is None:
        ctx.add("MS-KERAS-009", error="config.json missing")
    for member in configs:
        with ctx.enter(member.name):
            try:
                config = _json_member(archive, member)
            except FormatError as exc:
                ctx.add("MS-KERAS-009" if "member" in exc.reason else "MS-KERAS-007", source=CONFIG,
                        error=exc.reason)
                continue
            if not isinstance(config, dict):
                ctx.add("MS-KERAS-009", error=f"{member.name} is not a JSON object")
                continue
            summary = analyse_config(config, ctx, source=member.name)
            if member is primary:
                props.update(summary.as_dict(), model_class=str(config.get("class_name"))[:100])
    if len(configs) > 1:
        props["config_copies"] = [m.name[:200] for m in configs]
    if meta_member is not None:
        with ctx.enter(meta_member.name):
            try:
                meta = _json_member(archive, meta_member)
            except FormatError as exc:
                ctx.add("MS-KERAS-007", source=METADATA, error=exc.reason)
                meta = None
        if isinstance(meta, dict):
            for key in ("keras_version", "date_saved"):
                if isinstance(meta.get(key), str):
                    props[key] = meta[key][:100]
    ctx.artefact.properties["keras"] = props
    from .zip import dispatch_member  # reports encrypted members and per-member budget problems

    analysed = {id(m) for m in configs} | {id(meta_member)}
    for member in members:
        ctx.check_time()
        if id(member) in analysed:
            continue
        dispatch_member(archive, member, ctx)


def _json_member(archive: Archive, member: Member) -> Any:
    if member.size > MAX_BYTES:
        raise BudgetExceeded("keras config bytes", MAX_BYTES)
    if member.encrypted:
        raise FormatError("the member is encrypted")
    blob = archive.open(member)
    if blob is None:
        raise FormatError("the member could not be decompressed")
    try:
        raw = blob.read_at(0, min(blob.size, MAX_BYTES + 1))
    finally:
        blob.close()
    if len(raw) > MAX_BYTES:
        raise BudgetExceeded("keras config bytes", MAX_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"not valid JSON: {str(exc)[:200]}") from None


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """Never claims raw bytes: zip.py recognises the container and calls `analyse_archive`."""
    return False


def analyse(blob: Blob, ctx: ScanContext) -> None:
    raise FormatError("keras archives are analysed through zip.py (analyse_archive)")
