"""ONNX models (bare protobuf `ModelProto`), parsed with the bounded wire walker, never with onnx.

What matters for safety is where the loader reads tensor bytes from: `external_data` locations that
leave the model's folder (`..`, absolute paths, symlinks, hard links) make `onnx.load` /
onnxruntime read arbitrary files (CVE-2022-25882, CVE-2024-27318, CVE-2026-27489, CVE-2026-34446).
Initializer payloads (`raw_data`) are skipped by offset, so multi-GB models stream in O(fields).
Custom operator domains are reported as info: the runtime needs a custom-op library for them.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..context import ScanContext
from ..protowire import LEN, VARINT, Limits, Reader, signed64
from ..errors import ProtoError
from ..findings import FormatName

NAME = FormatName.ONNX

# ModelProto top-level fields and the wire type each must have (onnx/onnx.proto3).
_MODEL_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN, 20: LEN,
                 25: LEN, 26: LEN}
_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
_MAX_SNIFF_FIELDS = 256
_NAME_LIMIT = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """A bounded trial parse of the top-level ModelProto fields (tags only; payloads are skipped)."""
    if len(head) < 4 or head[0] != 0x08:  # ir_version (field 1, varint) is written first
        return False
    try:
        return _looks_like_model(blob)
    except (FormatError, BudgetExceeded):
        return False


def _looks_like_model(blob: Blob) -> bool:
    reader = Reader(blob, limits=Limits(max_fields=_MAX_SNIFF_FIELDS * 8))
    seen: list[int] = []
    try:
        for n, f in enumerate(reader):
            if n >= _MAX_SNIFF_FIELDS or _MODEL_FIELDS.get(f.number) != f.wire:
                return False
            if n == 0 and not (f.number == 1 and 1 <= f.value <= 64):
                return False
            if f.number == 8:  # opset_import: OperatorSetIdProto {1: domain string, 2: version varint}
                for sub in reader.sub(f):
                    if (sub.number, sub.wire) not in ((1, LEN), (2, VARINT)):
                        return False
            seen.append(f.number)
    except ProtoError:
        # A truncated model still claims the file (its analysis then says precisely what is wrong)
        # when its header fields were well-formed: ir_version plus at least one more model field.
        return len(seen) >= 2 and seen[0] == 1
    return 1 in seen and (7 in seen or 8 in seen)


@dataclass
class _State:
    ctx: ScanContext
    base_dir: str | None
    ops: Counter = field(default_factory=Counter)
    domain_ops: dict[str, set[str]] = field(default_factory=dict)
    nodes: int = 0
    initializers: int = 0
    external: dict[str, int] = field(default_factory=dict)  # location -> tensors
    checked: set[str] = field(default_factory=set)


def analyse(blob: Blob, ctx: ScanContext) -> None:
    """Walk ModelProto -> graphs/functions -> nodes and tensors; check every external-data location."""
    reader = Reader(blob, limits=Limits(max_depth=64, max_string=_NAME_LIMIT))
    base_dir = None
    if ctx.member is None and ctx.artefact.absolute_path:
        base_dir = os.path.dirname(os.path.abspath(ctx.artefact.absolute_path))
    state = _State(ctx, base_dir)
    props: dict = {"opset_import": {}, "functions": 0}
    metadata: dict[str, str] = {}
    graphs = 0
    for f in reader:
        ctx.check_time()
        if _MODEL_FIELDS.get(f.number, f.wire) != f.wire:
            raise ProtoError(f"ModelProto field {f.number} has wire type {f.wire}", f.tag_offset)
        if f.number == 1:
            props["ir_version"] = f.value
        elif f.number in (2, 3, 4):
            props[{2: "producer_name", 3: "producer_version", 4: "domain"}[f.number]] = reader.text(f, 4096)
        elif f.number == 5:
            props["model_version"] = signed64(f.value)
        elif f.number == 7:
            graphs += 1
            _graph(reader.sub(f), state)
        elif f.number == 8:
            domain, version = _opset(reader.sub(f))
            props["opset_import"][domain or "ai.onnx"] = version
        elif f.number == 14 and len(metadata) < 256:
            key, value = _string_entry(reader.sub(f))
            metadata[key] = value[:1024]
        elif f.number == 20:  # TrainingInfoProto: initialization / algorithm graphs
            inner = reader.sub(f)
            for sub in inner:
                if sub.number in (1, 2) and sub.wire == LEN:
                    _graph(inner.sub(sub), state)
        elif f.number == 25:  # FunctionProto
            props["functions"] += 1
            _function(reader.sub(f), state)
    if "ir_version" not in props:
        raise FormatError("ONNX model without ir_version", 0)
    if graphs == 0:
        raise FormatError("ONNX model without a graph", 0)
    for domain, ops in sorted(state.domain_ops.items()):
        ctx.add("MS-ONNX-004", domain=domain, ops=", ".join(sorted(ops)[:20]), op_types=sorted(ops)[:100])
    props.update(nodes=state.nodes, initializers=state.initializers,
                 op_types=dict(state.ops.most_common(200)),
                 external_data=[{"location": k, "tensors": v} for k, v in sorted(state.external.items())])
    if metadata:
        props["metadata_props"] = metadata
    ctx.artefact.properties["onnx"] = props


def _opset(reader: Reader) -> tuple[str, int]:
    domain, version = "", 0
    for f in reader:
        if f.number == 1 and f.wire == LEN:
            domain = reader.text(f, 4096)
        elif f.number == 2 and f.wire == VARINT:
            version = signed64(f.value)
    return domain, version


def _string_entry(reader: Reader) -> tuple[str, str]:
    key = value = ""
    for f in reader:
        if f.wire != LEN:
            raise ProtoError("StringStringEntryProto field is not a string", f.tag_offset)
        if f.number == 1:
            key = reader.text(f, 4096)
        elif f.number == 2:
            value = reader.text(f, _NAME_LIMIT)
    return key, value


def _graph(reader: Reader, state: _State) -> None:
    for f in reader:
        if f.number == 1 and f.wire == LEN:
            _node(reader.sub(f), state)
        elif f.number == 5 and f.wire == LEN:
            state.initializers += 1
            _tensor(reader.sub(f), state)
        elif f.number == 15 and f.wire == LEN:  # SparseTensorProto {1: values, 2: indices}
            inner = reader.sub(f)
            for sub in inner:
                if sub.number in (1, 2) and sub.wire == LEN:
                    _tensor(inner.sub(sub), state)


def _function(reader: Reader, state: _State) -> None:
    for f in reader:
        if f.number == 7 and f.wire == LEN:
            _node(reader.sub(f), state)
        elif f.number == 11 and f.wire == LEN:  # attribute_proto: default attribute values (tensors too)
            _attribute(reader.sub(f), state)


def _node(reader: Reader, state: _State) -> None:
    state.nodes += 1
    if state.nodes % 4096 == 0:
        state.ctx.check_time()
    op_type, domain = "", ""
    for f in reader:
        if f.number == 4 and f.wire == LEN:
            op_type = reader.text(f, 4096)
        elif f.number == 7 and f.wire == LEN:
            domain = reader.text(f, 4096)
        elif f.number == 5 and f.wire == LEN:
            _attribute(reader.sub(f), state)
    state.ops[f"{domain}::{op_type}" if domain not in ("", "ai.onnx") else op_type] += 1
    if domain not in _STANDARD_DOMAINS:
        state.domain_ops.setdefault(domain, set()).add(op_type)


def _attribute(reader: Reader, state: _State) -> None:
    for f in reader:
        if f.wire != LEN:
            continue
        if f.number in (5, 10):  # t / tensors
            _tensor(reader.sub(f), state)
        elif f.number in (6, 11):  # g / graphs
            _graph(reader.sub(f), state)
        elif f.number in (22, 23):  # sparse_tensor(s)
            inner = reader.sub(f)
            for sub in inner:
                if sub.number in (1, 2) and sub.wire == LEN:
                    _tensor(inner.sub(sub), state)


def _tensor(reader: Reader, state: _State) -> None:
    name, external, location_kind = "", {}, 0
    for f in reader:
        if f.number == 8 and f.wire == LEN:
            name = reader.text(f, 4096)
        elif f.number == 13 and f.wire == LEN:
            key, value = _string_entry(reader.sub(f))
            external[key] = value
        elif f.number == 14 and f.wire == VARINT:
            location_kind = f.value
        # raw_data (9) and the typed data arrays are skipped by offset: never read
    if location_kind != 1:  # DEFAULT: external_data entries are ignored by the loader
        return
    location = external.get("location", "")
    state.external[location] = state.external.get(location, 0) + 1
    _check_external(location, external, name, reader.start, state)


def _check_external(location: str, entries: dict[str, str], tensor: str, offset: int, state: _State) -> None:
    ctx = state.ctx
    for key in ("offset", "length"):
        if key in entries and not re.fullmatch(r"\d{1,20}", entries[key].strip()):
            ctx.add("MS-ONNX-005", offset=offset, tensor=tensor, problem=f"{key} {entries[key][:40]!r} is not a "
                    "non-negative integer")
            return
    if not location:
        ctx.add("MS-ONNX-005", offset=offset, tensor=tensor, problem="external data without a location")
        return
    if location in state.checked:
        return
    state.checked.add(location)
    parts = re.split(r"[\\/]+", location)
    if location.startswith(("/", "\\")) or _DRIVE.match(location) or "\0" in location:
        ctx.add("MS-ONNX-001", offset=offset, tensor=tensor, data_file=location, why="it is an absolute path")
        return
    if ".." in parts:
        ctx.add("MS-ONNX-001", offset=offset, tensor=tensor, data_file=location,
                why="it climbs out of the model folder with '..'")
        return
    if state.base_dir is None:
        return
    target = os.path.join(state.base_dir, *[p for p in parts if p])
    real_base = os.path.realpath(state.base_dir)
    real_target = os.path.realpath(target)
    if os.path.commonpath([real_base, real_target]) != real_base:
        ctx.add("MS-ONNX-002", offset=offset, tensor=tensor, data_file=location, resolved=real_target)
        return
    try:
        st = os.lstat(target)
    except OSError:
        ctx.add("MS-ONNX-006", offset=offset, tensor=tensor, data_file=location)
        return
    if not os.path.islink(target) and st.st_nlink > 1 and os.path.isfile(target):
        ctx.add("MS-ONNX-003", offset=offset, tensor=tensor, data_file=location, links=st.st_nlink)
