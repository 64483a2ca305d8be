"""GGUF (llama.cpp / ggml): header, metadata and tensor-info sanity, chat templates on the Jinja2 AST.

Layout (v2/v3): magic "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata
key/value pairs (key: u64-length string; u32 value type; value, arrays as u32 item type + u64
count + items); tensor infos (name, u32 n_dims, n_dims x u64 dims, u32 ggml type, u64 offset);
padding to `general.alignment` (default 32); tensor data. The rules follow llama.cpp's
`gguf_init_from_file_impl` (ggml/src/gguf.cpp). The file is streamed through a bounded window
of positioned reads: large arrays (the tokenizer vocabulary) are skipped, not loaded, and tensor
data is never read.
"""
from __future__ import annotations

import functools
import struct
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, FormatError
from ..analysis.jinja_template import MAX_TEMPLATE_CHARS, analyse_template
from .. import datafiles
from ..findings import FormatName


if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.GGUF

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 64  # GGML_MAX_NAME: tensor names must be shorter
# A declared size beyond this is no truncation or odd model: it is a crafted overflow attempt.
ABSURD = 1 << 40
_WINDOW = 1 << 20
_INT64_MAX = (1 << 63) - 1

# GGUF value types: id -> (name, struct code); 8 = string, 9 = array
_SCALARS = {0: ("u8", "B"), 1: ("i8", "b"), 2: ("u16", "H"), 3: ("i16", "h"), 4: ("u32", "I"),
            5: ("i32", "i"), 6: ("f32", "f"), 7: ("bool", "b"), 10: ("u64", "Q"), 11: ("i64", "q"),
            12: ("f64", "d")}
STRING, ARRAY = 8, 9
_KEEP_STRING = 1024  # longest metadata string kept for the BOM
_TEMPLATE_PREFIX = "tokenizer.chat_template"


@functools.lru_cache(maxsize=1)
def _types() -> tuple[dict[int, tuple[str, int, int]], dict[int, str]]:
    raw = datafiles.load("gguf_types.toml")
    ggml = {int(k): (v[0], int(v[1]), int(v[2])) for k, v in raw["ggml_types"].items()}
    return ggml, {int(k): v for k, v in raw["file_types"].items()}


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """The GGUF magic."""
    return head[:4] == MAGIC


def _malformed(reason: str, offset: int | None) -> FormatError:
    """Malformed GGUF (llama.cpp refuses the file): MS-GGUF-001."""
    return FormatError(reason, offset, rule_id="MS-GGUF-001")


def _crafted(reason: str, offset: int | None) -> FormatError:
    """A header no writer produces (overflowing shapes): MS-GGUF-002."""
    return FormatError(reason, offset, rule_id="MS-GGUF-002")


class _Cursor:
    """Sequential reads over a blob through a bounded window of positioned reads."""

    def __init__(self, blob: "Blob", endian: str = "<") -> None:
        self.blob, self.endian, self.pos = blob, endian, 0
        self.win_start, self.win = 0, b""

    def remaining(self) -> int:
        return self.blob.size - self.pos

    def read(self, n: int, what: str) -> bytes:
        if n > self.remaining():
            raise _malformed(f"truncated: {what} needs {n} bytes at offset {self.pos} but the file ends "
                             f"at {self.blob.size}", self.pos)
        rel = self.pos - self.win_start
        if rel < 0 or rel + n > len(self.win):
            if n > _WINDOW:
                data = self.blob.read_at(self.pos, n)
                self.pos += n
                return data
            self.win_start, self.win = self.pos, self.blob.read_at(self.pos, _WINDOW)
            rel = 0
        data = self.win[rel:rel + n]
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise _malformed(f"truncated: {what} needs {n} bytes at offset {self.pos} but the file ends "
                             f"at {self.blob.size}", self.pos)
        self.pos += n

    def unpack(self, code: str, what: str) -> Any:
        fmt = self.endian + code
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))[0]

    def length(self, what: str) -> int:
        """A u64 length/count, checked against the file (crafted when absurd, truncated otherwise)."""
        at = self.pos
        n = self.unpack("Q", what)
        if n >= ABSURD:
            raise _crafted(f"{what} of {n}", at)
        return n

    def string(self, what: str, keep: int | None = None) -> tuple[str | None, int]:
        """(decoded text or None if longer than `keep`, byte length); skips the bytes when not kept."""
        n = self.length(f"{what} length")
        if n > self.remaining():
            raise _malformed(f"truncated: {what} of {n} bytes at offset {self.pos} runs past the end of the "
                             f"{self.blob.size}-byte file", self.pos)
        if keep is not None and n > keep:
            self.skip(n, what)
            return None, n
        return self.read(n, what).decode("utf-8", "replace"), n


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Validate header, metadata and tensor infos; analyse chat templates; record BOM facts."""
    cur = _Cursor(blob)
    version, n_tensors, n_kv = _header(cur, blob)
    # llama.cpp checks every key against every earlier one (quadratic): millions of entries are a
    # denial of service for the loader and would be for this analysis; the member budget bounds both.
    if max(n_kv, n_tensors) > ctx.budgets.max_members:
        raise BudgetExceeded("max_members", ctx.budgets.max_members)
    facts: dict[str, Any] = {"version": version, "endian": "big" if cur.endian == ">" else "little",
                             "tensor_count": n_tensors, "metadata_count": n_kv}
    meta, types, templates = _metadata(cur, ctx, n_kv)
    alignment = _alignment(meta, types)
    infos, dtypes, parameters = _tensor_infos(cur, ctx, n_tensors)
    data_start = _pad(cur.pos, alignment)
    _check_data_offsets(infos, data_start, alignment, blob.size)

    facts.update(_bom_facts(meta))
    facts.update({"alignment": alignment, "data_offset": data_start, "parameters": parameters,
                  "dtypes": dict(sorted(dtypes.items())),
                  "chat_templates": [key for key, _, _ in templates]})
    ctx.artefact.properties["gguf"] = facts
    for key, text, offset in templates:
        analyse_template(text, ctx, field=key, offset=offset)


def _header(cur: _Cursor, blob: "Blob") -> tuple[int, int, int]:
    """(version, tensor count, metadata entry count); sets the cursor's byte order."""
    if cur.read(4, "magic") != MAGIC:
        raise _malformed("bad magic", 0)
    version = cur.unpack("I", "version")
    if version & 0xFFFF == 0 and version:  # written on a big-endian host
        cur.endian = ">"
        version = struct.unpack(">I", struct.pack("<I", version))[0]
    if version == 1:
        raise _malformed("GGUF version 1 (32-bit counts) is no longer supported by llama.cpp", 4)
    if version not in (2, 3):
        raise _malformed(f"unsupported GGUF version {version}", 4)
    n_tensors = cur.length("tensor count")
    n_kv = cur.length("metadata entry count")
    # every entry takes at least 13 bytes (empty key, type, 1-byte value); every tensor info 24
    if n_kv * 13 > cur.remaining() or n_tensors * 24 > cur.remaining():
        raise _malformed(f"{n_kv} metadata entries and {n_tensors} tensors cannot fit in the "
                         f"{blob.size}-byte file", 16)
    return version, n_tensors, n_kv


def _metadata(cur: _Cursor, ctx: "ScanContext", n_kv: int
              ) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str, int]]]:
    """(values, type names, chat templates as (key, text, offset)) of the metadata entries."""
    meta: dict[str, Any] = {}
    types: dict[str, str] = {}
    templates: list[tuple[str, str, int]] = []
    for i in range(n_kv):
        if i % 64 == 0:
            ctx.check_time()
        key_at = cur.pos
        key, _ = cur.string(f"metadata key #{i}", keep=1 << 16)
        if key is None:
            raise _malformed(f"metadata key #{i} is longer than 65536 bytes", key_at)
        if key in types:
            raise _malformed(f"duplicate metadata key {key!r}", key_at)
        vtype = cur.unpack("I", f"type of {key!r}")
        value_at = cur.pos
        if vtype == ARRAY:
            item = cur.unpack("I", f"item type of {key!r}")
            count = cur.length(f"array length of {key!r}")
            types[key] = f"array[{_type_name(item)}]"
            _skip_array(cur, ctx, key, item, count)
            meta[key] = {"array": _type_name(item), "length": count}
        elif vtype == STRING:
            types[key] = "string"
            _string_value(cur, ctx, key, value_at, meta, templates)
        elif vtype in _SCALARS:
            type_name, code = _SCALARS[vtype]
            types[key] = type_name
            value = cur.unpack(code, f"value of {key!r}")
            meta[key] = bool(value) if type_name == "bool" else value
        else:
            raise _malformed(f"metadata key {key!r} has invalid value type {vtype}", value_at - 4)
    return meta, types, templates


def _string_value(cur: _Cursor, ctx: "ScanContext", key: str, value_at: int, meta: dict[str, Any],
                  templates: list[tuple[str, str, int]]) -> None:
    """A string entry: chat templates are kept whole (under a budget) for analysis, others shortened."""
    is_template = key == _TEMPLATE_PREFIX or key.startswith(_TEMPLATE_PREFIX + ".")
    text, n = cur.string(f"value of {key!r}", keep=MAX_TEMPLATE_CHARS * 4 if is_template else _KEEP_STRING)
    if is_template:
        if text is None:
            ctx.add("MS-TPL-008", offset=value_at, field=key,
                    error=f"{n}-byte template exceeds the {MAX_TEMPLATE_CHARS * 4}-byte budget")
        else:
            templates.append((key, text, value_at + 8))
    else:
        meta[key] = text if text is not None else f"<{n} bytes>"


def _alignment(meta: dict[str, Any], types: dict[str, str]) -> int:
    """general.alignment as llama.cpp accepts it (a u32 power of 2), else the default."""
    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in types:
        if types["general.alignment"] != "u32":
            raise _malformed(f"general.alignment is {types['general.alignment']}, llama.cpp requires u32", None)
        alignment = meta["general.alignment"]
        if alignment == 0 or alignment & (alignment - 1):
            raise _malformed(f"alignment {alignment} is not a power of 2", None)
    return alignment


def _tensor_infos(cur: _Cursor, ctx: "ScanContext", n_tensors: int
                  ) -> tuple[list[tuple[str, int, int, int, int]], Counter[str], int]:
    """(infos as (name, type, nbytes, offset, info offset), dtype counts, parameter count)."""
    ggml, _ = _types()
    infos: list[tuple[str, int, int, int, int]] = []  # name, type, nbytes, offset, info offset
    names: set[str] = set()
    dtypes: Counter[str] = Counter()
    parameters = 0
    for i in range(n_tensors):
        if i % 256 == 0:
            ctx.check_time()
        at = cur.pos
        name, n = cur.string(f"tensor #{i} name", keep=1 << 16)
        if name is None or n >= MAX_NAME:
            raise _malformed(f"tensor #{i} name is {n} bytes, llama.cpp allows at most {MAX_NAME - 1}", at)
        if name in names:
            raise _malformed(f"duplicate tensor name {name!r}", at)
        names.add(name)
        dims, elements = _dimensions(cur, name, at)
        ttype = cur.unpack("I", f"type of {name!r}")
        offset = cur.unpack("Q", f"data offset of {name!r}")
        if ttype not in ggml:
            raise _malformed(f"tensor {name!r} has unknown ggml type {ttype}", at)
        tname, block, size = ggml[ttype]
        ne0 = dims[0] if dims else 1
        if ne0 % block:
            raise _malformed(f"tensor {name!r} of type {tname} has {ne0} elements per row, not a multiple of "
                             f"the block size {block}", at)
        infos.append((name, ttype, elements // block * size, offset, at))
        dtypes[tname] += 1
        parameters += elements
    return infos, dtypes, parameters


def _dimensions(cur: _Cursor, name: str, at: int) -> tuple[list[int], int]:
    """(dimensions, element count) of one tensor, refusing shapes llama.cpp refuses."""
    n_dims = cur.unpack("I", f"dimension count of {name!r}")
    if n_dims > MAX_DIMS:
        raise _crafted(f"{n_dims} dimensions for tensor {name!r} (at most {MAX_DIMS})", at)
    dims = [cur.unpack("Q", f"dimensions of {name!r}") for _ in range(n_dims)]
    elements = 1
    for d in dims:
        if d > _INT64_MAX:
            raise _crafted(f"a negative dimension ({d - (1 << 64)}) for tensor {name!r}", at)
        elements *= d
        if elements > _INT64_MAX:
            raise _crafted(f"dimensions {dims} for tensor {name!r}, whose element count overflows "
                           "64 bits", at)
    return dims, elements


def _check_data_offsets(infos: list[tuple[str, int, int, int, int]], data_start: int, alignment: int,
                        size: int) -> None:
    """Tensor data packed in order, aligned, inside the file (llama.cpp's checks)."""
    expected = 0
    for name, _t, nbytes, offset, at in infos:
        if offset != expected:
            raise _malformed(f"tensor {name!r} has data offset {offset}, expected {expected} (tensor data must "
                             f"be packed in order, aligned to {alignment})", at)
        if data_start + offset + nbytes > size:
            raise _malformed(f"tensor {name!r} data [{data_start + offset}, {data_start + offset + nbytes}) runs "
                             f"past the end of the {size}-byte file", at)
        expected += _pad(nbytes, alignment)


def _type_name(vtype: int) -> str:
    if vtype == STRING:
        return "string"
    if vtype == ARRAY:
        return "array"
    return _SCALARS.get(vtype, (f"type{vtype}", ""))[0]


def _skip_array(cur: _Cursor, ctx: "ScanContext", key: str, item: int, count: int) -> None:
    """Skip an array's items without keeping them (string items are walked, numbers jumped over)."""
    if item in _SCALARS:
        width = struct.calcsize(_SCALARS[item][1])
        if count * width > cur.remaining():
            raise _malformed(f"truncated: array {key!r} of {count} {_SCALARS[item][0]} runs past the end of "
                             "the file", cur.pos)
        cur.skip(count * width, f"array {key!r}")
    elif item == STRING:
        if count * 8 > cur.remaining():
            raise _malformed(f"truncated: array {key!r} of {count} strings cannot fit in the rest of the file",
                             cur.pos)
        for j in range(count):
            if j % 65536 == 0:
                ctx.check_time()
            cur.string(f"item {j} of {key!r}", keep=0)
    else:
        # llama.cpp refuses nested arrays (and unknown item types)
        raise _malformed(f"array {key!r} has invalid item type {item}", cur.pos - 12)


def _bom_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """General metadata the ML-BOM uses: architecture, name, quantisation, context length..."""
    _, file_types = _types()
    arch = meta.get("general.architecture")
    out: dict[str, Any] = {}
    for key in ("general.architecture", "general.name", "general.basename", "general.organization",
                "general.finetune", "general.size_label", "general.license", "general.version",
                "general.quantization_version", "general.parameter_count", "tokenizer.ggml.model"):
        if isinstance(meta.get(key), (str, int, float)):
            out[key.split(".", 1)[1] if key.startswith("general.") else key] = meta[key]
    if isinstance(meta.get("general.file_type"), int):
        out["file_type"] = meta["general.file_type"]
        out["quantization"] = file_types.get(meta["general.file_type"], f"unknown ({meta['general.file_type']})")
    if isinstance(arch, str):
        for field in ("context_length", "embedding_length", "block_count"):
            value = meta.get(f"{arch}.{field}")
            if isinstance(value, int):
                out[field] = value
    out["metadata"] = dict(list(meta.items())[:200])  # arrays appear as {"array": type, "length": n}
    return out
