"""One pickle stream through a symbolic copy of CPython's `_pickle` Unpickler.

The machine mirrors `_pickle.c`'s data structures (stack with a MARK fence, memo, protocol,
FRAME) and error conditions, but every import becomes a `Global` symbol classified by the
policy, and every call a `Call` symbol reported with its site. Nothing is imported or executed.
"""
from __future__ import annotations

import _compat_pickle
import copyreg
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ... import datafiles
from ...errors import BudgetExceeded
from ...policy import Classification, alias_note
from . import values as V
from . import fastloop
from . import memo as memo_module
from .memo import MISSING, Memo
from .opcodes import BUFFER_READERS, HIGHEST_PROTOCOL, OPCODES, STR_CODES, BigBytes, Reader, StreamReader, read_arg
from .values import MAX_NAMES
from ...errors import PickleError

if TYPE_CHECKING:
    from ...blob import Blob
    from ...context import ScanContext
    from .report import Reporter

CONSTANT_TYPES = (str, bytes, bytearray, int, float, bool, type(None), BigBytes)
STAR_CAP = 4096  # a str/bytes spread into more positional arguments than this is kept opaque
NOT_CALLABLE = CONSTANT_TYPES + (tuple, V.PList, V.PDict, V.PSet)  # what _pickle refuses to call
FACTORY_HOLDERS = {"collections.defaultdict": 0}  # callable -> index of the factory argument
ARRAY_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper", "joblib.numpy_pickle.NDArrayWrapper"}
# copyreg helpers that create an instance of their first argument without calling it
INSTANCE_MAKERS = ("copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__")
MAX_PIDS = 1 << 16  # per stream: persistent ids kept for the session's checks (the rest checked at once)
# Opcodes the fast loop runs inline (a subclass overriding their handler turns the fast loop off).
INLINE = ("MARK", "BINGET", "LONG_BINGET", "MEMOIZE", "BINPUT", "LONG_BINPUT", "SHORT_BINUNICODE",
          "SHORT_BINBYTES", "BININT1", "BININT2", "BININT", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE",
          "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "TUPLE1", "TUPLE2", "TUPLE3", "TUPLE",
          "APPEND", "APPENDS", "SETITEM", "SETITEMS", "BINUNICODE")


@dataclass
class StreamOutcome:
    """How one stream ended."""

    start: int
    end: int
    error: PickleError | None = None
    opcodes: int = 0
    proto: int = 0
    globals: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    builds: list[str] = field(default_factory=list)
    pids: list[tuple[Any, int, int]] = field(default_factory=list)  # (pid, offset, position)
    risky_calls: int = 0  # calls of non-allowlisted callables (incl. method calls on such objects)
    short_frame: int | None = None  # offset of a FRAME longer than the data left (C loaders fail there)
    frame_straddle: tuple[int, str] | None = None  # first opcode crossing a frame boundary (gh-154848)
    value: Any = None  # what STOP returned
    stop_frame_end: int | None = None  # STOP inside a FRAME with bytes left: where that frame ends


def instance_class(value: Any) -> V.Global | None:
    """The class of the object a call made, as `isinstance` sees it (joblib's load_build asks
    that of array wrappers): the callable, or the class a copyreg helper instantiates."""
    cls = V.class_of(value)
    if cls is not None and cls.canonical in INSTANCE_MAKERS and isinstance(value.args, tuple) and value.args \
            and isinstance(value.args[0], V.Global):
        return value.args[0]
    return cls


def _constant_has(target: Any, method: str) -> bool:
    """Whether a constant the unpickler holds has the method APPEND(S)/SETITEM(S)/ADDITEMS call on
    it (`extend` stands for C's extend-then-append), asked of its real type: a large argument left
    on disk is a bytearray or has no such method, like bytes, str and int."""
    kind = (bytearray if target.kind == "bytearray" else bytes) if isinstance(target, BigBytes) else type(target)
    names = ("extend", "append") if method == "extend" else (method,)
    return any(hasattr(kind, n) for n in names)


class Machine:
    """Runs one stream from `start`; `hooks` lets the caller react to calls (nested payloads).

    Two execution paths with one set of semantics: `_step` runs any opcode through the opcode
    table (`read_arg` + an `op_*` handler), the reference; `_fast` runs the frequent opcodes
    inline straight from the read window and hands everything unusual (window or frame
    boundaries, budget check points, invalid arguments, errors) back to `_step`. The property
    tests run both (`Machine.FAST = False` runs the reference path only) and compare.
    """

    FAST = True

    def __init__(self, blob: Blob, start: int, end: int, *, ctx: ScanContext, reporter: Reporter, stream: int,
                 flavour: str,
                 memo: Memo | None = None, on_call: Callable[["Machine", V.Call, int], None] | None = None,
                 on_array: Callable[["Machine", V.Call, int], int] | None = None,
                 c_stream: bool = False, fast: bool = True,
                 on_pid: Callable[[Any, int, int], None] | None = None) -> None:
        self.blob, self.ctx, self.rep, self.stream, self.flavour = blob, ctx, reporter, stream, flavour
        # c_stream: read as _pickle.c reads an io.BytesIO (frames drop bytes; see StreamReader)
        self.r = StreamReader(blob, start, end) if c_stream else Reader(blob, start, end)
        self.c_stream = c_stream
        self.c_frame_end: int | None = None  # end of the current frame, for boundary checks
        self.end = end
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo = memo if memo is not None else Memo(memo_module.EXACT_ENTRIES,
                                                      reread=None if c_stream else self._reread,
                                                      keep_call=_keeps_arguments, size=end)
        self.proto = 0
        self.out = StreamOutcome(start=start, end=start)
        self.on_call, self.on_array, self.on_pid = on_call, on_array, on_pid
        self.shadowed: set[str] = set()
        self.class_cache: dict[tuple[str, str], Classification] = {}
        self.position = 0  # opcode index
        self.op_offset = start
        self.frame_end: int | None = None
        self.file_pos: int | None = None  # where the file handle is after raw reads inside a frame
        self.persid_reported = False
        b = ctx.budgets
        self.max_opcodes, self.max_memo, self.max_depth = b.max_opcodes, b.max_memo, b.max_stack_depth
        self.dispatch = {code: getattr(self, "op_" + name) for code, (name, _) in OPCODES.items()}
        self.deferred: dict[int, tuple[V.Global, dict[str, Any]]] = {}  # getattr imports judged at use
        self.deferred_safe: set[int] = set()
        self.constrained = False  # a global whose allow entry covers some uses only was imported
        self.seen_globals: set[str] = set()
        self.last_code = -1  # the opcode run last (for boundary messages)
        self.last_str = self.last_str_end = -1  # offset and end of the last str/bytes push
        self.fast_chunk: tuple[bytes, int, bytes, list[int]] | None = None  # the fast loop's (fastloop._chunk)
        # the fast loop's table: opcode byte -> (buffer reader or None, handler); text arguments
        # (lines) have no buffer reader and always take `_step`
        self.table: list[tuple[Any, Any] | None] = [None] * 256
        for code, (_, desc) in OPCODES.items():
            reader = BUFFER_READERS.get(desc) if desc else None
            if desc and reader is None:
                continue
            self.table[code] = (reader, self.dispatch[code])
        cls = type(self)
        self.fast_ok = fast and self.FAST and not c_stream and all(
            getattr(cls, "op_" + name) is getattr(Machine, "op_" + name) for name in INLINE)

    # ----------------------------------------------------------------- driver
    def run(self) -> StreamOutcome:
        """Execute until STOP, an error (recorded in the outcome) or a budget (raised)."""
        r = self.r
        try:
            while True:
                if self.fast_ok:
                    if fastloop.run(self):
                        break
                    self._after_op()
                    if len(self.stack) + len(self.marks) > self.max_depth:
                        raise BudgetExceeded("max_stack_depth", self.max_depth)
                if self._step():
                    break
        except PickleError as exc:
            self.out.error = exc
        finally:
            self.flush_deferred()  # also when a budget ends the stream: an import is still reported
        self.out.end = r.pos
        self.out.proto = self.proto
        return self.out

    def _step(self) -> bool:
        """One opcode through the opcode table (the reference path); True at STOP."""
        r = self.r
        self.op_offset = r.pos
        code = r.byte()
        entry = OPCODES.get(code)
        if entry is None:
            raise PickleError(f"invalid load key, {chr(code)!r}.", self.op_offset)
        desc = entry[1]
        arg = read_arg(r, desc, self.op_offset) if desc else None
        self.out.opcodes += 1
        if self.out.opcodes > self.max_opcodes:
            raise BudgetExceeded("max_opcodes", self.max_opcodes)
        if not self.out.opcodes & 0xFFFF:
            self.ctx.check_time()
        self.last_code = code
        if self.dispatch[code](arg):
            return True
        if code in STR_CODES:
            self.last_str, self.last_str_end = self.op_offset, r.pos
        self.position += 1
        self._after_op()
        return False

    def _after_op(self) -> None:
        """Frame bookkeeping after an opcode (the last one run, at `op_offset`)."""
        r = self.r
        if self.frame_end is not None and r.pos >= self.frame_end:
            self._leave_frame()
        if self.c_frame_end is not None and r.pos >= self.c_frame_end:
            if r.pos > self.c_frame_end and self.op_offset < self.c_frame_end \
                    and self.out.frame_straddle is None:
                name = OPCODES[self.last_code][0] if self.last_code in OPCODES else "?"
                self.out.frame_straddle = (self.op_offset, f"{name} at offset {self.op_offset} "
                                           f"reads past the end of its frame ({self.c_frame_end})")
            self.c_frame_end = None

    def _limit(self, base: int, n: int) -> int:
        """Where (relative to the window) the fast loop must hand over to `_after_op`/`_step`."""
        limit = n
        if self.frame_end is not None:
            limit = min(limit, self.frame_end - base)
        if self.c_frame_end is not None:
            limit = min(limit, self.c_frame_end - base)
        return limit

    def _leave_frame(self) -> None:
        if self.file_pos is not None and self.file_pos > self.r.pos:
            self.r.pos = self.file_pos  # pure-Python unframer: raw reads moved the file past the frame
        self.frame_end = self.file_pos = None

    def _reread(self, src: int) -> Any:
        """The value the str/bytes opcode at `src` pushes (the memo keeps offsets, not strings)."""
        r = Reader(self.blob, src, self.end, window=512)
        return read_arg(r, OPCODES[r.byte()][1] or "", src)

    def text(self, value: Any) -> Any:
        """`value`, with a validated str span read back from the blob as the str it stands for."""
        if isinstance(value, BigBytes) and value.is_text and value.preview is not None:
            raw = self.blob.read_at(value.offset, value.length)
            return raw.decode("utf-8", "surrogatepass") if value.kind == "str" else raw.decode("ascii")
        return value

    def _src(self) -> int | None:
        """Offset of the previous opcode if it pushed a str/bytes from its argument (memo.put)."""
        return self.last_str if self.last_str_end == self.op_offset else None

    def note_global(self, full: str) -> None:
        """Record an import name (in order; past MAX_NAMES only names not seen before)."""
        if len(self.out.globals) < MAX_NAMES or full not in self.seen_globals:
            self.out.globals.append(full)
        self.seen_globals.add(full)

    # ----------------------------------------------------------------- stack helpers
    def err(self, reason: str) -> PickleError:
        return PickleError(reason, self.op_offset)

    @property
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, value: Any) -> None:
        self.stack.append(value)
        if len(self.stack) + len(self.marks) > self.max_depth:
            raise BudgetExceeded("max_stack_depth", self.max_depth)

    def pop(self) -> Any:
        if len(self.stack) <= self.fence:
            raise self.err("unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= self.fence:
            raise self.err("unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.err("could not find MARK")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def site(self) -> dict[str, Any]:
        return {"stream": self.stream, "offset": self.op_offset, "position": self.position}

    # ----------------------------------------------------------------- imports
    def find_class(self, module: str, name: str, via: str) -> V.Global:
        """What `Unpickler.find_class` would import, classified by the policy and reported."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        g = V.Global(module, name, self.op_offset)
        self.note_global(g.full)
        cls = self.classify(module, name)
        g.verdict = cls.verdict
        if cls.only is not None and cls.verdict == "allow":
            g.only = cls.only
            self.constrained = True
        full = g.canonical
        named = full  # what the bytes say first, then what it is (`posix.system (os.system on POSIX)`)
        if full != g.full:
            via = f"{via} {g.full}"
            named = f"{g.full} ({full}{alias_note(module)})"
        dunder = [p for p in name.split(".") if len(p) > 4 and p.startswith("__") and p.endswith("__")]
        if dunder and not (cls.verdict == "allow" and cls.entry == full) and cls.verdict != "deny":
            g.verdict = "deny"
            self.rep.add("MS-PKL-006", callable=full, attribute=dunder[0], via=via, **self.site())
            return g
        shadow = next((s for s in self.shadowed if full == s or full.startswith(s + ".")), None)
        if shadow:
            g.verdict = "deny"
            self.rep.add("MS-PKL-005", callable=full, key=("use", full), target=shadow, how="resolves to an "
                         "attribute overwritten earlier in this stream", **self.site())
        if cls.verdict == "deny" and full == "builtins.getattr":
            # Python pickles every bound method as getattr(cls, name) (e.g. ZoneInfo._unpickle in
            # tz-aware pandas frames): judged when called, see call(); reported at stream end if unused.
            self.deferred[id(g)] = (g, dict(group=cls.group, entry=cls.entry, why=cls.why, via=via, named=named,
                                            **self.site()))
        elif cls.verdict == "deny":
            self.rep.add("MS-PKL-001", callable=full, group=cls.group, entry=cls.entry, why=cls.why, via=via,
                         named=named, **self.site())
        elif cls.verdict == "unknown":
            self.rep.add("MS-PKL-002", callable=full, via=via, named=named, **self.site())
        g.plain = g.verdict == "allow" and g.only is None and full not in FACTORY_HOLDERS \
            and g.full not in ARRAY_WRAPPERS and full not in INSTANCE_MAKERS  # BUILD on what they make: on_array
        return g

    def classify(self, module: str, name: str) -> Classification:
        """Policy classification, hardened for attribute chains.

        The name part is an attribute chain on the imported module: a chain may walk through a
        module the library imported (`torch.nn.modules.module.torch.load`), so every suffix of
        the chain is checked against the deny table, and a `module.*` allow entry never covers a
        dotted name (it means names defined directly in that module).
        """
        key = (module, name)
        cached = self.class_cache.get(key)
        if cached is not None:
            return cached
        policy = self.ctx.policy
        if self.flavour == "torchscript" and (module == "__torch__" or module.startswith("__torch__.")):
            cls = Classification("allow", "__torch__.*", "TorchScript class compiled from the archive's "
                                 "code/ tree (MS-ARC-016), resolved without a Python import", "torchscript")
            self.class_cache[key] = cls
            return cls
        cls = policy.classify(module, name)
        exact_allow = cls.verdict == "allow" and not (cls.entry or "").endswith(".*")
        if cls.verdict != "deny" and not exact_allow:
            parts = name.split(".")
            for i in range(len(parts)):
                sub = parts[i:]
                alt = policy.classify(".".join(sub[:-1]), sub[-1]) if len(sub) > 1 else policy.classify(sub[0], "")
                if alt.verdict == "deny":
                    cls = alt
                    break
            else:
                if cls.verdict == "allow" and "." in name:
                    cls = Classification("unknown")
        self.class_cache[key] = cls
        return cls

    # ----------------------------------------------------------------- calls
    def call(self, func: Any, args: Any, kwargs: Any, opcode: str) -> V.Call | V.Global:
        if isinstance(func, V.Global) and id(func) in self.deferred:
            method = self._bound_method(args, kwargs)
            if method is not None:
                self.deferred_safe.add(id(func))
                return method
            self._report_deferred(func)
        if self.constrained and isinstance(func, V.Global) and func.only in ("apply", "dill-type"):
            seen_through = self._see_through(func, args, kwargs, opcode)
            if seen_through is not None:
                return seen_through
        result = V.Call(func, args, kwargs, self.op_offset, opcode)
        name = V.callable_name(func)
        if len(self.out.calls) < MAX_NAMES:
            self.out.calls.append(func.full if isinstance(func, V.Global) else name)
        verdict = func.verdict if isinstance(func, V.Global) else "computed"
        outside = self._outside_entry(func, args, kwargs, opcode) if self.constrained and verdict == "allow" else None
        if outside:
            verdict = "unknown"
        folded = None
        if verdict != "allow":
            folded = V.fold(args) if isinstance(args, tuple) else [V.fold(args)]
            if kwargs is not None:
                folded = list(folded) + [{"**": V.fold(kwargs)}]
        if verdict == "deny":
            self.out.risky_calls += 1
            self.rep.add("MS-PKL-003", callable=name, args=folded, opcode=opcode, **self.site())
        elif verdict != "allow":
            self.out.risky_calls += 1
            if outside:
                self.rep.add("MS-PKL-004", callable=name, args=folded, opcode=opcode, why=outside, **self.site())
            else:
                self.rep.add("MS-PKL-004", callable=name, args=folded, opcode=opcode, **self.site())
        elif isinstance(func, V.Global) and func.canonical in FACTORY_HOLDERS:
            self._factory(func, args)
        if self.on_call is not None and verdict != "allow":
            self.on_call(self, result, self.op_offset)
        return result

    def _outside_entry(self, func: Any, args: Any, kwargs: Any, opcode: str) -> str | None:
        """Why this call is outside what a constrained allow entry covers, or None.

        "newobj" classes may be created without __init__ only; "none-first" ones called with None
        first only. A constrained global handed to any other call (bar the class slot of
        copyreg._reconstructor) leaves our sight: the callee may call it any way it likes.
        """
        if isinstance(func, V.Global) and func.only in ("newobj", "torchbind") and opcode in ("REDUCE", "INST", "OBJ"):
            return f"{func.canonical} is allowed only when created without __init__ (NEWOBJ); this {opcode} runs it"
        if isinstance(func, V.Global) and func.only in ("apply", "dill-type"):
            return f"{func.canonical} is allowed only in the shape {func.only} (see policy.CALL_CONSTRAINTS)"
        if isinstance(func, V.Global) and func.only == "none-first" and \
                not (isinstance(args, tuple) and args and args[0] is None):
            return f"{func.canonical} is allowed only with None as its first argument"
        if V.is_compact(args) or V.is_compact(kwargs) or (isinstance(kwargs, V.PDict) and not kwargs.keys_known):
            return f"the arguments handed to {V.callable_name(func)} were not all kept (bounded memory): not verified"
        items = list(args) if isinstance(args, tuple) else []
        if isinstance(kwargs, V.PDict):
            items += [v for _, v in kwargs.pairs]
        reconstructor = isinstance(func, V.Global) and func.canonical == "copyreg._reconstructor"
        for i, item in enumerate(items):
            if isinstance(item, V.Global) and item.only is not None and not (reconstructor and i == 0):
                return (f"{item.canonical} (allowed only {item.only}) is handed to {V.callable_name(func)}, "
                        "which may call it")
        return None

    def _see_through(self, func: V.Global, args: Any, kwargs: Any, opcode: str) -> Any:
        """The operation a "see-through" helper stands for, analysed as itself; None if the call
        does not have the helper's shape (it is then an unverified call, see _outside_entry)."""
        if kwargs is not None or not isinstance(args, tuple):
            return None
        if func.only == "dill-type":  # dill._load_type(name) -> _reverse_typemap[name]
            named = len(args) == 1 and isinstance(args[0], str)
            target = datafiles.load("policy", "picklevm.toml")["dill_types"].get(args[0]) if named else None
            if target is None:
                return None
            module, _, attr = target.rpartition(".")
            return self.find_class(module, attr, f"{func.canonical}({args[0]!r})")
        if func.only == "apply" and 3 <= len(args) <= 4 and isinstance(args[1], tuple):
            f, fargs, state = args[:3]  # dill._create_array: array = f(*args); array.__setstate__(state)
            self._check_callable(f)
            result = self.call(f, fargs, None, opcode)
            self.method_call(result, "__setstate__", [state])
            if isinstance(result, V.Call):
                result.state = state
            return result
        return None

    def _state_outside_entry(self, cls: V.Global, method: str, items: list[Any]) -> str | None:
        """"torchbind": the BUILD state is (state, '<TorchBind class>') and torch.ScriptObject's
        __setstate__ restores that C++ class, so the class must be one whose state is only
        tensors and numbers (data/policy/picklevm.toml [torchbind_states])."""
        if cls.only != "torchbind":
            return None
        state = items[0] if method == "__setstate__" and len(items) == 1 else None
        name = state[1] if isinstance(state, tuple) and len(state) == 2 else None
        if isinstance(name, str) and name in datafiles.load("policy", "picklevm.toml")["torchbind_states"]:
            return None
        return f"{cls.canonical} restores a TorchBind class not known to hold data only ({V.fold(name)!r})"

    def _bound_method(self, args: Any, kwargs: Any) -> V.Global | None:
        """getattr(<allowed global, or an instance of an allowed class>, "<plain name>") whose
        `class.name` is itself an exact allow entry (a method of that class).

        For an instance, a state the pickle gave it (BUILD) that sets the attribute would shadow
        the method, so such a getattr is not taken for the method.
        """
        if kwargs is not None or not isinstance(args, tuple) or len(args) != 2:
            return None
        owner, attr = args
        if not (isinstance(attr, str) and attr.isidentifier() and not attr.startswith("__")):
            return None
        if not isinstance(owner, V.Global):
            made_by = V.class_of(owner)
            state = owner.state if isinstance(owner, V.Call) else None
            if made_by is None or state is not None and not (isinstance(state, V.PDict) and
                                                               all(k != attr for k, _ in state.pairs)):
                return None
            owner = made_by
        if owner.verdict != "allow":
            return None
        method = V.Global(owner.module, f"{owner.name}.{attr}", self.op_offset)
        entry = self.ctx.policy.classify(owner.module, method.name)
        if entry.verdict != "allow" or entry.entry != method.canonical:
            return None
        method.verdict = "allow"
        return method

    def _report_deferred(self, g: V.Global) -> None:
        entry = self.deferred.pop(id(g), None)
        if entry is not None:
            self.rep.add("MS-PKL-001", callable=g.canonical, **entry[1])

    def flush_deferred(self) -> None:
        """End of stream: a getattr import never used as a safe bound-method lookup is reported."""
        for key, (g, _) in list(self.deferred.items()):
            if key not in self.deferred_safe:
                self._report_deferred(g)
        self.deferred.clear()

    def _factory(self, holder: V.Global, args: Any) -> None:
        """An allowlisted container that calls a stored factory later (defaultdict): check the factory."""
        index = FACTORY_HOLDERS[holder.canonical]
        factory = args[index] if isinstance(args, tuple) and len(args) > index else None
        if factory is None:
            return
        verdict = factory.verdict if isinstance(factory, V.Global) else (
            "allow" if isinstance(factory, CONSTANT_TYPES) else "computed")
        if verdict == "allow":
            return
        self.out.risky_calls += 1
        rule = "MS-PKL-003" if verdict == "deny" else "MS-PKL-004"
        self.rep.add(rule, callable=holder.canonical, args=[V.fold(factory)], opcode="factory",
                     factory=V.callable_name(factory), **self.site())

    def method_call(self, target: Any, method: str, items: list[Any]) -> None:
        """APPEND/SETITEM/ADDITEMS/BUILD on an object the loader calls a method of."""
        if isinstance(target, V.Global):
            self.out.risky_calls += 1
            self.rep.add("MS-PKL-005", callable=f"{target.canonical}.{method}", key=("write", target.full),
                         target=target.canonical, how=f"{method} on an imported global", **self.site())
            names: set[str] = set()
            for item in items:
                state, slots = (item if isinstance(item, tuple) and len(item) == 2 else (item, None))
                if V.is_compact(item):
                    names.add(target.canonical)
                for d in (state, slots):
                    if isinstance(d, V.PDict):
                        keys = [self.text(k) for k, _ in d.pairs]
                        names.update(f"{target.canonical}.{k}" for k in keys if isinstance(k, str))
                        if not d.keys_known:
                            names.add(target.canonical)  # keys not all known: the whole global
            # Unknown keys: everything reached through this global is suspect from now on.
            self.shadowed.update(names or {target.canonical})
            return
        cls = V.class_of(target)
        if cls is not None and cls.verdict == "allow":
            outside = self._state_outside_entry(cls, method, items) if cls.only is not None else None
            if outside:
                self.out.risky_calls += 1
                self.rep.add("MS-PKL-004", callable=f"{cls.canonical}.{method}", args=[V.fold(i) for i in items[:5]],
                             opcode=method, why=outside, **self.site())
            return
        if isinstance(target, (V.PList, V.PDict, V.PSet, V.Persistent, V.Opaque)) or target is None:
            return
        if isinstance(target, CONSTANT_TYPES + (tuple,)):
            if method == "__setstate__" or _constant_has(target, method):
                return  # e.g. APPEND/SETITEM on a bytearray: _pickle.c calls its extend/__setitem__
            raise self.err(f"'{type(target).__name__}' object has no attribute '{method}'")
        name = f"{cls.canonical if cls else V.callable_name(target)}.{method}"
        verdict = cls.verdict if cls else "computed"
        self.out.risky_calls += 1
        if method == "__setstate__":
            self.out.builds.append(name)
        rule = "MS-PKL-003" if verdict == "deny" else "MS-PKL-004"
        self.rep.add(rule, callable=name, args=[V.fold(i) for i in items[:5]], opcode=method, **self.site())

    # ----------------------------------------------------------------- opcodes
    def op_MARK(self, _: Any) -> None:
        self.marks.append(len(self.stack))
        if len(self.stack) + len(self.marks) > self.max_depth:
            raise BudgetExceeded("max_stack_depth", self.max_depth)

    def op_STOP(self, _: Any) -> bool:
        self.out.value = self.pop()
        # A reader that took the whole frame from the file (pure-Python _Unframer, _pickle.c on a
        # BytesIO or on a frame larger than the file's peek buffer) leaves the file at the frame
        # end, where the next load starts; _pickle.c with peek rewinds to just after STOP.
        ends = [e for e in (self.c_frame_end, self.frame_end, getattr(self.r, "file_pos", None))
                if e is not None and e > self.r.pos]
        if ends:
            self.out.stop_frame_end = min(max(ends), self.end)
        return True

    def op_POP(self, _: Any) -> None:
        if len(self.stack) > self.fence:
            self.stack.pop()
        elif self.marks:
            self.pop_mark()
        else:
            raise self.err("unpickling stack underflow")

    def op_POP_MARK(self, _: Any) -> None:
        self.pop_mark()

    def op_DUP(self, _: Any) -> None:
        self.push(self.top())

    def _const(self, value: Any) -> None:
        self.push(value)

    op_INT = op_BININT = op_BININT1 = op_BININT2 = op_LONG = op_LONG1 = op_LONG4 = _const
    op_STRING = op_BINSTRING = op_SHORT_BINSTRING = op_BINBYTES = op_SHORT_BINBYTES = _const
    op_BINBYTES8 = op_BYTEARRAY8 = op_UNICODE = op_SHORT_BINUNICODE = op_BINUNICODE = _const
    op_BINUNICODE8 = op_FLOAT = op_BINFLOAT = _const

    def op_NONE(self, _: Any) -> None:
        self.push(None)

    def op_NEWTRUE(self, _: Any) -> None:
        self.push(True)

    def op_NEWFALSE(self, _: Any) -> None:
        self.push(False)

    def op_NEXT_BUFFER(self, _: Any) -> None:
        raise self.err("pickle stream refers to out-of-band data but no *buffers* argument was given")

    def op_READONLY_BUFFER(self, _: Any) -> None:
        self.top()

    def op_EMPTY_LIST(self, _: Any) -> None:
        self.push(V.PList())

    def op_EMPTY_DICT(self, _: Any) -> None:
        self.push(V.PDict())

    def op_EMPTY_SET(self, _: Any) -> None:
        self.push(V.PSet())

    def op_EMPTY_TUPLE(self, _: Any) -> None:
        self.push(())

    def op_LIST(self, _: Any) -> None:
        self.push(V.PList(self.pop_mark()))

    def op_TUPLE(self, _: Any) -> None:
        self.push(tuple(self.pop_mark()))

    def _tuple_n(self, n: int) -> None:
        if len(self.stack) - n < self.fence:
            raise self.err("unpickling stack underflow")
        items = tuple(self.stack[len(self.stack) - n:])
        del self.stack[len(self.stack) - n:]
        self.push(items)

    def op_TUPLE1(self, _: Any) -> None:
        self._tuple_n(1)

    def op_TUPLE2(self, _: Any) -> None:
        self._tuple_n(2)

    def op_TUPLE3(self, _: Any) -> None:
        self._tuple_n(3)

    def op_DICT(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise self.err("odd number of items for DICT")
        d = V.PDict()
        d.extend(items)
        self.push(d)

    def op_FROZENSET(self, _: Any) -> None:
        self.push(V.PSet(self.pop_mark(), frozen=True))

    def _target_below(self, k: int) -> Any:
        if k <= 0 or k > len(self.stack):
            raise self.err("unpickling stack underflow")
        return self.stack[k - 1]

    def _extend(self, target: Any, items: list[Any], kind: str) -> None:
        if not items:
            return
        if kind == "list" and isinstance(target, V.PList):
            target.extend(items)
        elif kind == "dict" and isinstance(target, V.PDict):
            if len(items) % 2:
                raise self.err("odd number of items for SETITEMS")
            target.extend(items)
        elif kind == "set" and isinstance(target, V.PSet) and not target.frozen:
            target.extend(items)
        else:
            if kind == "dict" and len(items) % 2:
                raise self.err("odd number of items for SETITEMS")
            method = {"list": "extend", "dict": "__setitem__", "set": "add"}[kind]
            self.method_call(target, method, items)

    def op_APPEND(self, _: Any) -> None:
        value = self.pop()
        self._extend(self.top(), [value], "list")

    def op_APPENDS(self, _: Any) -> None:
        if not self.marks:
            raise self.err("could not find MARK")
        k = self.marks[-1]
        target = self._target_below(k)
        self._extend(target, self.pop_mark(), "list")

    def op_SETITEM(self, _: Any) -> None:
        value = self.pop()
        key = self.pop()
        self._extend(self.top(), [key, value], "dict")

    def op_SETITEMS(self, _: Any) -> None:
        if not self.marks:
            raise self.err("could not find MARK")
        target = self._target_below(self.marks[-1])
        self._extend(target, self.pop_mark(), "dict")

    def op_ADDITEMS(self, _: Any) -> None:
        if not self.marks:
            raise self.err("could not find MARK")
        target = self._target_below(self.marks[-1])
        self._extend(target, self.pop_mark(), "set")

    # memo
    def _get(self, idx: int) -> None:
        value = self.memo.get(idx)
        if value is MISSING:
            raise self.err(f"Memo value not found at index {idx}")
        self.push(value)

    op_GET = op_BINGET = op_LONG_BINGET = _get

    def _put(self, idx: int) -> None:
        if idx < 0:
            raise self.err("negative PUT argument")
        value = self.top()
        if idx not in self.memo and len(self.memo) >= self.max_memo:
            raise BudgetExceeded("max_memo", self.max_memo)
        self.memo.put(idx, value, self._src())

    op_PUT = op_BINPUT = op_LONG_BINPUT = _put

    def op_MEMOIZE(self, _: Any) -> None:
        self._put(len(self.memo))

    # framing and protocol
    def op_PROTO(self, proto: Any) -> None:
        if proto > HIGHEST_PROTOCOL:
            raise self.err(f"unsupported pickle protocol: {proto}")
        self.proto = proto

    def op_FRAME(self, size: Any) -> None:
        # _pickle.c reads the whole frame first (a short one fails there), then reads opcodes
        # transparently. The pure-Python _Unframer (joblib.load, pickle._load) does NOT check
        # the length: it runs whatever the short frame holds. So a frame running past the end is
        # analysed up to the end, never a reason to stop (the payload would hide behind it).
        short = self.r.pos + size > self.end
        if short:
            self.out.short_frame = self.op_offset
        if isinstance(self.r, StreamReader):  # the c_stream reading
            self.r.frame(size)
            return
        if self.flavour == "joblib":  # pure-Python _Unframer semantics (joblib's Unpickler)
            if self.frame_end is not None and self.r.pos < self.frame_end:
                raise self.err("beginning of a new frame before end of current frame")
            self.frame_end = min(self.r.pos + size, self.end)
            self.file_pos = self.frame_end
            return
        # Linear reading (pickletools, CPython >= 3.13.15 / 3.14.7 raise instead): note the first
        # boundary violation, older C unpicklers read other opcodes there (StreamReader).
        if self.c_frame_end is not None and self.op_offset < self.c_frame_end \
                and self.out.frame_straddle is None:
            self.out.frame_straddle = (self.op_offset, f"FRAME at offset {self.op_offset} opens before the "
                                       f"frame ending at {self.c_frame_end} is finished")
        self.c_frame_end = self.r.pos + size

    # imports
    def op_GLOBAL(self, arg: Any) -> None:
        module, name = arg
        self.push(self.find_class(module, name, "GLOBAL"))

    def op_STACK_GLOBAL(self, _: Any) -> None:
        name = self.text(self.pop())
        module = self.text(self.pop())
        if isinstance(module, str) and isinstance(name, str):
            self.push(self.find_class(module, name, "STACK_GLOBAL"))
            return
        if isinstance(module, CONSTANT_TYPES + (tuple, V.PList, V.PDict, V.PSet)) and \
                isinstance(name, CONSTANT_TYPES + (tuple, V.PList, V.PDict, V.PSet)):
            raise self.err("STACK_GLOBAL requires str")
        text = f"{V.fold(module)}.{V.fold(name)}"
        g = V.Global(str(V.fold(module)), str(V.fold(name)), self.op_offset, "dynamic")
        self.note_global(g.full)
        self.rep.add("MS-PKL-013", callable=text, **self.site())
        self.push(g)

    def _ext(self, code: int) -> None:
        if code <= 0:
            raise self.err("EXT specifies code <= 0")
        key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
        if key is None:
            self.rep.add("MS-PKL-007", callable=f"<extension code {code}>", code=code, **self.site())
            g = V.Global("<extension>", str(code), self.op_offset, "dynamic")
            self.note_global(g.full)
            self.push(g)
            return
        self.push(self.find_class(key[0], key[1], "EXT"))

    op_EXT1 = op_EXT2 = op_EXT4 = _ext

    # calls
    def op_REDUCE(self, _: Any) -> None:
        args = self.pop()
        func = self.pop()
        self._check_callable(func)
        self.push(self.call(func, self._star_args(args, "argument list must be a tuple"), None, "REDUCE"))

    def _star_args(self, args: Any, reason: str) -> Any:
        """The positional arguments a call receives from `args`.

        _pickle.c demands a tuple, but pickle._Unpickler (joblib.load, dill.load) calls
        `func(*args)` / `cls.__new__(cls, *args)`: any iterable works there (a list's items, a
        dict's keys, a string's characters). Only what no unpickler can spread is an error.
        """
        if isinstance(args, tuple):
            return args
        if isinstance(args, (V.PList, V.PSet, V.PDict)) and (V.is_compact(args) or getattr(args, "truncated", False)):
            return args  # not all items kept (bounded memory): an unverified argument list
        if isinstance(args, (V.PList, V.PSet)):
            return tuple(args.items)
        if isinstance(args, V.PDict):
            return tuple(k for k, _ in args.pairs)
        if isinstance(args, (str, bytes, bytearray)) and len(args) <= STAR_CAP:
            return tuple(args)
        if isinstance(args, (str, bytes, bytearray)) or (isinstance(args, BigBytes) and args.kind != "int"):
            return (V.Opaque("the items of a long string"),)
        if isinstance(args, CONSTANT_TYPES):  # int, float, bool, None: not iterable
            raise self.err(reason)
        return args  # a computed value: whatever it holds

    def _check_callable(self, func: Any) -> None:
        if isinstance(func, NOT_CALLABLE):
            raise self.err(f"'{type(func).__name__}' object is not callable")

    def op_INST(self, arg: Any) -> None:
        # The pure-Python unpickler (joblib, dill, pandas' fallback) imports before it looks for
        # the MARK (_pickle.c looks first): the import is reported whatever the stack holds.
        module, name = arg
        cls = self.find_class(module, name, "INST")
        args = tuple(self.pop_mark())
        self.push(self.call(cls, args, None, "INST"))

    def op_OBJ(self, _: Any) -> None:
        items = self.pop_mark()
        if not items:
            raise self.err("unpickling stack underflow")
        cls, args = items[0], tuple(items[1:])
        self._check_callable(cls)
        self.push(self.call(cls, args, None, "OBJ"))

    def op_NEWOBJ(self, _: Any) -> None:
        args = self.pop()
        cls = self.pop()
        args = self._star_args(args, "NEWOBJ expected an arg tuple.")
        self._check_callable(cls)
        self.push(self.call(cls, args, None, "NEWOBJ"))

    def op_NEWOBJ_EX(self, _: Any) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        args = self._star_args(args, "NEWOBJ_EX args argument must be a tuple")
        if isinstance(kwargs, CONSTANT_TYPES + (tuple, V.PList, V.PSet)):
            raise self.err("NEWOBJ_EX kwargs argument must be a dict")
        self._check_callable(cls)
        self.push(self.call(cls, args, kwargs, "NEWOBJ_EX"))

    def op_BUILD(self, _: Any) -> None:
        state = self.pop()
        inst = self.top()
        if isinstance(inst, V.Call) and not inst.compact:
            inst.state = state
        self.method_call(inst, "__setstate__" if not isinstance(inst, V.Global) else "BUILD", [state])
        cls = instance_class(inst)
        if self.on_array is not None and cls is not None and cls.full in ARRAY_WRAPPERS:
            self.stack.pop()
            self.push(V.Opaque("ndarray"))
            new_pos = self.on_array(self, inst, self._file_position())
            self._set_file_position(new_pos)

    def _file_position(self) -> int:
        """Where the loader's file handle is now (after the current frame, if inside one)."""
        if self.frame_end is not None and self.file_pos is not None:
            return self.file_pos
        return self.r.pos

    def _set_file_position(self, pos: int) -> None:
        if self.frame_end is not None and self.r.pos < self.frame_end:
            self.file_pos = pos
        else:
            self.frame_end = self.file_pos = None
            self.r.pos = pos

    # persistent ids
    def _persid(self, pid: Any) -> None:
        if len(self.out.pids) < MAX_PIDS or self.on_pid is None:
            self.out.pids.append((pid, self.op_offset, self.position))
        else:
            self.on_pid(pid, self.op_offset, self.position)
        if self.flavour == "torch-legacy" and isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module" \
                and isinstance(pid[1], V.Global):
            self.push(pid[1])  # torch's legacy persistent_load returns the module class itself
            return
        self.push(V.Persistent(pid, self.op_offset))

    def op_PERSID(self, pid: Any) -> None:
        self._persid(pid)

    def op_BINPERSID(self, _: Any) -> None:
        self._persid(self.pop())


def _keeps_arguments(call: V.Call) -> bool:
    """Objects whose arguments or state an analysis reads after they were memoised: kept in full."""
    func = call.func
    if not isinstance(func, V.Global):
        return False
    if func.name == "dtype" or func.full in ARRAY_WRAPPERS:
        return True
    tables = datafiles.load("policy", "picklevm.toml")
    return func.full in tables["decoders"] or func.full in tables["nested_loaders"]
