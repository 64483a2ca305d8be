"""One `analyse_pickle` call: streams one after another, flavour rules, nested payloads, joblib arrays."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from ...blob import BytesBlob
from ...errors import BudgetExceeded
from . import nested
from . import values as V
from .machine import Machine, StreamOutcome, instance_class
from ..marshal_reader import summarise
from ...errors import MarshalError
from ...errors import PickleError
from .report import Reporter

if TYPE_CHECKING:
    from ...blob import Blob
    from ...context import ScanContext
    from . import PickleResult

TORCH_FLAVOURS = ("torch-zip", "torch-legacy", "torchscript")
MAX_PIDS = 100_000


class Session:
    """State shared by the streams of one call (reporter, stream counter, result)."""

    def __init__(self, blob: Blob, ctx: ScanContext, flavour: str, result: PickleResult, *,
                 recurse: Callable[[Blob, ScanContext], object], c_stream: bool = False,
                 frame_skip: bool = False) -> None:
        self.blob, self.ctx, self.flavour, self.result = blob, ctx, flavour, result
        self.recurse = recurse  # analyse_pickle, for nested pickles (passed in: no import cycle)
        self.c_stream = c_stream  # the io.BytesIO reading of older _pickle.c (see StreamReader)
        # A load after a STOP inside a FRAME starts at the frame end (also for the c_stream reader:
        # _pickle.c without peek has the whole frame read from the file already).
        self.frame_skip = frame_skip or c_stream
        self.rep = Reporter(ctx)
        self.next_stream = 0

    # ------------------------------------------------------------ streams
    def run(self, start: int, end: int, max_streams: int | None) -> None:
        budget = self.ctx.budgets.max_pickle_bytes
        limit = min(end, start + budget)
        pos, count = start, 0
        if start >= end:
            self.result.complete = False
            self.rep.add("MS-PKL-008", stream=0, offset=start, position=0, reason="empty pickle (no data)",
                         key="empty")
            return
        while pos < limit and (max_streams is None or count < max_streams):
            if count >= self.ctx.budgets.max_streams:
                raise BudgetExceeded("max_streams", self.ctx.budgets.max_streams)
            out = self.stream(pos, limit)
            count += 1
            if out.error is not None:
                self.stream_error(out, first=(count == 1))
                if out.opcodes or count == 1:
                    pos = out.end
                break
            pos = self.next_load(out)
        self.result.end = pos
        if pos >= limit and limit < end and (max_streams is None or count < max_streams):
            raise BudgetExceeded("max_pickle_bytes", budget)

    def stream(self, pos: int, end: int) -> StreamOutcome:
        index = self.next_stream
        self.next_stream += 1
        machine = Machine(self.blob, pos, end, ctx=self.ctx, reporter=self.rep, stream=index,
                          flavour=self.flavour, on_call=self.on_call,
                          on_array=self.on_array if self.flavour == "joblib" else None, c_stream=self.c_stream,
                          on_pid=lambda pid, offset, position: self.check_pid(pid, offset, position, index))
        self.result.streams.append((pos, pos))
        slot = len(self.result.streams) - 1
        self.result.stream_globals.append(machine.out.globals)
        self.result.stream_calls.append(machine.out.calls)
        try:
            out = machine.run()
        finally:
            self.result.streams[slot] = (pos, machine.r.pos)
            self.result.globals.extend(machine.out.globals)
            self.result.calls.extend(machine.out.calls)
            self.result.builds.extend(machine.out.builds)
        if out.error is None:
            self.result.values.append(V.fold(out.value))
        if out.short_frame is not None and out.error is None:  # an error already says 'truncated'
            self.result.complete = False
            self.rep.add("MS-PKL-008", stream=index, offset=out.short_frame, position=None, key="short-frame",
                         reason="a FRAME runs past the end of the data; _pickle (pickle.load, torch.load) fails "
                                "here, but the pure-Python unpickler (joblib.load, pickle._load) runs what the "
                                "frame holds, so it was analysed to the end anyway")
        if out.frame_straddle is not None:
            self.result.frame_straddle = True
            offset, reason = out.frame_straddle
            self.rep.add("MS-PKL-015", stream=index, offset=offset, position=None, key="frame-straddle",
                         reason=reason)
        if out.stop_frame_end is not None:
            self.result.stop_in_frame = True
        self.result.resume_at = out.stop_frame_end
        self.check_pids(out, index)
        return out

    def next_load(self, out: StreamOutcome) -> int:
        """Where the next load on the same file starts (see Machine.op_STOP)."""
        return out.stop_frame_end if self.frame_skip and out.stop_frame_end is not None else out.end

    def stream_error(self, out: StreamOutcome, first: bool) -> None:
        err = out.error
        assert err is not None  # called for streams that ended in an error
        index = len(self.result.streams) - 1
        if not first and not out.opcodes:
            self.rep.add("MS-PKL-014", stream=index, offset=out.start, position=0,
                         size=self.blob.size - out.start, reason=err.reason)
            self.result.streams.pop()
            self.result.stream_globals.pop()
            self.result.stream_calls.pop()
            return
        if not first and not out.risky_calls and not out.globals:
            self.rep.add("MS-PKL-014", stream=index, offset=out.start, position=0,
                         size=self.blob.size - out.start, reason=err.reason)
            return
        self.result.complete = False
        self.rep.add("MS-PKL-008", stream=index, offset=err.offset, position=out.opcodes, reason=err.reason,
                     key="error")
        if out.risky_calls:
            self.rep.add("MS-PKL-009", stream=index, offset=err.offset, position=out.opcodes,
                         calls=out.risky_calls, reason=err.reason, key="tail")

    # ------------------------------------------------------------ persistent ids
    def check_pids(self, out: StreamOutcome, index: int) -> None:
        for pid, offset, position in out.pids:
            self.check_pid(pid, offset, position, index)

    def check_pid(self, pid: Any, offset: int, position: int, index: int) -> None:
        """One persistent id: what the loader's persistent_load makes of it."""
        if len(self.result.persistent_ids) < MAX_PIDS:
            self.result.persistent_ids.append(V.fold(pid))
        if self.flavour in TORCH_FLAVOURS:
            ok = isinstance(pid, tuple) and pid and pid[0] in (
                ("storage",) if self.flavour != "torch-legacy" else ("storage", "module"))
            if not ok:
                self.rep.add("MS-PKL-010", stream=index, offset=offset, position=position, key="pid-odd",
                             pid=V.fold(pid), why="torch's persistent_load expects a ('storage', ...) tuple")
        else:
            self.rep.add("MS-PKL-010", stream=index, offset=offset, position=position, key="pid",
                         pid=V.fold(pid), why="pickle.load has no persistent_load and stops here")

    # ------------------------------------------------------------ nested payloads
    def on_call(self, machine: Machine, call: V.Call, offset: int) -> None:
        args = call.args if isinstance(call.args, tuple) else ()
        kind = nested.loader_kind(call.func)
        candidates: list[tuple[str, bytes]] = []
        if kind is not None and args:
            data = nested.payload_bytes(args[0], self.blob)
            if data is not None:
                candidates.append((kind, data))
        else:
            for arg in args[:4]:
                data = nested.payload_bytes(arg, self.blob)
                if data is None:
                    continue
                if nested.looks_like_pickle(data):
                    candidates.append(("pickle", data))
                elif nested.looks_like_code(data):
                    candidates.append(("marshal", data))
        for kind, data in candidates:
            self.nested(kind, data, offset, machine.stream)

    def nested(self, kind: str, data: bytes, offset: int, stream: int) -> None:
        label = "marshalled code" if kind == "marshal" else f"{kind} payload" if kind != "pickle" else "pickle"
        ctx = self.ctx
        member = f"<nested {label} at offset {offset}>"
        if kind not in ("marshal", "pickle"):  # sniffed: torch zip, npy, joblib, compressed...
            name = f"nested.{ {'torch': 'pt', 'joblib': 'joblib', 'numpy': 'npy'}[kind] }"
            ctx.descend(BytesBlob(data, name="nested"), name, member=member, container=False, nested=True,
                        record=False)
            return
        with ctx.enter(member, nested=True):
            if kind == "marshal":
                self.marshal(data)
                return
            self.recurse(BytesBlob(data, name="nested"), ctx)

    def marshal(self, data: bytes) -> None:
        names_table = nested.tables()["marshal_names"]
        try:
            summary = summarise(data)
        except MarshalError as exc:
            self.ctx.add("MS-PKL-011", offset=0, reason=f"marshal payload not readable: {exc}")
            return
        names = list(dict.fromkeys(summary.all_names() + summary.all_strings()))
        risky = [n for n in names if n in names_table]
        self.ctx.add("MS-PKL-012", offset=0, callable="marshal code object", args=risky[:30],
                     code_objects=summary.count(), names=[n[:200] for n in names[:100]],
                     functions=summary.all_functions()[:20],
                     names_risky=", ".join(risky[:10]) or "none of the known-risky names")

    # ------------------------------------------------------------ joblib inline arrays
    def on_array(self, machine: Machine, wrapper: V.Call, pos: int) -> int:
        """joblib NumpyArrayWrapper: skip (or scan, for object dtype) the array bytes at `pos`."""
        cls = instance_class(wrapper)
        if cls is None or cls.full != "joblib.numpy_pickle.NumpyArrayWrapper":  # also `joblib` + dotted name
            return pos  # NDArrayWrapper (joblib <= 0.9): array in a side file
        state = wrapper.state if isinstance(wrapper.state, V.PDict) else V.PDict()
        shape = state.get("shape")
        dtype = state.get("dtype")
        info = dtype_info(dtype)
        if V.is_compact(shape):  # a shape the memo no longer holds in full: not knowable
            info = None
        if info is None or not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise PickleError("joblib array wrapper with an unreadable shape or dtype", machine.op_offset)
        itemsize, hasobject = info
        if hasobject:
            out = self.stream(pos, machine.end)  # a nested pickle in the same file (fresh Unpickler)
            if out.error is not None:
                raise out.error
            return self.next_load(out)
        count = 1
        for n in shape:
            count *= n
        if any(k == "numpy_array_alignment_bytes" for k, _ in state.pairs):
            pad = self.blob.read_at(pos, 1)
            if not pad:
                raise PickleError("joblib array padding byte missing", pos)
            pos += 1 + pad[0]
        pos += count * itemsize
        if pos > machine.end:
            raise PickleError(f"joblib array data ({count * itemsize} bytes) runs past the end", machine.op_offset)
        return pos


def dtype_info(dtype: Any, depth: int = 0) -> tuple[int, bool] | None:
    """(itemsize, hasobject) of a symbolic `numpy.dtype(descr, ...)` with its BUILD state.

    joblib reads a nested pickle instead of raw bytes when `dtype.hasobject`, and numpy's
    `dtype.__setstate__` takes that from the state too: the flags word (bit 0, NPY_ITEM_HASOBJECT,
    even on a plain `V8`), a sub-array descr (`(dtype('O'), (2,))`) or object fields. Any of them
    means objects here; the descr string itself is parsed by numpy (a pure parse, no data).
    """
    if depth > 16 or not isinstance(dtype, V.Call) or not isinstance(dtype.func, V.Global) \
            or dtype.func.name != "dtype":
        return None
    args = dtype.args if isinstance(dtype.args, tuple) else ()
    descr = args[0] if args and isinstance(args[0], str) else None
    if descr is None:
        return None
    parsed = _numpy_dtype(descr)
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    from_state = _state_has_objects(state, depth) or V.is_compact(state)
    hasobject = bool(OBJECT_TEXT.search(descr)) or bool(parsed and parsed[1]) or from_state
    size = _itemsize(descr, parsed, state)
    return None if size is None else (size, hasobject)


def _state_has_objects(state: tuple[Any, ...], depth: int) -> bool:
    """Whether a dtype's BUILD state says it holds objects: flags bit 0, a sub-array or fields that do."""
    hasobject = False
    flags = state[7] if len(state) > 7 else None
    if isinstance(flags, int) and flags & 1:
        hasobject = True
    elif len(state) > 7 and not isinstance(flags, int):
        hasobject = True  # a computed flags word: assume the worst
    subdescr = state[2] if len(state) > 2 else None
    if isinstance(subdescr, tuple) and subdescr:
        sub = dtype_info(subdescr[0], depth + 1)
        if sub is None or sub[1]:
            hasobject = True
    elif subdescr is not None:
        hasobject = True
    fields = state[4] if len(state) > 4 else None
    if isinstance(fields, V.PDict):
        if not fields.keys_known:
            hasobject = True  # fields not all known: assume the worst
        for _, spec in fields.pairs:
            if isinstance(spec, tuple) and spec:
                sub = dtype_info(spec[0], depth + 1)
                if sub is None or sub[1]:
                    hasobject = True
    elif fields is not None:
        hasobject = True
    return hasobject


def _itemsize(descr: str, parsed: tuple[int, bool] | None, state: tuple[Any, ...]) -> int | None:
    """The element size: the state's elsize, numpy's parse of the descr, or the descr's digits."""
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    if elsize > 0:
        return elsize
    if parsed is not None:
        return parsed[0]
    digits = "".join(c for c in descr if c.isdigit())
    if not digits:
        return 1 if descr.lstrip("<>|=") in ("?", "b", "B") else None
    return int(digits)


# An object type anywhere in a dtype string ("O", "|O8", "2O", "(2,)O", "i4,O", "object_").
OBJECT_TEXT = re.compile(r"(^|[,\s<>|=)\d])(O|object)")


def _numpy_dtype(descr: str) -> tuple[int, bool] | None:
    """(itemsize, hasobject) numpy gives the descr string, or None (numpy absent / invalid)."""
    if len(descr) > 4096:
        return None
    try:
        import numpy

        parsed = numpy.dtype(descr)  # parses the type string only; nothing from the artefact runs
        return parsed.itemsize, bool(parsed.hasobject)
    except Exception:  # noqa: BLE001 - invalid for numpy too: the loader fails the same way
        return None
