"""Plain text and JSON data (tokenizers, vocabularies, configs no other module claims): inventoried.

Tried last. Nothing executes such files, so they are hashed and inventoried without a finding,
unless their name says a loader opens them (`model.bin` holding text): those stay unrecognised
and inconclusive (MS-GEN-002), because the loader, not the content, decides what happens.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import FormatName, Status
from ..suffixes import loader_hint

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.TEXT
SAMPLE = 8192


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """UTF-8 text without NUL bytes (the head's last character may be cut), not named for a loader."""
    sample = head[:SAMPLE]
    if not sample or b"\x00" in sample or loader_hint(name):
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3 or blob.size <= SAMPLE:
            return False
    return True


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    kind = FormatName.JSON if _looks_like_json(blob.head(SAMPLE)) else FormatName.TEXT
    if not ctx.members:
        ctx.artefact.status = Status.INVENTORIED
        ctx.artefact.format = kind
        ctx.artefact.properties["text"] = {"kind": kind.value}


def _looks_like_json(head: bytes) -> bool:
    """An object, or an array whose first element starts like a JSON value ("[PAD]" is not one)."""
    text = head.lstrip()
    if text[:1] == b"{":
        return True
    if text[:1] != b"[":
        return False
    rest = text[1:].lstrip()[:1]
    return not rest or rest in b'{["-0123456789tfn]'
