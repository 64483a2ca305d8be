"""Symbolic values of the VM: what the real unpickler would hold, without importing anything.

Constants (int, float, str, bytes, bool, None) are kept as Python values; containers are small
mutable classes (no hashing of artefact values); imported globals, call results and persistent
objects are symbols. `fold` turns any value into repr-safe, size-bounded JSON-able data for
findings.

Memory is bounded by construction (issue 17): a container keeps its first `KEEP` items and counts
the rest (no opcode can fetch an item back out of a container, only analyses look inside, and they
read the first items or treat a truncated container as unknown); values the memo holds past its
exact region become shared placeholders (`compact`), which analyses read as "unknown".
"""
from __future__ import annotations

from typing import Any

from .opcodes import BigBytes

MAX_ITEMS = 20  # items shown per container in folded arguments
MAX_TEXT = 200  # characters shown per string
KEEP = 64  # items a container keeps (analyses need at most this many; the rest is counted)
MAX_NAMES = 1 << 20  # per stream: import/call names listed in order (distinct imports always listed)


class Mark:
    """The MARK sentinel (kept on a separate mark stack; never a value)."""


class Unknown:
    """What an analysis gets from a value compaction dropped (read as 'could be anything')."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


class Global:
    """An imported global: `module.name` (name may be dotted), as find_class resolves it."""

    __slots__ = ("module", "name", "offset", "verdict", "only", "full", "_canonical", "plain")

    def __init__(self, module: str, name: str, offset: int, verdict: str = "unknown",
                 only: str | None = None) -> None:
        self.module, self.name, self.offset = module, name, offset
        self.verdict = verdict  # policy classification: allow | deny | unknown | dynamic
        self.only = only  # the allow entry covers this use only (policy.CALL_CONSTRAINTS)
        # allowed without conditions: calling it, or BUILD/SETITEM on what it made, needs no check
        # (set by Machine.find_class; the VM's fast loop runs such calls inline)
        self.plain = False
        # the name as the pickle spells it (what find_class receives)
        self.full = f"{module}.{name}" if name else module
        self._canonical: str | None = None

    @property
    def canonical(self) -> str:
        """The name people know (`posix.system` -> `os.system`), used in findings."""
        if self._canonical is None:
            from ...policy import normalise_module

            module = normalise_module(self.module)
            self._canonical = f"{module}.{self.name}" if self.name else module
        return self._canonical

    def __repr__(self) -> str:
        return f"Global({self.full!r}, {self.verdict})"


class Call:
    """The result of calling `func` (REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX) at `offset`.

    `compact` calls are the memo's placeholders for objects it no longer holds in full: only the
    callable is known (args and state read as UNKNOWN, BUILD on them changes nothing).
    """

    __slots__ = ("func", "args", "kwargs", "offset", "opcode", "state")
    compact = False

    def __init__(self, func: Any, args: Any, kwargs: Any = None, offset: int = 0, opcode: str = "REDUCE",
                 state: Any = None) -> None:
        self.func, self.args, self.kwargs, self.offset, self.opcode = func, args, kwargs, offset, opcode
        self.state = state  # last BUILD state

    def __repr__(self) -> str:
        return f"Call({callable_name(self.func)}, {self.opcode})"


class CompactCall(Call):
    """A memo placeholder for an object created by `func` (one shared instance per callable)."""

    __slots__ = ()
    compact = True

    def __init__(self, func: Any) -> None:
        super().__init__(func, UNKNOWN, None, 0, "REDUCE", UNKNOWN)


class Persistent:
    """An object the loader's persistent_load returns for `pid` (never trusted)."""

    __slots__ = ("pid", "offset")

    def __init__(self, pid: Any, offset: int = 0) -> None:
        self.pid, self.offset = pid, offset


class Opaque:
    """A value we do not model (extension code, out-of-band buffer...)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class _Bounded:
    """A sequence of items kept up to KEEP; `size` counts all of them."""

    __slots__ = ("items", "size")
    compact = False

    def __init__(self, items: list | None = None) -> None:
        items = [] if items is None else items
        self.size = len(items)
        self.items = items if self.size <= KEEP else items[:KEEP]

    def extend(self, items: list) -> None:
        if not self.compact:
            room = KEEP - len(self.items)
            if room > 0:
                self.items.extend(items[:room] if len(items) > room else items)
            self.size += len(items)

    @property
    def truncated(self) -> bool:
        return self.compact or self.size > len(self.items)


class PList(_Bounded):
    """A list: its first KEEP items, `size` counts all of them."""

    __slots__ = ()


class PDict:
    """A dict: its first KEEP (key, value) pairs in insertion order, `size` counts them all.

    Stored flat (`flat` alternates keys and values: SETITEMS appends a slice of the stack as is).
    Past KEEP pairs, str keys an analysis may look up (`get`: a joblib array's "shape", a BUILD
    state's attribute names) are still kept, last value wins, up to OVER_KEYS of them; past that
    the dict's keys are no longer all known and `get` answers UNKNOWN.
    """

    __slots__ = ("flat", "size", "over")
    compact = False

    def __init__(self, pairs: list | None = None) -> None:
        self.flat: list = []
        self.size = 0
        self.over: dict[str, Any] | None = None  # str keys past the first KEEP pairs (None: none yet)
        if pairs:
            self.extend([x for pair in pairs for x in pair])

    @property
    def pairs(self) -> list[tuple[Any, Any]]:
        """The kept (key, value) pairs: the first KEEP, then later str keys with their last value."""
        flat = self.flat
        out = list(zip(flat[0::2], flat[1::2]))
        if self.over:
            out.extend(self.over.items())
        return out

    def extend(self, items: list) -> None:
        """SETITEMS: `items` alternates keys and values."""
        if self.compact:
            return
        free = 2 * KEEP - len(self.flat)
        if free >= len(items):
            self.flat.extend(items)
        else:
            if free > 0:
                self.flat.extend(items[:free])
            self._overflow(items[max(free, 0):])
        self.size += len(items) // 2

    def _overflow(self, items: list) -> None:
        over = self.over if self.over is not None else {}
        self.over = over
        for i in range(0, len(items) - 1, 2):
            key = items[i]
            if isinstance(key, str):
                if len(key) <= MAX_TEXT and (key in over or len(over) < OVER_KEYS):
                    over[key] = items[i + 1]
                else:
                    over[LOST] = None
            elif isinstance(key, BigBytes) and key.is_text:
                over[LOST] = None  # a long str key: not kept (no lookup asks for one)

    @property
    def truncated(self) -> bool:
        """Items were dropped (the dict holds more than `pairs`)."""
        return self.compact or 2 * self.size > len(self.flat)

    @property
    def keys_known(self) -> bool:
        """Every str key the dict holds is in `pairs` (the values of later duplicates win)."""
        return not self.compact and (self.over is None or LOST not in self.over)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value the real dict holds for str `key` (UNKNOWN when that cannot be known)."""
        over = self.over
        if over is not None:
            if key in over:
                return over[key]
            if LOST in over:
                return UNKNOWN
        if self.compact:
            return UNKNOWN
        flat = self.flat
        for i in range(len(flat) - 2, -1, -2):
            k = flat[i]
            if isinstance(k, str) and k == key:
                return flat[i + 1]
        return default


OVER_KEYS = 4096
LOST = "\0" * (MAX_TEXT + 1)  # a key `over` never stores (too long): marks keys no longer all known


class PSet(_Bounded):
    """A set or frozenset: its first KEEP items, `size` counts them all."""

    __slots__ = ("frozen",)

    def __init__(self, items: list | None = None, frozen: bool = False) -> None:
        super().__init__(items)
        self.frozen = frozen


class _CompactList(PList):
    __slots__ = ()
    compact = True


class _CompactDict(PDict):
    __slots__ = ()
    compact = True


class _CompactSet(PSet):
    __slots__ = ()
    compact = True


class CompactTuple(tuple):
    """A memo placeholder for a tuple of `length` items (empty: its items are not kept)."""

    length = 0

    def __repr__(self) -> str:
        return f"<tuple of {self.length} items>" if self.length <= 256 else "<tuple of more than 256 items>"


# Shared placeholders: the memo stores these for containers it no longer keeps in full. They are
# the same classes as real containers (the loader's type checks behave the same) but never change.
COMPACT_LIST = _CompactList()
COMPACT_DICT = _CompactDict()
COMPACT_SET = _CompactSet()
COMPACT_FROZENSET = _CompactSet(frozen=True)
_COMPACT_TUPLES: dict[int, CompactTuple] = {}


def compact_tuple(length: int) -> CompactTuple:
    """The shared placeholder for tuples of `length` items (one for all tuples longer than 256)."""
    length = min(length, 257)
    found = _COMPACT_TUPLES.get(length)
    if found is None:
        found = _COMPACT_TUPLES[length] = CompactTuple()
        found.length = length
    return found


def is_compact(value: Any) -> bool:
    """True for a memo placeholder (whose content an analysis cannot know)."""
    return value is UNKNOWN or isinstance(value, CompactTuple) or getattr(value, "compact", False) is True


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
        return value.folded(MAX_TEXT)
    if value is UNKNOWN:
        return "<not kept>"
    if depth > 4:
        return "..."
    if isinstance(value, Global):
        return value.canonical
    if isinstance(value, CompactCall):
        return f"{callable_name(value.func)}(<not kept>)"
    if isinstance(value, Call):
        return f"{callable_name(value.func)}({', '.join(map(str, _seq(value.args, depth)))})"[:MAX_TEXT]
    if isinstance(value, CompactTuple):
        return repr(value)
    if isinstance(value, tuple):
        return _seq(value, depth)
    if isinstance(value, (PList, PSet)):
        if value.compact:
            return "<list>" if isinstance(value, PList) else "<frozenset>" if value.frozen else "<set>"
        return _seq(value.items, depth, value.size)
    if isinstance(value, PDict):
        if value.compact:
            return "<dict>"
        out = {}
        for k, v in value.pairs[:MAX_ITEMS]:
            out[str(fold(k, depth + 1))] = fold(v, depth + 1)
        return out
    if isinstance(value, Persistent):
        return f"<persistent {fold(value.pid, depth + 1)}>"
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    return f"<{type(value).__name__}>"


def _seq(items: Any, depth: int, size: int | None = None) -> list:
    if not isinstance(items, (tuple, list)):
        return [fold(items, depth + 1)]
    size = len(items) if size is None else size
    out = [fold(v, depth + 1) for v in items[:MAX_ITEMS]]
    if size > MAX_ITEMS:
        out.append(f"...<{size} items>")
    return out
