"""Does a loader that unpickles from offset 0 run anything? The trial run every pickle sniff uses.

`pickle.load`, `torch.load`'s legacy path (its magic-number pickle), `joblib.load` of an
uncompressed file, `numpy.load(allow_pickle=True)` of unknown magic, `pandas.read_pickle`,
`dill.load`... all hand the file's first byte to an unpickler. Which streams such an unpickler
executes is not a question of magic numbers: `_pickle.c` reads any opcode first (PROTO is
optional, protocol 0/1 streams start with any opcode, binary ones included), reads text lines
of any length and counted arguments of any size. So the sniff is a bounded trial run of the
VM itself (the opcode table and the C loader's error conditions), over the whole blob:

- the first byte is not an opcode, or the stream fails before it imports anything: nothing can
  run (only a `find_class` import reaches code; persistent ids stop these loaders, none of which
  has a `persistent_load` for the stream at offset 0) -> `None`;
- it imports a well-formed name before it stops, runs past `TRIAL_OPCODES` valid opcodes, hits a
  budget or a line longer than the VM reads (C reads any length), or the VM fails internally ->
  `executes` (analysed in full; what cannot be analysed there is inconclusive, never clean);
- it reaches STOP without importing: a plain-data pickle (`complete`, with its folded value: the
  torch legacy magic number says five stacked pickles follow).

The first 64 KiB come from the head already read; the blob is read further only when the stream
is still valid at the end of the head (a long text line, a large counted argument), and then
with the VM's positioned reads.
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...blob import BytesBlob
from ...errors import BudgetExceeded, PickleError
from ...findings import Artefact
from . import values as V
from .machine import Machine
from .opcodes import HIGHEST_PROTOCOL, OPCODES
from .report import Reporter
from .views import importable

if TYPE_CHECKING:
    from ...blob import Blob

TRIAL_OPCODES = 4096  # valid opcodes in a row: no accident of text or binary data gets this far
PROTO = 0x80


@dataclass(frozen=True)
class Start:
    """What an unpickler reading from offset 0 does with the blob."""

    executes: bool  # it imports (or may import) something before it stops
    complete: bool  # the first stream reached STOP (without importing, if not `executes`)
    value: Any = None  # what the first stream returned when complete (constants as is, else folded)
    proto_led: bool = False  # starts with a PROTO opcode (0..HIGHEST_PROTOCOL)
    reason: str = ""  # why it executes / where it stopped

    @property
    def is_pickle(self) -> bool:
        """A stream worth analysing as a pickle: it runs something, completes, or says PROTO."""
        return self.executes or self.complete or self.proto_led


class _Trial(Machine):
    """The VM with every import recorded as (module, name) and persistent ids ending the stream."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.imports: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str, via: str) -> V.Global:
        self.imports.append((module, name))
        return super().find_class(module, name, via)

    def _persid(self, pid: Any) -> None:
        raise PickleError("persistent id: the loaders reading offset 0 have no persistent_load", self.op_offset)


_CACHE: "weakref.WeakKeyDictionary[Blob, Start | None]" = weakref.WeakKeyDictionary()
_REFUSED: "weakref.WeakKeyDictionary[Blob, str]" = weakref.WeakKeyDictionary()


def start_of(blob: "Blob", head: bytes | None = None) -> Start | None:
    """The trial's verdict on `blob` (memoised per blob); `head`: its first bytes, if already read."""
    try:
        return _CACHE[blob]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable: no memo
        return _start(blob, head if head is not None else blob.head(1 << 16))
    reasons: list[str] = []
    result = _start(blob, head if head is not None else blob.head(1 << 16), reasons)
    _CACHE[blob] = result
    if reasons:
        _REFUSED[blob] = reasons[-1]
    return result


def refusal(blob: "Blob") -> str:
    """Why an unpickler reading `blob` from offset 0 stops before running anything (after start_of)."""
    if start_of(blob) is not None:
        return ""
    return _REFUSED.get(blob, "its first byte is no pickle opcode")


def start_of_bytes(data: bytes) -> Start | None:
    """The trial's verdict on bytes in memory (nested payloads)."""
    return _start(BytesBlob(data), data)


def _start(blob: "Blob", head: bytes, reasons: list[str] | None = None) -> Start | None:
    reasons = [] if reasons is None else reasons
    if not head:
        reasons.append("no data")
        return None
    if head[0] not in OPCODES:
        reasons.append(f"invalid load key {chr(head[0])!r} at offset 0")
        return None
    proto_led = head[0] == PROTO and len(head) > 1 and head[1] <= HIGHEST_PROTOCOL
    outcome = _run(BytesBlob(head), len(head), whole=blob.size <= len(head))
    if outcome is _TRUNCATED and blob.size > len(head):
        outcome = _run(blob, blob.size)  # still valid where the head ends: follow the stream
    if isinstance(outcome, Start):
        return dataclasses.replace(outcome, proto_led=proto_led)
    if proto_led:  # a broken pickle by intent: analysed (and inconclusive) as one
        return Start(False, False, proto_led=True, reason=str(outcome))
    reasons.append(str(outcome))
    return None


_TRUNCATED = "truncated: the data ends inside the stream"


def _run(blob: "Blob", end: int, c_stream: bool = False, whole: bool = True) -> "Start | str":
    """One trial over blob[0:end): a Start, or why the stream stops before anything ran.

    `whole`: blob[0:end) is all the data (a last line without newline is then read as
    pickle._Unpickler reads it); False for a head that the file goes on past.

    An opcode crossing a FRAME end makes `_pickle.c` reading a file object (no peek: BytesIO, or
    a frame longer than the read-ahead) drop the rest of the frame: that reading is tried too.
    """
    from ...context import ScanContext
    from ...policy import Policy

    ctx = ScanContext(artefact=Artefact(path="<sniff>"), policy=Policy.default())
    ctx.budgets = dataclasses.replace(ctx.budgets, max_opcodes=TRIAL_OPCODES)
    machine = _Trial(blob, 0, end, ctx=ctx, reporter=Reporter(ctx), stream=0, flavour="plain", c_stream=c_stream)
    machine.r.eof_lines = machine.r.eof_lines and whole
    try:
        out = machine.run()
    except BudgetExceeded as exc:
        return Start(True, False, reason=f"still a valid stream after the {exc.budget} trial budget")
    except Exception as exc:  # noqa: BLE001 - a VM failure must not make content pass as "not a pickle"
        return Start(True, False, reason=f"trial run failed internally ({type(exc).__name__})")
    imported = _executing_import(machine)
    if not imported and out.frame_straddle is not None and not c_stream:
        other = _run(blob, end, c_stream=True, whole=whole)
        if isinstance(other, Start) and other.executes:
            return dataclasses.replace(other, reason=f"{other.reason} ({out.frame_straddle[1]}, read as "
                                       "_pickle.c reads a file object)")
    if imported:
        return Start(True, out.error is None, reason=f"imports {imported}")
    if out.error is None:
        value = out.value if isinstance(out.value, (int, float, str, bytes)) else V.fold(out.value)
        return Start(False, True, value=value, reason="a complete stream without imports")
    reason = out.error.reason
    if reason.startswith("line longer than"):
        return Start(True, False, reason=f"a text line longer than the VM reads ({reason})")
    return _TRUNCATED if reason.startswith("truncated") else reason


def _executing_import(machine: _Trial) -> str | None:
    """The first import the loader would carry out (and run), if any.

    `find_class` imports the module before it looks the name up, and importing runs the module
    (`unittest.__main__`, `antigravity`...) whatever name follows: a well-formed module counts
    when the name is well-formed too, or when that module exists here whatever the name. Text
    that merely starts with `c` and two lines of prose (`conclusion` / `we found that`) names
    neither, so it is not taken for a payload; unregistered EXT codes count (a loader that
    registered them imports).
    """
    for module, name in machine.imports:
        if not module or not all(part.isidentifier() for part in module.split(".")):
            continue
        if all(part.isidentifier() for part in name.split(".")) or importable(module):
            return f"{module}.{name}"
    for full in machine.out.globals:
        if full.startswith("<extension>"):
            return full
    return None
