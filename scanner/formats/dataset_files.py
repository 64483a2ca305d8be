"""Dataset data files: Parquet, Arrow IPC (file and stream), CSV/TSV, JSON Lines.

Nothing in them executes on load, so they are inventoried (status INVENTORIED; the hashes come
from the file pass) with the facts their footers give cheaply: schema, row and row-group counts
(Parquet), record-batch counts (Arrow file). Data pages are never read.

One code path exists: the Arrow extension type `arrow.py_extension_type`, whose field metadata is
a pickle that pyarrow 0.14.0-14.0.0 unpickles on read (CVE-2023-47248, also through Parquet's
embedded `ARROW:schema`). Such metadata is reported (MS-DS-001) and sent through the pickle
engine. pyarrow is an optional extra and is only used from 14.0.1 on, where reading a schema no
longer unpickles anything.

Identification: Parquet `PAR1` at both ends, Arrow file `ARROW1` at both ends, Arrow stream by an
IPC schema message at offset 0; CSV/TSV/JSONL by name plus a light content check (text loaders
choose these files by name).
"""
from __future__ import annotations

import functools
import json
import struct
from typing import TYPE_CHECKING, Any

from ..blob import BytesBlob
from ..errors import FormatError
from ..findings import FormatName, Status

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.DATASET_FILES
PY_EXTENSION = b"arrow.py_extension_type"
MAX_FOOTER = 64 << 20
MAX_FIELDS = 200
TEXT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ARROW_SUFFIXES = (".arrow", ".arrows", ".feather", ".ipc", ".stream")


@functools.lru_cache(maxsize=1)
def _pyarrow() -> Any:
    """pyarrow if installed and not affected by CVE-2023-47248 (>= 14.0.1), else None."""
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return None
    parts = []
    for piece in pyarrow.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return pyarrow if tuple(parts) >= (14, 0, 1) else None


def _kind(head: bytes, blob: "Blob", name: str) -> str | None:
    if head.startswith(b"PAR1") and blob.size >= 12:
        return "parquet"
    if head.startswith(b"ARROW1") and blob.size >= 12:
        return "arrow-file"
    if _stream_schema_prefix(head, blob.size):
        return "arrow-stream"
    lower = name.lower()
    for suffix, kind in TEXT_SUFFIXES.items():
        if lower.endswith(suffix) and _looks_like_text(head, kind):
            return kind
    return None


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """Parquet/Arrow by magic; CSV/TSV/JSONL by name and a light content check."""
    return _kind(head, blob, name) is not None


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Inventory with schema facts; report pickled Arrow extension metadata."""
    head = blob.head(4096)
    kind = _kind(head, blob, ctx.members[-1] if ctx.members else ctx.artefact.path)
    props: dict[str, Any] = {"kind": kind}
    if kind == "parquet":
        _parquet(blob, ctx, props)
    elif kind in ("arrow-file", "arrow-stream"):
        props["advisory"] = "CVE-2023-47248: read with pyarrow >= 14.0.1"
        _arrow(blob, ctx, props, kind)
    else:
        _text(head, kind or "", props)
    ctx.artefact.properties["dataset_file"] = props
    if ctx.member is None:
        ctx.artefact.status = Status.INVENTORIED
        ctx.artefact.reason = f"dataset file ({kind})"


# ---------------------------------------------------------------------------------------------

def _parquet(blob: "Blob", ctx: "ScanContext", props: dict[str, Any]) -> None:
    tail = blob.read_at(blob.size - 8, 8)
    if tail[4:] != b"PAR1":
        raise FormatError("Parquet file without the PAR1 footer magic (truncated?)", offset=blob.size - 4,
                          rule_id="MS-DS-002")
    (length,) = struct.unpack("<I", tail[:4])
    if length == 0 or length > blob.size - 12 or length > MAX_FOOTER:
        raise FormatError(f"Parquet footer length {length} does not fit the {blob.size}-byte file",
                          offset=blob.size - 8, rule_id="MS-DS-002")
    props["footer_bytes"] = length
    pa = _pyarrow()
    if pa is None:
        props["schema"] = None
        props["note"] = "schema not read: pyarrow >= 14.0.1 not installed"
        if PY_EXTENSION in blob.read_at(blob.size - 8 - length, length):
            ctx.add("MS-DS-001", offset=blob.size - 8 - length, field="?", size="?")
        return
    try:
        meta = pa.parquet.read_metadata(blob.reader())
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on bad footers
        raise FormatError(f"Parquet footer unreadable: {exc}", offset=blob.size - 8 - length,
                          rule_id="MS-DS-002") from None
    props.update(rows=meta.num_rows, row_groups=meta.num_row_groups, columns=meta.num_columns,
                 created_by=meta.created_by, format_version=str(meta.format_version))
    kv = meta.metadata or {}
    props["metadata_keys"] = sorted(k.decode("utf-8", "replace") for k in kv)[:50]
    if b"huggingface" in kv:
        props["huggingface_features"] = _hf_features(kv[b"huggingface"])
    if b"ARROW:schema" in kv:
        try:
            schema = pa.parquet.read_schema(blob.reader())
        except Exception as exc:  # noqa: BLE001
            raise FormatError(f"embedded Arrow schema unreadable: {exc}", rule_id="MS-DS-002") from None
        props["schema"] = _schema_facts(schema)
        _extension_pickles(schema, ctx)
    else:
        props["schema"] = [{"name": meta.schema.column(i).name, "type": str(meta.schema.column(i).physical_type)}
                           for i in range(min(meta.num_columns, MAX_FIELDS))]


def _arrow(blob: "Blob", ctx: "ScanContext", props: dict[str, Any], kind: str) -> None:
    if kind == "arrow-file" and blob.read_at(blob.size - 6, 6) != b"ARROW1":
        raise FormatError("Arrow IPC file without the ARROW1 trailing magic (truncated?)",
                          offset=blob.size - 6, rule_id="MS-DS-002")
    pa = _pyarrow()
    if pa is None:
        props["schema"] = None
        props["note"] = "schema not read: pyarrow >= 14.0.1 not installed"
        first = blob.read_at(0, min(blob.size, MAX_FOOTER))
        if PY_EXTENSION in first[:1 << 20]:
            ctx.add("MS-DS-001", offset=first.find(PY_EXTENSION), field="?", size="?")
        return
    try:
        if kind == "arrow-file":
            reader = pa.ipc.open_file(blob.reader())
            props["record_batches"] = reader.num_record_batches
        else:
            reader = pa.ipc.open_stream(blob.reader())
        schema = reader.schema
    except Exception as exc:  # noqa: BLE001
        raise FormatError(f"Arrow schema unreadable: {exc}", rule_id="MS-DS-002") from None
    props["schema"] = _schema_facts(schema)
    if schema.metadata and b"huggingface" in schema.metadata:
        props["huggingface_features"] = _hf_features(schema.metadata[b"huggingface"])
    _extension_pickles(schema, ctx)


def _extension_pickles(schema: Any, ctx: "ScanContext") -> None:
    """MS-DS-001 for every (nested) field typed arrow.py_extension_type; scan its pickle."""
    stack = [(f, f.name) for f in schema]
    seen = 0
    while stack and seen < 10_000:
        ctx.check_time()
        field, path = stack.pop()
        seen += 1
        meta = field.metadata or {}
        if meta.get(b"ARROW:extension:name") == PY_EXTENSION:
            payload = meta.get(b"ARROW:extension:metadata", b"")
            ctx.add("MS-DS-001", field=path, size=len(payload))
            if payload:
                ctx.descend(BytesBlob(payload, name=f"{path}.extension-metadata.pkl"),
                             f"field[{path}]/ARROW:extension:metadata", container=False)
        t = field.type
        for i in range(getattr(t, "num_fields", 0) or 0):
            child = t.field(i)
            stack.append((child, f"{path}.{child.name}"))


def _schema_facts(schema: Any) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)[:200]} for f in list(schema)[:MAX_FIELDS]]


def _hf_features(raw: bytes) -> Any:
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    feats = info.get("info", {}).get("features") if isinstance(info, dict) else None
    return sorted(feats)[:MAX_FIELDS] if isinstance(feats, dict) else None


def _text(head: bytes, kind: str, props: dict[str, Any]) -> None:
    text = head.decode("utf-8", "ignore")
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if kind in ("csv", "tsv"):
        sep = "," if kind == "csv" else "\t"
        props["columns"] = [c.strip().strip('"') for c in first.split(sep)][:MAX_FIELDS]
    else:
        try:
            obj = json.loads(first)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            props["keys"] = list(obj)[:MAX_FIELDS]


def _looks_like_text(head: bytes, kind: str) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # only a character cut at the end of the head is fine
            return False
        text = head[:exc.start].decode("utf-8")
    lines = [ln for ln in text.lstrip("\ufeff").splitlines()[:5] if ln.strip()]
    if not lines:
        return False
    if kind == "jsonl":
        try:
            return isinstance(json.loads(lines[0]), (dict, list))
        except ValueError:
            return False
    sep = "," if kind == "csv" else "\t"
    return sep in lines[0]


def _stream_schema_prefix(head: bytes, size: int) -> bool:
    """An Arrow IPC stream starts with a Schema message: 0xFFFFFFFF, int32 length, flatbuffer."""
    if len(head) < 16 or head[:4] != b"\xff\xff\xff\xff":
        return False
    (length,) = struct.unpack("<i", head[4:8])
    if length < 8 or 8 + length > size:
        return False
    # flatbuffer Message: root table offset, then its vtable; header_type field must be Schema (1).
    buf = head[8:8 + length]
    if len(buf) < 8:
        return False
    try:
        root = struct.unpack_from("<I", buf, 0)[0]
        vt = root - struct.unpack_from("<i", buf, root)[0]
        vt_len = struct.unpack_from("<H", buf, vt)[0]
        if vt_len < 8:
            return False
        off = struct.unpack_from("<H", buf, vt + 6)[0]  # field 1: header_type (u8)
        return off != 0 and buf[root + off] == 1
    except (struct.error, IndexError):
        return False
