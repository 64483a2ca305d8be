"""A static reader of the `marshal` format: what code objects name, never executed.

`marshal.loads` would build live code objects; this walks the same bytes (type codes of CPython's
`Python/marshal.c`, FLAG_REF back-references) and keeps, per code object, its `co_names`, string
constants, file and function names and nested code objects: what tells what the code would do.
The 3.11+ and the 3.8-3.10 code layouts are both tried. Used for Keras Lambda layers and for
`marshal.loads` payloads inside pickles (cloudpickle/dill code).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any
from ..errors import MarshalError


@dataclass
class CodeInfo:
    """What a marshalled code object names: co_names, string constants, nested code objects."""

    name: str = ""
    filename: str = ""
    names: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    children: list["CodeInfo"] = field(default_factory=list)
    layout: str = ""

    def all_names(self) -> list[str]:
        out = list(self.names)
        for child in self.children:
            out += child.all_names()
        return out

    def all_functions(self) -> list[str]:
        out = [self.name] if self.name else []
        for child in self.children:
            out += child.all_functions()
        return out

    def count(self) -> int:
        """Code objects in this tree (a merged summary's root is not one)."""
        return (1 if self.name or self.filename else 0) + sum(c.count() for c in self.children)

    def all_strings(self) -> list[str]:
        out = list(self.strings)
        for child in self.children:
            out += child.all_strings()
        return out


class _Code:
    """Placeholder for a parsed code object inside the object graph."""

    def __init__(self, info: CodeInfo) -> None:
        self.info = info


class _MarshalReader:
    # Code object field layouts: ints are int32, objs are marshalled objects, in file order.
    LAYOUTS = {
        "3.11+": ("i", "i", "i", "i", "i", "code", "consts", "names", "o", "o", "filename", "name", "o",
                  "i", "o", "o"),
        "3.8-3.10": ("i", "i", "i", "i", "i", "i", "code", "consts", "names", "o", "o", "o", "filename",
                     "name", "i", "o"),
    }

    def __init__(self, data: bytes, layout: str, max_objects: int = 1_000_000) -> None:
        self.data, self.pos, self.layout = data, 0, self.LAYOUTS[layout]
        self.layout_name = layout
        self.refs: list[Any] = []
        self.objects, self.max_objects, self.depth = 0, max_objects, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MarshalError(f"truncated at {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def size(self) -> int:
        n = self.i32()
        if n < 0 or n > len(self.data):
            raise MarshalError(f"bad size {n} at {self.pos - 4}")
        return n

    def obj(self) -> Any:
        self.objects += 1
        if self.objects > self.max_objects:
            raise MarshalError("too many objects")
        self.depth += 1
        if self.depth > 200:
            raise MarshalError("nesting too deep")
        try:
            return self._obj()
        finally:
            self.depth -= 1

    def _obj(self) -> Any:
        code = self.take(1)[0]
        flag, t = code & 0x80, chr(code & 0x7F)
        idx = None
        if flag and t != "r":
            idx = len(self.refs)
            self.refs.append(None)
        value = self._value(t)
        if idx is not None:
            self.refs[idx] = value
        return value

    def _value(self, t: str) -> Any:  # noqa: C901 - one branch per marshal type code
        if t in "N0S.":
            return None
        if t == "F":
            return False
        if t == "T":
            return True
        if t == "i":
            return self.i32()
        if t == "I":
            return struct.unpack("<q", self.take(8))[0]
        if t == "g":
            return struct.unpack("<d", self.take(8))[0]
        if t == "y":
            return complex(*struct.unpack("<dd", self.take(16)))
        if t in "fx":
            parts = 2 if t == "x" else 1
            for _ in range(parts):
                self.take(self.take(1)[0])
            return 0.0
        if t == "l":
            n = self.i32()
            self.take(abs(n) * 2)
            return 0
        if t in "stuaA":
            raw = self.take(self.size())
            return raw if t == "s" else raw.decode("utf-8", "surrogatepass")
        if t in "zZ":
            return self.take(self.take(1)[0]).decode("latin-1")
        if t == ")":
            return tuple(self.obj() for _ in range(self.take(1)[0]))
        if t in "([<>":
            n = self.size()
            items = [self.obj() for _ in range(n)]
            return tuple(items)
        if t == "{":
            items = []
            while True:
                if self.pos < len(self.data) and self.data[self.pos] == ord("0"):
                    self.pos += 1
                    return tuple(items)
                items.append(self.obj())
                items.append(self.obj())
        if t == "r":
            n = self.i32()
            if not 0 <= n < len(self.refs) or self.refs[n] is None and n == len(self.refs) - 1:
                raise MarshalError(f"bad reference {n}")
            return self.refs[n]
        if t == "c":
            return _Code(self._code())
        raise MarshalError(f"unknown marshal type {t!r} at {self.pos - 1}")

    def _code(self) -> CodeInfo:
        info = CodeInfo(layout=self.layout_name)
        for slot in self.layout:
            if slot == "i":
                self.i32()
                continue
            value = self.obj()
            if slot == "code" and not isinstance(value, bytes):
                raise MarshalError("co_code is not bytes")
            if slot == "names":
                if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                    raise MarshalError("co_names is not a tuple of str")
                info.names = list(value)
            elif slot == "consts":
                if not isinstance(value, tuple):
                    raise MarshalError("co_consts is not a tuple")
                self._consts(value, info)
            elif slot in ("filename", "name"):
                if not isinstance(value, str):
                    raise MarshalError(f"co_{slot} is not str")
                setattr(info, slot, value)
        return info

    def _consts(self, values: tuple, info: CodeInfo) -> None:
        for v in values:
            if isinstance(v, str):
                info.strings.append(v)
            elif isinstance(v, bytes):
                info.strings.append(v.decode("latin-1"))
            elif isinstance(v, _Code):
                info.children.append(v.info)
            elif isinstance(v, tuple):
                self._consts(v, info)


def parse_marshal_code(data: bytes) -> CodeInfo:
    """Statically read a marshalled code object (as `marshal.dumps(fn.__code__)`), any 3.8+ layout."""
    value, _ = _walk(data)
    if not isinstance(value, _Code):
        raise MarshalError("not a code object")
    return value.info


def _walk(data: bytes) -> tuple[Any, str]:
    """Parse one marshalled object filling `data`, trying each layout; (value, layout)."""
    errors = []
    for layout in _MarshalReader.LAYOUTS:
        reader = _MarshalReader(data, layout)
        try:
            value = reader.obj()
        except (MarshalError, UnicodeDecodeError, struct.error) as exc:
            errors.append(f"{layout}: {exc}")
            continue
        if reader.pos == len(data):
            return value, layout
        errors.append(f"{layout}: {len(data) - reader.pos} bytes left after the object")
    raise MarshalError("; ".join(errors))


def code_objects(value: Any) -> list[CodeInfo]:
    """Top-level code objects found in a parsed marshal value (tuples searched)."""
    if isinstance(value, _Code):
        return [value.info]
    if isinstance(value, tuple):
        return [info for item in value for info in code_objects(item)]
    return []


def summarise(data: bytes) -> CodeInfo:
    """Everything a marshal payload of any shape names, merged into one CodeInfo."""
    value, layout = _walk(data)
    merged = CodeInfo(layout=layout)
    for info in code_objects(value):
        merged.children.append(info)
    return merged
