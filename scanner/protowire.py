"""A small, bounded protobuf wire-format walker over a Blob (used by the ONNX and TensorFlow modules).

It never materialises a message: fields are yielded with their offsets, length-delimited payloads
are skipped by offset (positioned reads only), and only the strings a caller asks for are read.
Nesting depth and the total number of fields walked are budgeted, so hostile inputs end in a
`ProtoError` (a `FormatError`) or `BudgetExceeded`, never a hang or unbounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .blob import Blob
from .errors import BudgetExceeded
from .errors import ProtoError

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
_WINDOW = 64 * 1024


@dataclass
class Limits:
    """Budgets of one walk, shared by every nested reader of that walk."""

    max_depth: int = 64  # protobuf's own default recursion limit is 100
    max_fields: int = 20_000_000
    max_string: int = 1 << 20  # longest string a caller may read into memory
    fields: int = 0


@dataclass(frozen=True)
class Field:
    """One field: its number, wire type, where its value starts, and its value or length."""

    number: int
    wire: int
    offset: int  # absolute offset of the value (after the tag / length prefix)
    value: int = 0  # varint / fixed value; payload length for LEN fields
    tag_offset: int = 0

    @property
    def end(self) -> int:
        if self.wire == LEN:
            return self.offset + self.value
        if self.wire == I64:
            return self.offset + 8
        if self.wire == I32:
            return self.offset + 4
        return self.offset  # varint: the reader tracks its own position


class _Cache:
    """One read-ahead window over the blob, so byte-wise varint decoding costs no syscalls."""

    def __init__(self, blob: Blob) -> None:
        self.blob, self.start, self.data = blob, 0, b""

    def get(self, offset: int, n: int) -> bytes:
        if not (self.start <= offset and offset + n <= self.start + len(self.data)):
            self.start = offset
            self.data = self.blob.read_at(offset, max(n, _WINDOW))
        rel = offset - self.start
        return self.data[rel:rel + n]


class Reader:
    """Fields of one message occupying [start, end) of a blob."""

    def __init__(self, blob: Blob, start: int = 0, end: int | None = None, *, limits: Limits | None = None,
                 depth: int = 0, cache: _Cache | None = None) -> None:
        self.blob = blob
        self.start = start
        self.end = blob.size if end is None else end
        if self.end > blob.size or self.start > self.end:
            raise ProtoError(f"message [{start}, {self.end}) exceeds the {blob.size}-byte input", start)
        self.limits = limits or Limits()
        self.depth = depth
        if depth > self.limits.max_depth:
            raise BudgetExceeded("protobuf nesting depth", self.limits.max_depth)
        self.cache = cache or _Cache(blob)

    def _varint(self, pos: int) -> tuple[int, int]:
        data = self.cache.get(pos, 10)
        result = shift = 0
        for i, byte in enumerate(data):
            if pos + i >= self.end:
                break
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if i == 9 and byte > 1:
                    raise ProtoError("varint overflows 64 bits", pos)
                return result, pos + i + 1
            shift += 7
        raise ProtoError("truncated or over-long varint", pos)

    def __iter__(self) -> Iterator[Field]:
        pos = self.start
        limits = self.limits
        while pos < self.end:
            limits.fields += 1
            if limits.fields > limits.max_fields:
                raise BudgetExceeded("protobuf fields", limits.max_fields)
            tag_offset = pos
            tag, pos = self._varint(pos)
            number, wire = tag >> 3, tag & 7
            if number == 0 or number > 0x1FFFFFFF:
                raise ProtoError(f"invalid field number {number}", tag_offset)
            if wire == VARINT:
                value, pos = self._varint(pos)
                yield Field(number, wire, pos, value, tag_offset)
                continue
            if wire == LEN:
                length, pos = self._varint(pos)
                if length > self.end - pos:
                    raise ProtoError(f"field {number} declares {length} bytes, only {self.end - pos} remain",
                                     tag_offset)
                yield Field(number, wire, pos, length, tag_offset)
                pos += length
                continue
            if wire in (I64, I32):
                size = 8 if wire == I64 else 4
                if size > self.end - pos:
                    raise ProtoError(f"truncated fixed{size * 8} field {number}", tag_offset)
                raw = self.cache.get(pos, size)
                yield Field(number, wire, pos, int.from_bytes(raw, "little"), tag_offset)
                pos += size
                continue
            # Groups are deprecated and unused by ONNX/TensorFlow messages; wire types 6-7 are invalid.
            raise ProtoError(f"unsupported wire type {wire} (field {number})", tag_offset)

    def sub(self, field: Field) -> "Reader":
        """A reader over an embedded message field (one level deeper)."""
        if field.wire != LEN:
            raise ProtoError(f"field {field.number} is not length-delimited", field.tag_offset)
        return Reader(self.blob, field.offset, field.end, limits=self.limits, depth=self.depth + 1,
                      cache=self.cache)

    def bytes(self, field: Field, limit: int | None = None) -> bytes:
        """The payload of a LEN field, read only if it fits the string budget."""
        if field.wire != LEN:
            raise ProtoError(f"field {field.number} is not length-delimited", field.tag_offset)
        cap = self.limits.max_string if limit is None else limit
        if field.value > cap:
            raise BudgetExceeded("protobuf string", cap)
        if field.value <= _WINDOW:
            return self.cache.get(field.offset, field.value)
        return self.blob.read_at(field.offset, field.value)

    def text(self, field: Field, limit: int | None = None) -> str:
        """A string field, decoded as UTF-8 (protobuf `string`); invalid UTF-8 is a format error."""
        raw = self.bytes(field, limit)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtoError(f"field {field.number} is not valid UTF-8", field.offset) from None


def signed64(value: int) -> int:
    """Reinterpret a varint as a two's-complement int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(reader: Reader, field: Field, limit: int = 4096) -> list[int]:
    """Decode a packed repeated varint field (bounded to `limit` values)."""
    out: list[int] = []
    pos, end = field.offset, field.end
    while pos < end and len(out) < limit:
        value, pos = reader._varint(pos)  # noqa: SLF001 - same module family
        out.append(value)
    return out
