"""A static reader of the `marshal` format: names and constants of code objects, never executed.

`marshal.loads` would build live code objects; this walks the same bytes (type codes of
CPython's `Python/marshal.c`, FLAG_REF back-references) and collects the strings a code object
names (`co_names`, `co_consts`, nested code objects), which is what tells what it would do.
Both the 3.11+ code layout and the 3.8-3.10 layout are tried.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

FLAG_REF = 0x80
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000


class MarshalError(ValueError):
    """Not a well-formed marshal payload."""


@dataclass
class CodeSummary:
    """What the marshalled payload holds."""

    code_objects: int = 0
    names: list[str] = field(default_factory=list)  # co_names and string constants, in order
    qualnames: list[str] = field(default_factory=list)  # code object names

    def add(self, text: str) -> None:
        if text not in self.names and len(self.names) < 500:
            self.names.append(text[:200])


class _Reader:
    def __init__(self, data: bytes, layout: str) -> None:
        self.data, self.pos, self.layout = data, 0, layout
        self.refs: list[object] = []
        self.summary = CodeSummary()
        self.items = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MarshalError(f"marshal data truncated at {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def obj(self, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise MarshalError("marshal nesting too deep")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise MarshalError("marshal payload too large")
        code = self.take(1)[0]
        flag, t = code & FLAG_REF, chr(code & ~FLAG_REF)
        slot = None
        if flag and t not in "rR":
            slot = len(self.refs)
            self.refs.append(None)
        value = self._value(t, depth)
        if slot is not None:
            self.refs[slot] = value
        return value

    def _value(self, t: str, depth: int) -> object:
        if t in "0NFTS.":
            return {"0": None, "N": None, "F": False, "T": True, "S": "StopIteration", ".": "..."}[t]
        if t == "i":
            return self.i32()
        if t == "I":
            return struct.unpack("<q", self.take(8))[0]
        if t == "g":
            return struct.unpack("<d", self.take(8))[0]
        if t == "y":
            self.take(16)
            return 0j
        if t in "fx":
            n = self.take(1)[0]
            self.take(n)
            if t == "x":
                self.take(self.take(1)[0])
            return 0.0
        if t == "l":
            n = abs(self.i32())
            self.take(2 * n)
            return 0
        if t in "stuaA":
            raw = self.take(self._size())
            text = raw.decode("utf-8", "replace") if t != "s" else raw
            if isinstance(text, str):
                self.summary.add(text)
            return text
        if t in "zZ":
            text = self.take(self.take(1)[0]).decode("latin-1")
            self.summary.add(text)
            return text
        if t == "r":
            idx = self._size()
            if idx >= len(self.refs):
                raise MarshalError(f"bad marshal back-reference {idx}")
            return self.refs[idx]
        if t in "([<>":
            return tuple(self.obj(depth + 1) for _ in range(self._size()))
        if t == ")":
            return tuple(self.obj(depth + 1) for _ in range(self.take(1)[0]))
        if t == "{":
            out = []
            while True:
                if self.data[self.pos:self.pos + 1] == b"0":
                    self.pos += 1
                    return tuple(out)
                out.append((self.obj(depth + 1), self.obj(depth + 1)))
        if t == "c":
            return self._code(depth)
        raise MarshalError(f"unknown marshal type code {t!r} at {self.pos - 1}")

    def _size(self) -> int:
        n = self.i32()
        if n < 0 or n > len(self.data):
            raise MarshalError(f"bad marshal size {n} at {self.pos}")
        return n

    def _code(self, depth: int) -> object:
        self.summary.code_objects += 1
        ints = 5 if self.layout == "3.11" else 6
        for _ in range(ints):
            self.i32()
        bytecode = self.obj(depth + 1)
        if not isinstance(bytecode, bytes):
            raise MarshalError("code object without bytecode")
        if self.layout == "3.11":
            # consts, names, localsplusnames, localspluskinds, filename, name, qualname,
            # firstlineno, linetable, exceptiontable
            for _ in range(7):
                item = self.obj(depth + 1)
            self.summary.qualnames.append(str(item)[:200])
            self.i32()
            self.obj(depth + 1)
            self.obj(depth + 1)
        else:
            # consts, names, varnames, freevars, cellvars, filename, name, firstlineno, lnotab
            for _ in range(7):
                item = self.obj(depth + 1)
            self.summary.qualnames.append(str(item)[:200])
            self.i32()
            self.obj(depth + 1)
        return "<code>"


def summarise(data: bytes) -> CodeSummary:
    """Names and constants of the marshalled payload; MarshalError if neither layout parses."""
    last: Exception | None = None
    for layout in ("3.11", "3.8"):
        reader = _Reader(data, layout)
        try:
            reader.obj()
        except MarshalError as exc:
            last = exc
            continue
        return reader.summary
    raise MarshalError(str(last))
