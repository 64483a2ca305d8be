"""TensorFlow SavedModel (`saved_model.pb`) and frozen GraphDef (`.pb`) without TensorFlow.

Both are bare protobuf; the bounded wire walker visits every NodeDef of the graph and of its
function library (and the meta graph's stripped op list) and reports operations that reach outside
the graph: Python callbacks (PyFunc...), file I/O, native library loading. The op table with
severities is data (`data/tensorflow_ops.toml`). Const tensors are skipped by offset.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..context import ScanContext
from ..findings import FormatName, Severity
from ..protowire import LEN, VARINT, Field, Limits, Reader
from ..errors import ProtoError
from .. import datafiles


NAME = FormatName.TENSORFLOW

_GRAPHDEF_FIELDS = {1: LEN, 2: LEN, 3: VARINT, 4: LEN}
_NODEDEF_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN}
_OP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_>.\-]{0,255}")
_NODE_NAME = re.compile(r"[A-Za-z0-9_.>\-/\[\]:]{1,1024}")
_SNIFF_FIELDS = 64
KERAS_METADATA = "keras_metadata.pb"
_SAVED_OBJECT_FIELDS = {2: VARINT, 3: LEN, 4: LEN, 5: LEN, 6: LEN}
_MAX_KERAS_JSON = 64 << 20  # total metadata JSON decoded per file


@functools.lru_cache(maxsize=1)
def dangerous_ops() -> dict[str, dict]:
    """Op name -> {severity, why, checkpoint} from data/tensorflow_ops.toml."""
    return datafiles.load("tensorflow_ops.toml")["op"]


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """Bounded trial parse: SavedModel (1: schema version, 2: MetaGraphDef) or GraphDef (1: NodeDef...),
    or TF-Keras' `keras_metadata.pb` (chosen by name by the loader, checked by content)."""
    if len(head) < 2:
        return False
    try:
        if _is_keras_metadata_name(name) and head[0] == 0x0A:
            return _looks_like_keras_metadata(blob)
        if head[0] == 0x08:
            return _looks_like_saved_model(blob)
        if head[0] == 0x12 and _looks_like_saved_model(blob, schema=False):
            return True
        if head[0] in (0x0A, 0x12, 0x22):
            return _looks_like_graphdef(Reader(blob, limits=Limits(max_fields=_SNIFF_FIELDS * 64)))
    except (FormatError, BudgetExceeded):
        return False
    return False


def _is_keras_metadata_name(name: str) -> bool:
    return name.replace("\\", "/").rsplit("/", 1)[-1] == KERAS_METADATA


def _looks_like_keras_metadata(blob: Blob) -> bool:
    """SavedMetadata {1: SavedObject {2: node_id, 3: node_path, 4: identifier, 5: metadata, 6: version}}."""
    reader = Reader(blob, limits=Limits(max_fields=_SNIFF_FIELDS * 64))
    nodes = 0
    for n, f in enumerate(reader):
        if n >= _SNIFF_FIELDS:
            break
        if f.number != 1 or f.wire != LEN:
            return False
        node = reader.sub(f)
        for sub in node:
            if _SAVED_OBJECT_FIELDS.get(sub.number) != sub.wire:
                return False
        nodes += 1
    return nodes > 0


def _looks_like_saved_model(blob: Blob, schema: bool = True) -> bool:
    """SavedModel {1: schema version, 2: MetaGraphDef...}. proto3 omits a zero schema version, and
    tf.saved_model.load does not need it: without it (`schema=False`) a meta graph must hold a
    graph (2) that looks like a GraphDef, so that a GraphDef whose first field is its function
    library (also field 2) is not taken for one (analyse() reads such files both ways anyway)."""
    reader = Reader(blob, limits=Limits(max_fields=_SNIFF_FIELDS * 64))
    fields = iter(reader)
    if schema:
        first = next(fields, None)
        if first is None or first.number != 1 or first.wire != VARINT or first.value not in (1, 2):
            return False
    graphs = 0
    for n, f in enumerate(fields):
        if n >= _SNIFF_FIELDS:
            break
        if f.number != 2 or f.wire != LEN:
            return False
        meta = reader.sub(f)
        has_graph = False
        for sub in meta:
            if not 1 <= sub.number <= 9 or sub.wire != LEN:
                return False
            if sub.number == 2:
                if not _looks_like_graphdef(meta.sub(sub), allow_empty=schema):
                    return False
                has_graph = True
        if not schema and not has_graph:
            return False
        graphs += 1
    return graphs > 0


def _looks_like_graphdef(reader: Reader, allow_empty: bool = False) -> bool:
    nodes = [0]
    try:
        return _graphdef_fields(reader, nodes) and (nodes[0] > 0 or allow_empty)
    except ProtoError:
        # Truncated or corrupt after well-formed nodes: still a GraphDef (analysis reports where).
        return nodes[0] >= 2


def _graphdef_fields(reader: Reader, nodes: list[int]) -> bool:
    for n, f in enumerate(reader):
        if n >= _SNIFF_FIELDS:
            break
        if _GRAPHDEF_FIELDS.get(f.number) != f.wire:
            return False
        if f.number == 1:
            node = reader.sub(f)
            seen: dict[int, str] = {}
            for sub in node:
                if _NODEDEF_FIELDS.get(sub.number) != sub.wire:
                    return False
                if sub.number in (1, 2):
                    seen[sub.number] = node.text(sub, 4096)
            name = seen.get(1)  # proto3 omits an empty name; the op is what the loader needs
            if (name is not None and not _NODE_NAME.fullmatch(name)) or not _OP_NAME.fullmatch(seen.get(2, "")):
                return False
            nodes[0] += 1
    return True


@dataclass
class _State:
    ctx: ScanContext
    ops: dict[str, list] = field(default_factory=dict)  # op -> [count, first node, where]
    nodes: int = 0
    functions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    bad: int = 0
    keras_objects: int = 0
    keras_json_bytes: int = 0
    keras_layers: dict[str, int] = field(default_factory=dict)
    keras_lambdas: int = 0

    def keras_props(self) -> dict:
        return {"keras_objects": self.keras_objects, "keras_layer_classes": dict(sorted(self.keras_layers.items())),
                "keras_lambda_layers": self.keras_lambdas}

    def op(self, op: str, node: str, where: str, offset: int) -> None:
        entry = self.ops.get(op)
        if entry is None:
            self.ops[op] = [1, node, where, offset]
        else:
            entry[0] += 1


def analyse(blob: Blob, ctx: ScanContext) -> None:
    """Report dangerous ops of every graph and function; inventory meta graph tags and versions."""
    reader = Reader(blob, limits=Limits(max_string=1 << 16))
    state = _State(ctx)
    head = blob.read_at(0, 1)
    if _is_keras_metadata_name(blob.name) and head == b"\x0a":
        _keras_metadata(reader, state)
        ctx.artefact.properties["tensorflow"] = {"kind": "keras_metadata", **state.keras_props()}
        return
    if head == b"\x08" or (head == b"\x12" and _looks_like_saved_model(blob, schema=False)):
        kind = "saved_model"
        for f in reader:
            if f.number == 1 and f.wire == VARINT:
                ctx.artefact.properties.setdefault("tensorflow", {})["schema_version"] = f.value
            elif f.number == 2 and f.wire == LEN:
                _meta_graph(reader.sub(f), state)
            else:
                raise ProtoError(f"unexpected SavedModel field {f.number}", f.tag_offset)
        if head == b"\x12":  # also what a GraphDef loader reads from the same bytes (field 2: library)
            try:
                _graph_def(Reader(blob, limits=Limits(max_string=1 << 16)), state, "graph (GraphDef view)")
            except ProtoError:
                pass  # not a GraphDef after all; the SavedModel view above is complete
    else:
        kind = "graph_def"
        _graph_def(reader, state, "graph")
    table = dangerous_ops()
    for op, (count, node, where, offset) in sorted(state.ops.items()):
        spec = table.get(op)
        if spec is not None:
            rule = "MS-TF-002" if spec.get("checkpoint") else "MS-TF-001"
            ctx.add(rule, offset=offset, severity=Severity.parse(spec["severity"]), callable=op,
                    op=op, count=count, node=node, where=where, why=spec["why"])
        elif not _OP_NAME.fullmatch(op):
            ctx.add("MS-TF-003", offset=offset, op=op[:200], node=node[:200])
    ctx.artefact.properties["tensorflow"] = {
        **ctx.artefact.properties.get("tensorflow", {}),
        "kind": kind, "nodes": state.nodes, "functions": len(state.functions),
        "op_types": sorted(state.ops)[:500], "tags": sorted(set(state.tags)),
        "producer_versions": sorted(set(state.versions)),
        **(state.keras_props() if state.keras_objects else {}),
    }


def _meta_graph(reader: Reader, state: _State) -> None:
    for f in reader:
        if f.wire != LEN:
            continue
        if f.number == 1:  # MetaInfoDef
            info = reader.sub(f)
            for sub in info:
                if sub.wire != LEN:
                    continue
                if sub.number == 4:
                    state.tags.append(info.text(sub, 4096))
                elif sub.number == 5:
                    state.versions.append(info.text(sub, 256))
                elif sub.number == 2:  # stripped_op_list: OpList {1: OpDef {1: name}}
                    oplist = info.sub(sub)
                    for op in oplist:
                        if op.number == 1 and op.wire == LEN:
                            opdef = oplist.sub(op)
                            for name in opdef:
                                if name.number == 1 and name.wire == LEN:
                                    # counted only if no node uses it (nodes carry the better location)
                                    text = opdef.text(name, 4096)
                                    if text not in state.ops:
                                        state.ops[text] = [0, "-", "the meta graph's op list", name.offset]
                                    break
        elif f.number == 2:
            _graph_def(reader.sub(f), state, "graph")
        elif f.number == 7:  # SavedObjectGraph {1: SavedObject {4: SavedUserObject {1: identifier, 3: metadata}}}
            graph = reader.sub(f)
            for node_id, node in enumerate(g for g in graph if g.number == 1 and g.wire == LEN):
                obj = graph.sub(node)
                for sub in obj:
                    if sub.number == 4 and sub.wire == LEN:
                        user = obj.sub(sub)
                        identifier, metadata, at = "", None, sub.offset
                        for u in user:
                            if u.number == 1 and u.wire == LEN:
                                identifier = user.text(u, 4096)
                            elif u.number == 3 and u.wire == LEN:
                                metadata, at = u, u.offset
                        if metadata is not None and identifier.startswith("_tf_keras"):
                            _keras_object(user, metadata, state, f"object graph node {node_id}", at)


def _keras_metadata(reader: Reader, state: _State) -> None:
    """TF-Keras `keras_metadata.pb`: every SavedObject's metadata is a Keras 2 JSON config."""
    for f in reader:
        if f.number != 1 or f.wire != LEN:
            raise ProtoError(f"unexpected SavedMetadata field {f.number}", f.tag_offset)
        node = reader.sub(f)
        path, metadata = "?", None
        for sub in node:
            if _SAVED_OBJECT_FIELDS.get(sub.number, sub.wire) != sub.wire:
                raise ProtoError(f"SavedObject field {sub.number} has wire type {sub.wire}", sub.tag_offset)
            if sub.number == 3:
                path = node.text(sub, 4096)
            elif sub.number == 5:
                metadata = sub
        if metadata is not None:
            _keras_object(node, metadata, state, path, metadata.offset)


def _keras_object(reader: Reader, metadata: Field, state: _State, where: str, offset: int) -> None:
    """Decode one TF-Keras metadata JSON and run the shared Keras config analysis on it."""
    from ..analysis.keras_walker import analyse_config  # local import: keeps the TF module light

    ctx = state.ctx
    ctx.check_time()
    state.keras_json_bytes += metadata.value
    if state.keras_json_bytes > _MAX_KERAS_JSON:
        raise BudgetExceeded("keras metadata JSON bytes", _MAX_KERAS_JSON)
    raw = reader.bytes(metadata, _MAX_KERAS_JSON)
    state.keras_objects += 1
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        ctx.add("MS-KERAS-007", offset=offset, source=f"Keras metadata of {where[:200]}", error=str(exc)[:200])
        return
    if not isinstance(config, dict):
        return
    summary = analyse_config(config, ctx, source=f"Keras metadata of {where[:200]}")
    for name, count in summary.layers.items():
        state.keras_layers[name] = state.keras_layers.get(name, 0) + count
    state.keras_lambdas += summary.lambdas


def _graph_def(reader: Reader, state: _State, where: str) -> None:
    for f in reader:
        if _GRAPHDEF_FIELDS.get(f.number, f.wire) != f.wire:
            raise ProtoError(f"GraphDef field {f.number} has wire type {f.wire}", f.tag_offset)
        if f.number == 1:
            _node(reader.sub(f), state, where)
        elif f.number == 2:  # FunctionDefLibrary {1: FunctionDef}
            library = reader.sub(f)
            for fn in library:
                if fn.number == 1 and fn.wire == LEN:
                    _function(library.sub(fn), state)


def _function(reader: Reader, state: _State) -> None:
    name = "?"
    for f in reader:
        if f.wire != LEN:
            continue
        if f.number == 1:  # signature: OpDef {1: name}
            sig = reader.sub(f)
            for sub in sig:
                if sub.number == 1 and sub.wire == LEN:
                    name = sig.text(sub, 4096)
                    break
        elif f.number == 3:
            _node(reader.sub(f), state, f"function '{name[:200]}'")
    state.functions.append(name)


def _node(reader: Reader, state: _State, where: str) -> None:
    state.nodes += 1
    if state.nodes % 4096 == 0:
        state.ctx.check_time()
    name = op = ""
    offset = reader.start
    for f in reader:
        if f.number == 1 and f.wire == LEN:
            name = reader.text(f, 4096)
        elif f.number == 2 and f.wire == LEN:
            op = reader.text(f, 4096)
            offset = f.offset
        # attr values (incl. Const tensors) are skipped by offset
    if not op:
        raise ProtoError(f"node '{name[:100]}' has no op", reader.start)
    state.op(op, name, where, offset)
