"""Nested payloads: bytes a call hands to another loader (pickle.loads, torch.load, marshal.loads...).

The argument is constant-folded back to bytes through the decoders the pickle itself calls
(base64, hex, zlib, BytesIO...), decoded here with the standard library (data only), and the
result is analysed as the loader would read it, one nesting level deeper.
"""
from __future__ import annotations

import base64
import binascii
import bz2
import codecs
import functools
import lzma
import zlib
from typing import TYPE_CHECKING, Any

from . import values as V
from .opcodes import BigBytes
from ... import datafiles

if TYPE_CHECKING:
    from ...blob import Blob


DECODE_CAP = 64 << 20  # largest nested payload we materialise


@functools.lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, str]]:
    """data/policy/picklevm.toml: nested_loaders, decoders, marshal_names."""
    return datafiles.load("policy", "picklevm.toml")


def loader_kind(func: Any) -> str | None:
    """pickle | torch | joblib | numpy | marshal when `func` loads its first argument."""
    if isinstance(func, V.Global):
        return tables()["nested_loaders"].get(func.full)
    return None


def _bounded(data: bytes) -> bytes:
    if len(data) > DECODE_CAP:
        raise ValueError(f"decoded payload larger than {DECODE_CAP} bytes")
    return data


def _decode(kind: str, data: bytes, extra: tuple) -> bytes:
    if kind == "identity":
        return data
    if kind == "base64":
        return base64.b64decode(data)
    if kind == "base64url":
        return base64.urlsafe_b64decode(data)
    if kind == "base32":
        return base64.b32decode(data)
    if kind == "base85":
        return base64.b85decode(data)
    if kind == "ascii85":
        return base64.a85decode(data)
    if kind == "hex":
        return binascii.unhexlify(bytes(c for c in data if c not in b" \t\r\n"))
    if kind == "zlib":
        return _bounded(zlib.decompressobj().decompress(data, DECODE_CAP + 1))
    if kind == "bz2":
        return _bounded(bz2.BZ2Decompressor().decompress(data, DECODE_CAP + 1))
    if kind == "lzma":
        return _bounded(lzma.LZMADecompressor().decompress(data, DECODE_CAP + 1))
    if kind == "gzip":
        return _bounded(zlib.decompressobj(31).decompress(data, DECODE_CAP + 1))
    if kind == "codec":
        codec = str(extra[0]).lower().replace("-", "_") if extra else "utf_8"
        if codec in ("base64", "base_64", "base64_codec"):
            return base64.b64decode(data)
        if codec in ("hex", "hex_codec"):
            return binascii.unhexlify(data)
        if codec in ("zlib", "zip", "zlib_codec"):
            return _bounded(zlib.decompressobj().decompress(data, DECODE_CAP + 1))
        if codec in ("bz2", "bz2_codec"):
            return _bounded(bz2.BZ2Decompressor().decompress(data, DECODE_CAP + 1))
        if codec in ("rot13", "rot_13"):
            return codecs.encode(data.decode("latin-1"), "rot13").encode("latin-1")
        return data
    raise ValueError(f"unknown decoder {kind}")  # pragma: no cover


def payload_bytes(value: Any, blob: Blob, depth: int = 0) -> bytes | None:
    """The bytes `value` stands for at run time, when constant folding can tell; else None."""
    if depth > 8:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, BigBytes):
        if value.length > DECODE_CAP or value.kind == "int":
            return None
        return blob.read_at(value.offset, value.length)
    if isinstance(value, V.Call):
        func = value.func
        args = value.args if isinstance(value.args, tuple) else ()
        kind = tables()["decoders"].get(func.full) if isinstance(func, V.Global) else None
        if kind is None or not args:
            return None
        inner = payload_bytes(args[0], blob, depth + 1)
        if inner is None:
            return None
        try:
            return _bounded(_decode(kind, inner, tuple(args[1:])))
        except (ValueError, TypeError, binascii.Error, zlib.error, OSError, lzma.LZMAError, EOFError):
            return None
    return None


def looks_like_pickle(data: bytes) -> bool:
    """A stream an unpickler would run or complete from the first byte (any protocol, PROTO or not)."""
    from .trial import start_of_bytes

    start = start_of_bytes(data)
    return start is not None and start.is_pickle


def looks_like_code(data: bytes) -> bool:
    return len(data) >= 16 and data[0] in (0x63, 0xE3)
