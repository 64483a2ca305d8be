"""Symbolic values of the VM: what the real unpickler would hold, without importing anything.

Constants (int, float, str, bytes, bool, None) are kept as Python values; containers are small
mutable classes (no hashing of artefact values); imported globals, call results and persistent
objects are symbols. `fold` turns any value into repr-safe, size-bounded JSON-able data for
findings.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .opcodes import BigBytes

MAX_ITEMS = 20  # items shown per container in folded arguments
MAX_TEXT = 200  # characters shown per string


class Mark:
    """The MARK sentinel (kept on a separate mark stack; never a value)."""


@dataclass(eq=False)
class Global:
    """An imported global: `module.name` (name may be dotted), as find_class resolves it."""

    module: str
    name: str
    offset: int
    verdict: str = "unknown"  # policy classification: allow | deny | unknown | dynamic
    only: str | None = None  # the allow entry covers this use only (policy.CALL_CONSTRAINTS)

    @property
    def full(self) -> str:
        """The name as the pickle spells it (what find_class receives)."""
        return f"{self.module}.{self.name}" if self.name else self.module

    @functools.cached_property
    def canonical(self) -> str:
        """The name people know (`posix.system` -> `os.system`), used in findings."""
        from ...policy import normalise_module

        module = normalise_module(self.module)
        return f"{module}.{self.name}" if self.name else module


@dataclass(eq=False)
class Call:
    """The result of calling `func` (REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX) at `offset`."""

    func: Any
    args: Any
    kwargs: Any = None
    offset: int = 0
    opcode: str = "REDUCE"
    state: Any = None  # last BUILD state


@dataclass(eq=False)
class Persistent:
    """An object the loader's persistent_load returns for `pid` (never trusted)."""

    pid: Any
    offset: int = 0


@dataclass(eq=False)
class Opaque:
    """A value we do not model (extension code, out-of-band buffer...)."""

    what: str


@dataclass(eq=False)
class PList:
    items: list = field(default_factory=list)


@dataclass(eq=False)
class PDict:
    pairs: list = field(default_factory=list)  # [(key, value)]

    def get(self, key: Any, default: Any = None) -> Any:
        for k, v in reversed(self.pairs):
            if isinstance(k, str) and k == key:
                return v
        return default


@dataclass(eq=False)
class PSet:
    items: list = field(default_factory=list)
    frozen: bool = False


def callable_name(value: Any) -> str:
    """A readable name for what is being called."""
    if isinstance(value, Global):
        return value.canonical
    if isinstance(value, Call):
        return f"<result of {callable_name(value.func)}(...)>"
    if isinstance(value, Persistent):
        return "<persistent object>"
    return f"<computed {type(value).__name__}>"


def class_of(value: Any) -> Global | None:
    """The global that created an object (the class/callable of its outermost call), if known."""
    if isinstance(value, Call) and isinstance(value.func, Global):
        return value.func
    return None


def fold(value: Any, depth: int = 0) -> Any:
    """Repr-safe, bounded view of a value for findings (constants as themselves)."""
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 1 << 63 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"...<{len(value)} chars>"
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[:MAX_TEXT]))
        return text if len(value) <= MAX_TEXT else text + f"...<{len(value)} bytes>"
    if isinstance(value, BigBytes):
        return repr(value)
    if depth > 4:
        return "..."
    if isinstance(value, Global):
        return value.canonical
    if isinstance(value, Call):
        return f"{callable_name(value.func)}({', '.join(map(str, _seq(value.args, depth)))})"[:MAX_TEXT]
    if isinstance(value, tuple):
        return _seq(value, depth)
    if isinstance(value, PList):
        return _seq(value.items, depth)
    if isinstance(value, PSet):
        return _seq(value.items, depth)
    if isinstance(value, PDict):
        out = {}
        for k, v in value.pairs[:MAX_ITEMS]:
            out[str(fold(k, depth + 1))] = fold(v, depth + 1)
        return out
    if isinstance(value, Persistent):
        return f"<persistent {fold(value.pid, depth + 1)}>"
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    return f"<{type(value).__name__}>"


def _seq(items: Any, depth: int) -> list:
    if not isinstance(items, (tuple, list)):
        return [fold(items, depth + 1)]
    out = [fold(v, depth + 1) for v in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        out.append(f"...<{len(items)} items>")
    return out
