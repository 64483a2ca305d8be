"""The opcode table of the VM, derived from `pickletools.opcodes` (data, not a hand-written list).

Each opcode byte maps to its pickletools name and argument descriptor. Arguments are read by
`Reader` with the same rules as CPython's `_pickle.c` (signedness, quoting, line endings), but
bounded: a large byte/str argument is not read into memory, it becomes a `BigBytes` span that
nested-payload analysis can slice later.
"""
from __future__ import annotations

import codecs
import pickletools
import re
import struct
from typing import TYPE_CHECKING, Any, Callable, Optional

from ...errors import PickleError

if TYPE_CHECKING:
    from ...blob import Blob

# code byte -> (opcode name, argument descriptor name or None)
OPCODES: dict[int, tuple[str, str | None]] = {
    op.code.encode("latin-1")[0]: (op.name, op.arg.name if op.arg else None) for op in pickletools.opcodes
}
# INT reads its line with base 0 (strtol / int(s, 0)), unlike PUT/GET (base 10): own descriptor.
OPCODES[ord("I")] = ("INT", "decimalnl_int")
HIGHEST_PROTOCOL = max(op.proto for op in pickletools.opcodes)
# Opcodes pushing a str/bytes read from their argument: the memo can re-read them (memo.py).
STR_CODES = frozenset(code for code, (_, desc) in OPCODES.items() if desc in (
    "stringnl", "string1", "string4", "bytes1", "bytes4", "bytes8", "bytearray8", "unicodestringnl",
    "unicodestring1", "unicodestring4", "unicodestring8"))
SPAN_CAP = 256  # longer byte/str arguments are kept as BigBytes spans (validated, previewed)
INLINE_CAP = 1 << 20  # longer ones are not even read (BigBytes without preview)
LINE_CAP = 16 << 20  # longest text-opcode line we accept


class BigBytes:
    """A long bytes/str argument left in the blob: [offset, offset+length), with a short preview.

    Arguments longer than `SPAN_CAP` bytes are validated as the loader does (UTF-8 for str) and
    then kept as this span: analyses that need the bytes (nested payloads, a STACK_GLOBAL name)
    read them back from the blob; findings show the preview the folded value would show.
    Arguments longer than `INLINE_CAP` are skipped without being read (no preview).
    """

    __slots__ = ("offset", "length", "kind", "preview", "chars")

    def __init__(self, offset: int, length: int, kind: str, preview: "str | bytes | None" = None,
                 chars: int | None = None) -> None:
        self.offset, self.length, self.kind = offset, length, kind  # kind: bytes|str|py2str|bytearray|int
        self.preview, self.chars = preview, chars

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BigBytes) and (self.offset, self.length, self.kind) == \
            (other.offset, other.length, other.kind)

    def __hash__(self) -> int:
        return hash((self.offset, self.length, self.kind))

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.length} bytes at offset {self.offset}>"

    @property
    def is_text(self) -> bool:
        """What the loader holds is a str (UTF-8, or an ASCII Python 2 string)."""
        return self.kind == "str" or (self.kind == "py2str" and isinstance(self.preview, str))

    def folded(self, max_text: int) -> str:
        """The text `values.fold` gives the value this span stands for."""
        if self.preview is None:
            return repr(self)
        if isinstance(self.preview, str):
            chars = self.chars if self.chars is not None else self.length
            return self.preview if chars <= max_text else self.preview[:max_text] + f"...<{chars} chars>"
        return repr(bytes(self.preview[:max_text])) + f"...<{self.length} bytes>"


PREVIEW_TEXT = 200  # characters of preview a span keeps (values.MAX_TEXT)


def span(data: bytes, offset: int, kind: str, where: int) -> BigBytes:
    """A validated span for argument bytes `data` found at blob `offset` (the opcode at `where`)."""
    if kind == "str":
        text = _utf8(data, where)
        return BigBytes(offset, len(data), kind, text[:PREVIEW_TEXT], len(text))
    if kind == "py2str":
        value = _py2str(data)
        if isinstance(value, str):
            return BigBytes(offset, len(data), kind, value[:PREVIEW_TEXT], len(value))
    return BigBytes(offset, len(data), kind, bytes(data[:PREVIEW_TEXT]))


class Reader:
    """Buffered positioned reads over a blob window [pos, end)."""

    WINDOW = 1 << 20
    FIRST_WINDOW = 1 << 12  # grows to WINDOW: many tiny concatenated streams must not read 1 MiB each
    eof_lines = True  # a last line without newline is read as pickle._Unpickler reads it

    def __init__(self, blob: Blob, pos: int, end: int, window: int | None = None) -> None:
        self.blob, self.pos, self.end = blob, pos, end
        self.buf = b""
        self.buf_start = pos
        self.grow = window is None  # a window given (short re-reads) keeps its size
        self.window = window or min(self.FIRST_WINDOW, self.WINDOW)

    def _fill(self, n: int) -> None:
        want = max(n, self.window)
        if self.grow:
            self.window = min(self.window * 4, self.WINDOW)
        self.buf = self.blob.read_at(self.pos, min(want, self.end - self.pos))
        self.buf_start = self.pos

    def read(self, n: int) -> bytes:
        """Exactly `n` bytes or PickleError (truncated)."""
        rel = self.pos - self.buf_start
        if rel < 0 or rel + n > len(self.buf):
            if self.pos + n > self.end:
                raise PickleError(f"truncated: needed {n} bytes, {self.end - self.pos} left", self.pos)
            self._fill(n)
            rel = 0
        out = self.buf[rel:rel + n]
        self.pos += n
        return out

    def byte(self) -> int:
        rel = self.pos - self.buf_start
        if rel < 0 or rel >= len(self.buf):
            if self.pos >= self.end:
                raise PickleError("truncated: pickle data was truncated (no STOP opcode)", self.pos)
            self._fill(1)
            rel = 0
        self.pos += 1
        return self.buf[rel]

    def skip(self, n: int, into: bool = False) -> None:
        """Pass over `n` argument bytes (`into`: counted bytes, see `read_into`)."""
        if self.pos + n > self.end:
            raise PickleError(f"truncated: argument of {n} bytes runs past the end", self.pos)
        self.pos += n

    def read_into(self, n: int) -> bytes:
        """Counted bytes (`_Unpickler_ReadInto` in C); the same as `read` here."""
        return self.read(n)

    def readline(self) -> bytes:
        """A line including its b'\\n'; at the end of the data, what is left (maybe nothing).

        _pickle.c requires the newline, but pickle._Unpickler (joblib, dill) takes
        `file.readline()` as it comes and strips its last byte whatever it is: `cmod\\n` at the
        end of a file imports `mod`. `eof_lines = False` when the data may go on past `end`.
        """
        start = self.pos
        chunks: list[bytes] = []
        while True:
            rel = self.pos - self.buf_start
            if rel < 0 or rel >= len(self.buf):
                if self.pos >= self.end:
                    if self.eof_lines:
                        return b"".join(chunks)
                    raise PickleError("truncated: line without newline", start)
                self._fill(1)
                rel = 0
            nl = self.buf.find(b"\n", rel)
            if nl >= 0:
                chunks.append(self.buf[rel:nl + 1])
                self.pos = self.buf_start + nl + 1
                return b"".join(chunks)
            chunks.append(self.buf[rel:])
            self.pos = self.buf_start + len(self.buf)
            if self.pos - start > LINE_CAP:
                raise PickleError(f"line longer than {LINE_CAP} bytes", start)


class StreamReader(Reader):
    """The bytes `_pickle.c` reads from a file object without `peek` (io.BytesIO: torch.load).

    After FRAME the C unpickler holds exactly the frame in its buffer; an opcode argument (or a
    line) that does not fit in what is left of it is read afresh from the file, which already
    stands after the frame, so the rest of the frame is silently dropped. Counted bytes
    (BINBYTES, BYTEARRAY8) are copied from the buffer and then the file, i.e. linearly.
    CPython >= 3.13.15 / 3.14.7 and the pure-Python unpickler reject such straddling reads
    (gh-154848); older C unpicklers run opcodes a linear reader never sees.
    """

    def __init__(self, blob: Blob, pos: int, end: int) -> None:
        super().__init__(blob, pos, end)
        self.file_pos = pos  # the file object's position == end of the C buffer

    def _sync(self) -> None:
        if self.pos > self.file_pos:
            self.file_pos = self.pos

    def read(self, n: int) -> bytes:
        if self.pos + n > self.file_pos:
            self.pos = self.file_pos  # whatever is left of the frame is dropped
        out = super().read(n)
        self._sync()
        return out

    def byte(self) -> int:
        out = super().byte()
        self._sync()
        return out

    def read_into(self, n: int) -> bytes:
        out = super().read(n)
        self._sync()
        return out

    def skip(self, n: int, into: bool = False) -> None:
        if not into and self.pos + n > self.file_pos:
            self.pos = self.file_pos  # like read(): the rest of the frame is dropped
        super().skip(n)
        self._sync()

    eof_lines = False  # _pickle.c: a line needs its newline

    def readline(self) -> bytes:
        if self.pos < self.file_pos:
            left = self.file_pos - self.pos
            rest = self.blob.read_at(self.pos, min(left, LINE_CAP + 1))
            if b"\n" not in rest and left <= LINE_CAP:
                self.pos = self.file_pos  # no newline in the frame buffer: a fresh line from the file
        out = super().readline()
        self._sync()
        return out

    def frame(self, size: int) -> None:
        """FRAME: load `size` bytes into the buffer unless they are already there."""
        if self.pos + size <= self.file_pos:
            return
        self.pos = self.file_pos
        if self.pos + size > self.end:
            raise PickleError("pickle data was truncated", self.pos)
        self.file_pos = self.pos + size


def _int(data: bytes, signed: bool) -> int:
    return int.from_bytes(data, "little", signed=signed)


def _c_text(body: bytes) -> bytes:
    """The part of a text operand C's strtol/PyLong_FromString sees: it ends at the first NUL."""
    nul = body.find(b"\0")
    return body if nul < 0 else body[:nul]


def _lenient_int(text: bytes, base: int) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None


def _decimal_line(line: bytes, offset: int) -> int | bool:
    """PUT/GET/BINPUT-style decimal lines: `PyLong_FromString(s, NULL, 10)` in `_pickle.c`."""
    body = line[:-1]
    if body == b"00":
        return False
    if body == b"01":
        return True
    value = _lenient_int(_c_text(body), 10)
    if value is None:
        value = _lenient_int(body, 10)
    if value is None:
        raise PickleError(f"invalid literal for int(): {body[:40]!r}", offset)
    return value


_STRTOL = re.compile(rb"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _int_line(line: bytes, offset: int) -> int | bool:
    """INT: `_pickle.c` uses strtol(s, &end, 0) (hex, C octal `010`, text up to a NUL), then
    PyLong_FromString(s, NULL, 0); the pure-Python unpickler uses int(line, 0). Anything one of
    them accepts is accepted here (a stricter parser would stop where the loader goes on)."""
    body = line[:-1]
    if body == b"00":
        return False
    if body == b"01":
        return True
    text = _c_text(body)
    if not text and body:  # strtol on an empty C string: 0, end pointer on the NUL
        return 0
    m = _STRTOL.fullmatch(text)
    if m:
        digits = m.group(2)
        base = 16 if digits[:2] in (b"0x", b"0X") else 8 if digits[:1] == b"0" and len(digits) > 1 else 10
        value = int(digits[2:] if base == 16 else digits, base)
        return -value if m.group(1) == b"-" else value
    for candidate in (text, body):
        for base in (0, 10):
            lenient = _lenient_int(candidate, base)
            if lenient is not None:
                return lenient
    raise PickleError(f"invalid literal for int(): {body[:40]!r}", offset)


def _long_line(line: bytes, offset: int) -> int:
    """LONG: trailing `L` dropped, then PyLong_FromString(s, NULL, 0) (C) / int(s, 0) (Python)."""
    body = line[:-1]
    if body.endswith(b"L"):
        body = body[:-1]
    for candidate in (_c_text(body), body):
        for base in (0, 10):
            value = _lenient_int(candidate, base)
            if value is not None:
                return value
    raise PickleError(f"invalid literal for LONG: {body[:40]!r}", offset)


def _float_line(line: bytes, offset: int) -> float:
    """FLOAT: C's PyOS_string_to_double stops at a NUL; Python's float() allows more spellings."""
    body = line[:-1]
    for candidate in (_c_text(body), body):
        try:
            return float(candidate)
        except ValueError:
            continue
    raise PickleError(f"could not convert string to float: {body[:40]!r}", offset)


def _string_line(line: bytes, offset: int) -> str | bytes:
    body = line[:-1]
    if len(body) < 2 or body[0] != body[-1] or body[:1] not in (b"'", b'"'):
        raise PickleError("the STRING opcode argument must be quoted", offset)
    try:
        raw = codecs.escape_decode(body[1:-1])[0]
    except ValueError as exc:
        raise PickleError(f"bad STRING escape: {exc}", offset) from None
    return _py2str(raw)


def _py2str(raw: bytes) -> str | bytes:
    """Python 2 str payloads: decoded like the default encoding='ASCII' when possible."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return raw


def _utf8(raw: bytes, offset: int) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise PickleError(f"invalid UTF-8 in string: {exc.reason}", offset) from None


def _sized(r: Reader, n: int, kind: str, offset: int) -> Any:
    if n < 0:
        raise PickleError(f"negative byte count {n}", offset)
    if n > INLINE_CAP:
        r.skip(n, into=kind in ("bytes", "bytearray"))
        return BigBytes(r.pos - n, n, kind)
    data = r.read_into(n) if kind in ("bytes", "bytearray") else r.read(n)
    if n > SPAN_CAP:
        return span(data, r.pos - n, kind, offset)
    if kind == "str":
        return _utf8(data, offset)
    if kind == "py2str":
        return _py2str(data)
    if kind == "bytearray":
        return bytearray(data)
    return data


def read_arg(r: Reader, desc: str, offset: int) -> Any:  # noqa: C901 - one branch per argument descriptor
    """Read one argument of descriptor `desc` (pickletools name) at the reader position."""
    if desc == "uint1":
        return r.read(1)[0]
    if desc == "uint2":
        return _int(r.read(2), False)
    if desc == "int4":
        return _int(r.read(4), True)
    if desc == "uint4":
        return _int(r.read(4), False)
    if desc == "uint8":
        return _int(r.read(8), False)
    if desc == "float8":
        return struct.unpack(">d", r.read(8))[0]
    if desc == "long1":
        return _int(r.read(r.read(1)[0]), True)
    if desc == "long4":
        n = _int(r.read(4), True)
        if n < 0:
            raise PickleError("LONG pickle has negative byte count", offset)
        if n > INLINE_CAP:  # _pickle.c decodes any size: kept on disk like a large bytes argument
            r.skip(n)
            return BigBytes(r.pos - n, n, "int")
        return _int(r.read(n), True)
    if desc == "decimalnl_short":
        return _decimal_line(r.readline(), offset)
    if desc == "decimalnl_long":
        return _long_line(r.readline(), offset)
    if desc == "floatnl":
        return _float_line(r.readline(), offset)
    if desc == "decimalnl_int":
        return _int_line(r.readline(), offset)
    if desc == "stringnl":
        return _string_line(r.readline(), offset)
    if desc == "stringnl_noescape":  # PERSID: ASCII line
        line = r.readline()[:-1]
        try:
            return line.decode("ascii")
        except UnicodeDecodeError:
            raise PickleError("persistent IDs in protocol 0 must be ASCII strings", offset) from None
    if desc == "stringnl_noescape_pair":
        first = _utf8(r.readline()[:-1], offset)
        second = _utf8(r.readline()[:-1], offset)
        return first, second
    if desc == "unicodestringnl":
        line = r.readline()[:-1]
        try:
            return line.decode("raw-unicode-escape")
        except UnicodeDecodeError as exc:
            raise PickleError(f"bad UNICODE argument: {exc.reason}", offset) from None
    if desc == "string1":
        return _sized(r, r.read(1)[0], "py2str", offset)
    if desc == "string4":
        n = _int(r.read(4), True)
        if n < 0:
            raise PickleError("BINSTRING pickle has negative byte count", offset)
        return _sized(r, n, "py2str", offset)
    if desc == "bytes1":
        return _sized(r, r.read(1)[0], "bytes", offset)
    if desc == "bytes4":
        return _sized(r, _int(r.read(4), False), "bytes", offset)
    if desc == "bytes8":
        return _sized(r, _int(r.read(8), False), "bytes", offset)
    if desc == "bytearray8":
        return _sized(r, _int(r.read(8), False), "bytearray", offset)
    if desc == "unicodestring1":
        return _sized(r, r.read(1)[0], "str", offset)
    if desc == "unicodestring4":
        return _sized(r, _int(r.read(4), False), "str", offset)
    if desc == "unicodestring8":
        return _sized(r, _int(r.read(8), False), "str", offset)
    raise PickleError(f"no reader for argument type {desc}", offset)  # pragma: no cover


# ---------------------------------------------------------------------------- buffer readers
# The same argument rules as `read_arg`, reading a bytes window `buf` directly (the VM's fast
# path): `reader(buf, p, base, where)` -> (argument, position after it), or None when the window
# does not hold the whole argument or the argument is invalid (the caller then takes the `Reader`
# path, which refills, or raises the loader's error with the loader's position).
# `base` is the blob offset of buf[0], `where` the opcode's offset (for errors).
_U16, _I32, _U32, _U64, _F64 = (struct.Struct(f).unpack_from for f in ("<H", "<i", "<I", "<Q", ">d"))
BufferReader = Callable[[bytes, int, int, int], Optional[tuple[Any, int]]]


def _counted(kind: str, width: int, unpack: Callable[[bytes, int], tuple[int]] | None) -> BufferReader:
    def reader(buf: bytes, p: int, base: int, where: int) -> tuple[Any, int] | None:
        if p + width > len(buf):
            return None
        n = buf[p] if unpack is None else unpack(buf, p)[0]
        start = p + width
        end = start + n
        if end > len(buf) or n > INLINE_CAP or (kind == "py2str" and n >= 1 << 31):
            return None
        data = buf[start:end]
        try:
            if n > SPAN_CAP:
                return span(data, base + start, kind, where), end
            if kind == "str":
                return data.decode("utf-8", "surrogatepass"), end
        except (UnicodeDecodeError, PickleError):
            return None  # the Reader path raises the loader's error, at the loader's position
        if kind == "py2str":
            return _py2str(data), end
        if kind == "bytearray":
            return bytearray(data), end
        return data, end
    return reader


def _fixed(width: int, convert: Callable[[bytes, int], Any]) -> BufferReader:
    def reader(buf: bytes, p: int, base: int, where: int) -> tuple[Any, int] | None:
        if p + width > len(buf):
            return None
        return convert(buf, p), p + width
    return reader


def _long1(buf: bytes, p: int, base: int, where: int) -> tuple[Any, int] | None:
    if p >= len(buf) or p + 1 + buf[p] > len(buf):
        return None
    n = buf[p]
    return int.from_bytes(buf[p + 1:p + 1 + n], "little", signed=True), p + 1 + n


BUFFER_READERS: dict[str, BufferReader] = {
    "uint1": _fixed(1, lambda b, p: b[p]),
    "uint2": _fixed(2, lambda b, p: _U16(b, p)[0]),
    "int4": _fixed(4, lambda b, p: _I32(b, p)[0]),
    "uint4": _fixed(4, lambda b, p: _U32(b, p)[0]),
    "uint8": _fixed(8, lambda b, p: _U64(b, p)[0]),
    "float8": _fixed(8, lambda b, p: _F64(b, p)[0]),
    "long1": _long1,
    "string1": _counted("py2str", 1, None),
    "string4": _counted("py2str", 4, _U32),
    "bytes1": _counted("bytes", 1, None),
    "bytes4": _counted("bytes", 4, _U32),
    "bytes8": _counted("bytes", 8, _U64),
    "bytearray8": _counted("bytearray", 8, _U64),
    "unicodestring1": _counted("str", 1, None),
    "unicodestring4": _counted("str", 4, _U32),
    "unicodestring8": _counted("str", 8, _U64),
}
# Text arguments (lines), long4 and anything else go through `read_arg`.
