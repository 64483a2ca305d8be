"""NumPy `.npy`: header parse; object dtypes (also inside structured dtypes) carry a pickle.

`numpy.load(allow_pickle=True)` unpickles the data of any array whose dtype has objects
(CVE-2019-6446), so that data goes through the pickle VM. `.npz` archives are zips: their `.npy`
members come back here through the sniffer.
"""
from __future__ import annotations

import ast
import re
import struct
from typing import TYPE_CHECKING, Any

from ..errors import FormatError
from ..analysis.picklevm import analyse_pickle
from . import pickle as binary
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.NUMPY
MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20
# An object type anywhere in a dtype string ("O", "|O8", "2O", "(2,)O", "i4,O", "object_").
OBJECT_TEXT = re.compile(r"(^|[,\s<>|=)\d])(O|object)")


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    return head.startswith(MAGIC)


def has_object(descr: Any, depth: int = 0) -> bool:
    """True if numpy.load would unpickle the data: the dtype numpy builds from `descr` has objects.

    numpy's own `descr_to_dtype` decides (it only parses the literal; spellings such as
    `object_`, `2O`, `(2,)O` or `i4,O` all mean objects); the textual walk below is the fallback
    when numpy is missing or rejects the descr, and it errs on the object side.
    """
    if depth == 0:
        try:
            from numpy.lib.format import descr_to_dtype

            if descr_to_dtype(descr).hasobject:
                return True
        except Exception:  # noqa: BLE001 - numpy absent or descr invalid: textual walk below
            pass
    return _textual_object(descr, depth)


def _textual_object(descr: Any, depth: int = 0) -> bool:
    """Textual check of a descr: any type string that spells an object type."""
    if depth > 32:
        return True  # absurd nesting: treat as objects, the pickle scan is the safe side
    if isinstance(descr, str):
        return bool(OBJECT_TEXT.search(descr))
    if isinstance(descr, list):  # structured: [(name, type[, shape]), ...]; names are not types
        return any(isinstance(f, (tuple, list)) and len(f) >= 2 and _textual_object(f[1], depth + 1)
                   for f in descr)
    if isinstance(descr, tuple) and descr:  # sub-array: (type, shape)
        return _textual_object(descr[0], depth + 1)
    return False


def parse_header(blob: "Blob") -> tuple[dict, int, tuple[int, int]]:
    """(header dict, data offset, version) exactly as numpy.lib.format reads them."""
    head = blob.read_at(0, 12)
    if len(head) < 10:
        raise FormatError("truncated .npy header", 0)
    major, minor = head[6], head[7]
    if major == 1:
        (hlen,), start = struct.unpack("<H", head[8:10]), 10
    elif major in (2, 3):
        if len(head) < 12:
            raise FormatError("truncated .npy header", 0)
        (hlen,), start = struct.unpack("<I", head[8:12]), 12
    else:
        raise FormatError(f"unsupported .npy version {major}.{minor}", 6)
    if hlen > MAX_HEADER:
        raise FormatError(f".npy header of {hlen} bytes is larger than {MAX_HEADER}", 8)
    raw = blob.read_at(start, hlen)
    if len(raw) < hlen:
        raise FormatError(".npy header truncated", start)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(text)  # literal syntax only, as numpy's own reader does
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise FormatError(f".npy header is not a Python literal: {type(exc).__name__}", start) from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise FormatError(".npy header lacks descr/fortran_order/shape", start)
    return header, start + hlen, (major, minor)


def _data_size(header: dict) -> int | None:
    try:
        from numpy.lib.format import descr_to_dtype

        count = 1
        for n in header["shape"]:
            count *= int(n)
        return count * descr_to_dtype(header["descr"]).itemsize
    except Exception:  # noqa: BLE001 - numpy absent or descr unusual: size unknown
        return None


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    header, data_offset, version = parse_header(blob)
    objects = has_object(header["descr"])
    facts: dict[str, Any] = {"version": f"{version[0]}.{version[1]}", "descr": str(header["descr"])[:200],
                             "shape": [n if isinstance(n, int) else str(n) for n in header["shape"]][:32]
                             if isinstance(header["shape"], tuple) else str(header["shape"])[:100],
                             "fortran_order": bool(header["fortran_order"]), "object_dtype": objects}
    key = "numpy" if ctx.member is None else None
    if key:
        ctx.artefact.properties["numpy"] = facts
    if objects:
        result = analyse_pickle(blob, ctx, start=data_offset, flavour="numpy", max_streams=1)
        binary.record(ctx, result, "numpy")
        return
    size = _data_size(header)
    if size is not None and blob.size - data_offset < size:
        raise FormatError(f"array data truncated: {blob.size - data_offset} of {size} bytes", data_offset)
