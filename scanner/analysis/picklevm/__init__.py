"""The symbolic, inert pickle VM (protocols 0-5), the engine every pickle-bearing format calls.

API used by other format modules (keep it stable):

    analyse_pickle(blob, ctx, *, start=0, end=None, flavour="plain", max_streams=None) -> PickleResult

- Emulates CPython `_pickle` over the bytes [start, end) of `blob`, stream after stream (keeps going
  after STOP to `end`, like torch legacy / joblib readers), reporting findings through `ctx.add`
  with byte offsets and opcode positions. Never imports or calls anything from the artefact.
- `flavour` tells what the loader does with persistent ids and inline data:
    "plain"        pickle.load
    "torch-zip"    torch.load of a zip checkpoint's .pkl member (persistent ids are storages)
    "torch-legacy" torch.load legacy format stream (persistent ids are storages)
    "torchscript"  a torch.jit.save archive's .pkl members (`__torch__.*` classes come from code/)
    "joblib"       joblib.load (NumpyArrayWrapper raw array bytes between pickle opcodes)
    "numpy"        the object-array pickle after a .npy header
- `max_streams=1` stops after one stream (torch legacy reads a fixed number of pickles, then raw
  storages) and `PickleResult.end` tells where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...blob import Blob
    from ...context import ScanContext


@dataclass
class PickleResult:
    """What one call saw: stream spans, imports, call sites, persistent ids, where it stopped."""

    end: int = 0  # offset just past the last byte consumed
    streams: list[tuple[int, int]] = field(default_factory=list)  # (start, end) offsets
    globals: list[str] = field(default_factory=list)  # "module.name" in import order
    calls: list[str] = field(default_factory=list)  # callables invoked (REDUCE/INST/OBJ/NEWOBJ/BUILD)
    persistent_ids: list[Any] = field(default_factory=list)  # constant-folded persistent id payloads
    complete: bool = True  # False if the stream ended in an error or budget
    builds: list[str] = field(default_factory=list)  # BUILD/__setstate__ on non-allowlisted objects
    stream_globals: list[list[str]] = field(default_factory=list)  # per stream, for differential tests
    stream_calls: list[list[str]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)  # folded value each complete stream returned
    flavour: str = ""  # the view the result describes (a plain pickle with joblib arrays: "joblib")
    frame_straddle: bool = False  # an opcode crossed a FRAME boundary (loaders disagree, gh-154848)
    stop_in_frame: bool = False  # a stream stopped inside a FRAME: where the next load starts differs
    resume_at: int | None = None  # the last stream stopped inside a FRAME: where a reader without peek goes on


FLAVOURS = ("plain", "torch-zip", "torch-legacy", "torchscript", "joblib", "numpy")


def analyse_pickle(blob: Blob, ctx: ScanContext, *, start: int = 0, end: int | None = None, flavour: str = "plain",
                   max_streams: int | None = None) -> PickleResult:
    """Emulate the unpickler over [start, end) of `blob`, reporting through `ctx`; see the module doc.

    Malformed streams become MS-PKL-008 (inconclusive; plus MS-PKL-009 when a non-allowlisted call
    ran before the error); budgets raise `BudgetExceeded` after the findings seen so far are added.
    """
    from .session import Session

    from . import views

    if flavour not in FLAVOURS:
        raise ValueError(f"unknown pickle flavour {flavour!r}")
    end = blob.size if end is None else min(end, blob.size)

    def run(run_ctx: ScanContext, run_flavour: str, c_stream: bool = False, frame_skip: bool = False) -> PickleResult:
        result = PickleResult(end=start, flavour=run_flavour)
        Session(blob, run_ctx, run_flavour, result, recurse=analyse_pickle, c_stream=c_stream,
                frame_skip=frame_skip).run(start, end, max_streams)
        return result

    def c_stream_view(primary: PickleResult) -> PickleResult:
        # Frames crossed by an opcode: older _pickle.c reading a BytesIO/file runs other opcodes.
        if primary.frame_straddle:
            views.secondary(lambda c, f: run(c, f, c_stream=True), ctx, primary.flavour, view=views.C_STREAM)
        # A STOP inside a frame: the next load (torch legacy's next pickle, a joblib object array's
        # end, a reader calling pickle.load again) starts at the frame end for most readers.
        if primary.stop_in_frame:
            views.secondary(lambda c, f: run(c, f, frame_skip=True), ctx, primary.flavour, view=views.FRAME_SKIP)
        return primary

    if flavour not in ("plain", "joblib"):
        return c_stream_view(run(ctx, flavour))
    # pickle.load and joblib.load read the same bytes differently (raw arrays): see views.py.
    mark = len(ctx.artefact.findings)
    if flavour == "plain":
        result = run(ctx, "plain")
        if not views.imports_array_wrapper(result.globals):
            return c_stream_view(result)
        ctx.drop_findings(mark)  # the joblib view is the primary one for this file
    result = run(ctx, "joblib")
    views.secondary(run, ctx, "plain")
    return c_stream_view(result)

