"""safetensors: strict header validation with the `safetensors` library's own rules.

Layout: u64 little-endian header size N, N bytes of UTF-8 JSON (`{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}`), then the tensor buffer. The library
refuses a file unless N <= 100,000,000, the JSON is strict, dtypes are known, every tensor's byte
span equals shape x dtype size, and the sorted spans are contiguous from 0 and cover the buffer
exactly. A file it refuses is never called clean here: it is inconclusive with the exact reason.
Only the header is read; tensor data is never touched.
"""
from __future__ import annotations

import functools
import json
import struct
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, FormatError
from .. import datafiles
from ..errors import DuplicateKey
from ..findings import FormatName


if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.SAFETENSORS

LIBRARY_MAX_HEADER = 100_000_000  # safetensors::tensor::MAX_HEADER_SIZE
_U64_MAX = (1 << 64) - 1
_JSON_WS = b" \t\r\n"
_RULE = "MS-ST-001"


@functools.lru_cache(maxsize=1)
def dtype_bits() -> dict[str, int]:
    """Known dtype -> size in bits (data/safetensors_dtypes.toml)."""
    return dict(datafiles.load("safetensors_dtypes.toml")["bits"])


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """u64 LE header length (plausible for this file size order) followed by a JSON object."""
    if len(head) < 10:
        return False
    n = struct.unpack_from("<Q", head)[0]
    if n < 2 or n >= 1 << 40:
        return False
    body = head[8:8 + 64].lstrip(_JSON_WS)
    return body[:1] == b"{" and (len(body) < 2 or body[1:2].lstrip(_JSON_WS)[:1] in (b"\"", b"}", b""))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _usize(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _U64_MAX:  # bool is an int subclass: refused too
        raise FormatError(f"{what} must be an unsigned 64-bit integer, got {json.dumps(value)[:40]}",
                          rule_id=_RULE)
    return value


def read_header(blob: "Blob", max_header: int = LIBRARY_MAX_HEADER,
                max_entries: int | None = None) -> tuple[int, dict[str, Any]]:
    """(N, parsed header) with strict JSON; FormatError (MS-ST-001/002) on anything the library refuses."""
    if blob.size < 8:
        raise FormatError(f"file of {blob.size} bytes is shorter than the 8-byte header size", 0, rule_id=_RULE)
    n = struct.unpack("<Q", blob.read_at(0, 8))[0]
    if n > LIBRARY_MAX_HEADER:
        raise FormatError(f"header size {n} exceeds the library limit of {LIBRARY_MAX_HEADER} bytes", 0,
                          rule_id=_RULE)
    if n > max_header:
        raise BudgetExceeded("max_header_bytes", max_header)
    if 8 + n > blob.size:
        raise FormatError(f"header size {n} runs past the end of the {blob.size}-byte file", 0, rule_id=_RULE)
    raw = blob.read_at(8, n)
    # Count entries before parsing: the parsed header takes ~13x its JSON size in objects.
    if max_entries is not None and raw.count(b'"data_offsets"') > max_entries:
        raise BudgetExceeded("max_members", max_entries)
    try:
        text = raw.decode("utf-8")
        del raw
    except UnicodeDecodeError as exc:
        raise FormatError(f"header is not UTF-8 ({exc.reason} at header byte {exc.start})", 8 + exc.start,
                          rule_id=_RULE) from None
    if not text.lstrip(" \t\r\n").startswith("{"):
        raise FormatError("header is not a JSON object", 8, rule_id=_RULE)
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except DuplicateKey as exc:
        raise FormatError(f"duplicate key {exc.key!r}", 8, rule_id="MS-ST-002") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON in header: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          8 + len(text[:exc.pos].encode("utf-8")), rule_id=_RULE) from None
    except ValueError as exc:
        raise FormatError(f"invalid JSON in header: {exc}", 8, rule_id=_RULE) from None
    except RecursionError:
        raise FormatError("header JSON nested too deeply", 8, rule_id=_RULE) from None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in _strings(header)):
        raise FormatError("header JSON contains an unpaired surrogate escape", 8, rule_id=_RULE)
    return n, header


def _strings(value: Any) -> Any:
    """Every str (keys and values) of a parsed JSON value, iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield from item
        elif isinstance(item, dict):
            for k, v in item.items():
                yield from k
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)


def validate(header: dict[str, Any], buffer_size: int, ctx: "ScanContext | None" = None) -> dict[str, Any]:
    """Check tensor entries like safetensors' Metadata::validate; return the BOM facts."""
    bits = dtype_bits()
    metadata = header.get("__metadata__")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise FormatError("__metadata__ must map strings to strings", 8, rule_id=_RULE)
    spans: list[tuple[int, int, str]] = []
    dtypes: Counter[str] = Counter()
    parameters = 0
    for i, (name, info) in enumerate(header.items()):
        if ctx is not None and i % 4096 == 0:
            ctx.check_time()
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise FormatError(f"tensor {name!r}: entry is not an object", 8, rule_id=_RULE)
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                raise FormatError(f"tensor {name!r}: missing field {key!r}", 8, rule_id=_RULE)
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in bits:
            raise FormatError(f"tensor {name!r}: unknown dtype {json.dumps(dtype)[:40]}", 8, rule_id=_RULE)
        if not isinstance(shape, list):
            raise FormatError(f"tensor {name!r}: shape is not a list", 8, rule_id=_RULE)
        if not isinstance(offsets, list) or len(offsets) != 2:
            raise FormatError(f"tensor {name!r}: data_offsets is not a [begin, end] pair", 8, rule_id=_RULE)
        begin, end = (_usize(v, f"tensor {name!r}: data offset") for v in offsets)
        elements = 1
        for dim in shape:
            elements *= _usize(dim, f"tensor {name!r}: dimension")
            if elements > _U64_MAX:
                raise FormatError(f"tensor {name!r}: element count overflows 64 bits", 8, rule_id=_RULE)
        nbits = elements * bits[dtype]
        if nbits > _U64_MAX:
            raise FormatError(f"tensor {name!r}: byte size overflows 64 bits", 8, rule_id=_RULE)
        if nbits % 8:
            raise FormatError(f"tensor {name!r}: {elements} x {dtype} is not a whole number of bytes", 8,
                              rule_id=_RULE)
        spans.append((begin, end, name))
        if end >= begin and end - begin != nbits // 8:
            raise FormatError(f"tensor {name!r}: shape {shape} x {dtype} is {nbits // 8} bytes but its data "
                              f"offsets span {end - begin}", 8, rule_id=_RULE)
        dtypes[dtype] += 1
        parameters += elements
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position or end < begin:
            what = "overlaps the previous tensor" if begin < position else \
                "leaves a gap after the previous tensor" if begin > position else "ends before it begins"
            raise FormatError(f"tensor {name!r}: data offsets [{begin}, {end}] {what} (expected begin {position})",
                              8, rule_id=_RULE)
        position = end
    if position != buffer_size:
        raise FormatError(f"tensors cover {position} bytes but the data buffer holds {buffer_size} "
                          "(file not fully covered)" if position < buffer_size else
                          f"tensors need {position} bytes but the data buffer holds only {buffer_size}",
                          8, rule_id=_RULE)
    return {"tensors": len(spans), "parameters": parameters, "total": parameters,
            "dtypes": dict(sorted(dtypes.items())),
            "metadata": {k[:200]: v[:1000] for k, v in list((metadata or {}).items())[:100]}}


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Validate the header; record tensor/parameter/dtype counts for the BOM."""
    n, header = read_header(blob, min(LIBRARY_MAX_HEADER, ctx.budgets.max_header_bytes), ctx.budgets.max_members)
    facts = validate(header, blob.size - 8 - n, ctx)
    facts["header_bytes"] = n
    ctx.artefact.properties["safetensors"] = facts
    scan_metadata(header.get("__metadata__") or {}, ctx)


# ---------------------------------------------------------------------------------------------
# __metadata__ payloads: free-form strings that some tools turn into templates, code or pickles

_TEMPLATE_KEYS = ("chat_template", "tokenizer.chat_template")
_PICKLE_B64 = ("gAJ", "gAN", "gAS", "gAV")  # base64 of \x80 + protocol 2..5


def scan_metadata(metadata: dict[str, str], ctx: "ScanContext") -> None:
    """Send `__metadata__` values that are templates, Python code or base64 pickles to their analysers.

    Chat templates (by key, or any value that parses as Jinja with `{{`/`{%`) go to the template
    analysis; values that parse as Python and look like code go to the Python analysis (as a
    standalone file: nothing loads them by default, malicious shapes are flagged anyway);
    base64 pickles go back through the sniffer (pickle engine). Plain strings are left alone.
    """
    import ast
    import base64
    import binascii

    from ..blob import BytesBlob
    from ..analysis.jinja_template import analyse_template, parse_template

    for i, (key, value) in enumerate(metadata.items()):
        if i % 256 == 0:
            ctx.check_time()
        field = f"__metadata__.{key[:100]}"
        if key in _TEMPLATE_KEYS or key.startswith("tokenizer.chat_template."):
            analyse_template(value, ctx, field=field)
            continue
        if ("{{" in value or "{%" in value) and len(value) <= (1 << 20):
            try:
                parse_template(value)
            except Exception:  # noqa: BLE001 - not a template: plain text with braces
                pass
            else:
                analyse_template(value, ctx, field=field)
                continue
        stripped = value.strip()
        if stripped.startswith(_PICKLE_B64) and len(stripped) <= (64 << 20):
            try:
                raw = base64.b64decode(stripped, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if raw[:1] == b"\x80":
                ctx.charge_decompressed(len(raw), len(stripped))
                ctx.descend(BytesBlob(raw, field), field, nested=True)
                continue
        if any(h in value for h in datafiles.load("python_dangerous.toml")["code_hints"]["strings"]) \
                and len(value) <= (1 << 20):
            try:
                ast.parse(value)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            ctx.descend(BytesBlob(value.encode("utf-8", "surrogatepass"), field + ".py"), field + ".py",
                         nested=True)
