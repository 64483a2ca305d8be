"""The unpickler's memo, in bounded memory.

The memo must answer every GET the stream may issue, so it cannot forget an entry; but what a
later opcode can *do* with most entries is limited (push it, hand it to a call, use it as a
STACK_GLOBAL name). So the memo is exact for its first `EXACT_ENTRIES` entries (every real model
pickle we know of fits) and compact after that, in 4 bytes per entry (8 past 2 GiB of data):

- a str/bytes pushed by the opcode right before the PUT/MEMOIZE is stored as that opcode's offset
  and read back from the blob on GET (the same bytes, the same value: exact);
- lists, dicts, sets, tuples and objects become shared placeholders of the same type
  (`values.COMPACT_*`, `CompactTuple`, one `CompactCall` per callable) that analyses read as
  "unknown" and that never change; objects whose arguments an analysis reads later (decoders,
  nested loaders, numpy dtypes, joblib array wrappers) are kept in full;
- anything else (globals, numbers, persistent objects) is kept as is, once per object.
"""
from __future__ import annotations

from array import array
from typing import Any, Callable

from . import values as V

EXACT_ENTRIES = 1 << 17
REREAD_CACHE = 4096  # strings (at most SPAN_CAP bytes each, longer ones are spans) kept after a read back
MISSING = object()


class Memo:
    """Memo of one stream: index -> value, exact for the first `exact` entries."""

    __slots__ = ("full", "tail", "tail_base", "stubs", "stub_index", "exact", "reread", "keep_call", "calls",
                 "tuple_codes", "call_codes", "high", "reread_cache")

    def __init__(self, exact: int = EXACT_ENTRIES, reread: Callable[[int], Any] | None = None,
                 keep_call: Callable[[V.Call], bool] | None = None, size: int | None = None) -> None:
        self.full: dict[int, Any] = {}  # the exact region, plus indices outside the dense tail
        # dense compact entries: > 0 source offset + 1, < 0 -(stub index + 1); 4 bytes each when every
        # offset of the data (`size` bytes) fits in them
        self.tail = array("i" if size is not None and size < (1 << 31) - 2 else "q")
        self.tail_base = -1
        self.stubs: list[Any] = []
        self.stub_index: dict[int, int] = {}  # id(stub) -> index (stubs are kept alive by the list)
        self.exact = exact
        self.reread = reread  # source offset -> the value its opcode pushes (None: keep values)
        self.keep_call = keep_call or (lambda call: False)
        self.calls: dict[int, tuple[Any, V.CompactCall | None]] = {}  # id(func) -> (func, placeholder or None: kept)
        # the codes of shared placeholders, for the VM's fast loop: tuple length / id(func) -> code
        self.tuple_codes: dict[int, int] = {}
        self.call_codes: dict[int, int] = {}
        self.high: int | None = None  # the largest index in `full` once compacting (None: not known yet)
        # strings read back lately, by code (dict keys are fetched again and again): one object per
        # entry, as the loader's memo holds, without a read of the file per GET
        self.reread_cache: dict[int, Any] = {}
        for stub in (V.COMPACT_DICT, V.COMPACT_LIST):  # codes -1 and -2 (the VM's fast loop writes them)
            self._stub(stub)

    def __len__(self) -> int:
        return len(self.full) + len(self.tail)

    def __contains__(self, idx: int) -> bool:
        return idx in self.full or (self.tail_base >= 0 and 0 <= idx - self.tail_base < len(self.tail))

    @property
    def compacting(self) -> bool:
        """New entries are stored compactly (the exact region is full)."""
        return len(self.tail) > 0 or len(self.full) >= self.exact

    def dense_next(self) -> bool:
        """The next MEMOIZE index is the next entry of the dense compact tail, and no index at or past
        the tail's start is in `full` (the VM's fast loop then appends codes to `tail` itself)."""
        if not self.tail or len(self.full) != self.tail_base:
            return False
        if self.high is None:
            self.high = max(self.full, default=-1)
        return self.high < self.tail_base

    def get(self, idx: int) -> Any:
        """The value at `idx`, or MISSING."""
        value = self.full.get(idx, MISSING)
        if value is not MISSING:
            return value
        j = idx - self.tail_base
        if self.tail_base < 0 or not 0 <= j < len(self.tail):
            return MISSING
        code = self.tail[j]
        if code > 0:
            assert self.reread is not None
            cache = self.reread_cache
            value = cache.get(code, MISSING)
            if value is MISSING:
                if len(cache) >= REREAD_CACHE:
                    cache.clear()
                value = cache[code] = self.reread(code - 1)
            return value
        return self.stubs[-code - 1]

    def put(self, idx: int, value: Any, src: int | None = None) -> None:
        """Store `value` at `idx`; `src`: offset of the opcode that pushed it, if it was the previous one."""
        full = self.full
        if idx in full or (not self.tail and len(full) < self.exact):
            full[idx] = value
            return
        if self.tail_base < 0:
            self.tail_base = idx
        j = idx - self.tail_base
        tail = self.tail
        if 0 <= j <= len(tail):
            if src is not None and self.reread is not None:
                code = src + 1
            else:
                stub = self.compact(value)
                k = self.stub_index.get(id(stub))
                if k is None:
                    k = self.stub_index[id(stub)] = len(self.stubs)
                    self.stubs.append(stub)
                code = -(k + 1)
                if isinstance(stub, V.CompactTuple):
                    self.tuple_codes[stub.length] = code
                elif isinstance(stub, V.CompactCall):
                    self.call_codes[id(stub.func)] = code
            if j == len(tail):
                tail.append(code)
            else:
                tail[j] = code
            return
        full[idx] = self.compact(value)  # an index outside the dense run: rare, kept in the dict
        if self.high is not None and idx > self.high:
            self.high = idx

    def _stub(self, value: Any) -> int:
        stub = self.compact(value)
        key = id(stub)
        k = self.stub_index.get(key)
        if k is None:
            k = len(self.stubs)
            self.stubs.append(stub)
            self.stub_index[key] = k
        return k

    def compact(self, value: Any) -> Any:
        """What the memo keeps of `value` past its exact region."""
        kind = type(value)
        if kind is tuple:
            return V.compact_tuple(len(value)) if value else value
        if kind is V.Call:
            func = value.func
            known = self.calls.get(id(func))
            if known is None:
                stub = None if self.keep_call(value) else V.CompactCall(func)
                known = self.calls[id(func)] = (func, stub)  # func kept alive: its id stays unique
            return value if known[1] is None else known[1]
        if kind is V.PDict:
            return V.COMPACT_DICT
        if kind is V.PList:
            return V.COMPACT_LIST
        if kind is V.PSet:
            return V.COMPACT_FROZENSET if value.frozen else V.COMPACT_SET
        return value
