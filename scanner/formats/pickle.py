"""PROTO-led pickles (any protocol 0-5), incl. joblib files and several concatenated streams.

Recognised by content only: a PROTO opcode (0x80) with a protocol `_pickle.c` accepts (0-5);
streams without PROTO are `pickle_text`'s (both sniffs are `analysis.picklevm.trial`). joblib files are pickles
whose NumpyArrayWrapper objects are followed by raw array bytes; they are read with the joblib
flavour of the VM, chosen from the content (the wrapper's import), not the file name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.picklevm import PickleResult, analyse_pickle
from ..analysis.picklevm.trial import start_of
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.PICKLE
JOBLIB_MARK = b"joblib.numpy_pickle"
MAX_LISTED = 200


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """A PROTO opcode for protocol 0..5 at offset 0 (a broken stream is still analysed: inconclusive)."""
    start = start_of(blob, head)
    return start is not None and start.proto_led


def flavour_of(head: bytes) -> str:
    """'joblib' when the stream imports joblib's array wrapper (raw arrays follow), else 'plain'."""
    return "joblib" if JOBLIB_MARK in head else "plain"


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Run the pickle VM over every stream of the file and record a summary for the BOM."""
    flavour = flavour_of(blob.head(1 << 16))
    result = analyse_pickle(blob, ctx, flavour=flavour)
    record(ctx, result, result.flavour or flavour, protocol=protocol_of(blob))


def protocol_of(blob: "Blob") -> int | None:
    """The protocol a leading PROTO opcode declares, or None (protocol 0/1 streams have none)."""
    head = blob.head(2)
    return head[1] if len(head) == 2 and head[0] == 0x80 else None


def record(ctx: "ScanContext", result: PickleResult, flavour: str, protocol: int | None = None) -> None:
    """Put the pickle facts in the artefact properties (per member when inside a container)."""
    summary = summary_of(result, flavour, protocol)
    if ctx.member is None:
        ctx.artefact.properties["pickle"] = summary
    else:
        members = ctx.artefact.properties.setdefault("pickle_members", {})
        if len(members) < MAX_LISTED:
            members[ctx.member] = summary


def summary_of(result: PickleResult, flavour: str, protocol: int | None = None) -> dict:
    """Plain-data facts: flavour, protocol, streams, distinct imports (bounded)."""
    imports = list(dict.fromkeys(result.globals))
    return {"flavour": flavour, "protocol": protocol, "streams": len(result.streams),
            "imports": imports[:MAX_LISTED], "imports_total": len(imports),
            "persistent_ids": len(result.persistent_ids), "complete": result.complete}
