"""Pickles without a PROTO opcode (protocols 0 and 1, text or binary: any opcode may come first).

Recognised by `analysis.picklevm.trial`: the trial run of the VM from offset 0 imports a well-formed name
before it stops, runs on as a valid stream, or completes. Ordinary text (prose, CSV, JSON,
source code) and binary formats fail within a few bytes without importing anything, so they
are not taken for pickles; a text line or counted argument longer than the head is followed
to where the stream really goes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.picklevm import analyse_pickle
from . import pickle as binary
from ..analysis.picklevm.trial import start_of
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.PICKLE_TEXT


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """A stream without PROTO that `_pickle.c` executes (imports) or completes."""
    start = start_of(blob, head)
    return start is not None and not start.proto_led and (start.executes or start.complete)


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """The full VM over every stream."""
    result = analyse_pickle(blob, ctx, flavour="plain")
    binary.record(ctx, result, "plain", protocol=None)
