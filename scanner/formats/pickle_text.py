"""Protocol 0/1 pickles: no PROTO opcode, so any opcode may come first.

Text pickles are recognised by a bounded, strict trial run of the VM over the head: it must
reach STOP (or run out of head after a real number of opcodes) without any error CPython would
raise, or fail only after importing a well-formed global (a payload before a broken tail: the
loader has already imported and called). Ordinary text (prose, CSV, JSON, source code) fails
within a few bytes, so it is not misidentified. Tried last in the sniffing order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..blob import BytesBlob
from ..findings import Artefact
from ..analysis.picklevm import analyse_pickle
from ..analysis.picklevm.machine import Machine
from ..analysis.picklevm.opcodes import OPCODES
from ..analysis.picklevm.report import Reporter
from . import pickle as binary

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = "pickle_text"
TRIAL_BYTES = 16 << 10
MIN_OPCODES_TRUNCATED = 8  # a head cut mid-stream must still show this many valid opcodes


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """Strict trial parse of the head as a protocol 0/1 pickle."""
    if not head or head[0] not in OPCODES or head[0] == 0x80:
        return False
    return trial(head[:TRIAL_BYTES], complete=blob.size <= TRIAL_BYTES)


def trial(data: bytes, complete: bool) -> bool:
    """True if `data` parses as the start of a pickle (a full one when `complete`)."""
    from ..context import ScanContext
    from ..policy import Policy

    ctx = ScanContext(artefact=Artefact(path="<sniff>"), policy=Policy.default())
    machine = Machine(BytesBlob(data), 0, len(data), ctx=ctx, reporter=Reporter(ctx), stream=0, flavour="plain")
    try:
        out = machine.run()
    except Exception:  # noqa: BLE001 - a budget or anything odd: not recognised as a text pickle
        return False
    if out.error is None:
        return True
    if not complete and out.error.reason.startswith("truncated") and out.opcodes >= MIN_OPCODES_TRUNCATED:
        return True
    # A broken tail after an import (nullifAI in text form): the loader already imported, and
    # maybe called, before the parse failed. Well-formed dotted names only, so prose that happens
    # to start with "c" and two lines is not taken for a pickle.
    return any(all(part.isidentifier() for part in full.split(".")) for full in out.globals)


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """The full VM over every stream."""
    result = analyse_pickle(blob, ctx, flavour="plain")
    binary.record(ctx, result, "plain", protocol=None)
