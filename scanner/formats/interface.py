"""The one interface every format module implements.

A format module is a Python module in this package with:

    NAME: FormatName                            # e.g. FormatName.PICKLE, FormatName.ZIP
    def sniff(head: bytes, blob: Blob, name: str) -> bool
        # True if this module recognises the content. `head` is the first HEAD_SIZE bytes;
        # `blob` allows more positioned reads (e.g. a zip's end record). `name` is the file or
        # member name: a label only, never the reason to accept binary content (text formats
        # such as Python source may use it, since their loaders choose by name too; so may a
        # sniff that adds a view a loader chosen by name takes, e.g. zipfile behind prepended data).
    def fallback(blob: Blob, name: str) -> bool  # optional
        # For content no sniff recognised: True if a loader directed at it would still read it
        # this way (dispatch then analyses it with this module instead of inventorying it).
    def analyse(blob: Blob, ctx: ScanContext) -> None
        # Report findings through ctx.add(...); descend into members with ctx.descend(...).
        # Raise errors.FormatError for malformed input (-> inconclusive with the reason) and
        # let errors.BudgetExceeded propagate (-> inconclusive). Never import, unpickle,
        # unmarshal, render or execute artefact content.

Containers that yield members implement `Archive` below so that flavour modules (torch zip,
keras, npz) can read the members without knowing the container syntax.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

HEAD_SIZE = 64 * 1024


class FormatModule(Protocol):
    NAME: FormatName

    def sniff(self, head: bytes, blob: "Blob", name: str) -> bool: ...

    def analyse(self, blob: "Blob", ctx: "ScanContext") -> None: ...


@dataclass
class Member:
    """One entry of an archive."""

    name: str
    size: int  # uncompressed size as declared
    compressed_size: int = 0
    offset: int = 0  # where its data (or local header) starts in the archive
    kind: str = "file"  # file | dir | symlink | hardlink | other
    link_target: str | None = None
    encrypted: bool = False
    method: int | str | None = None  # compression method


class Archive(Protocol):
    """Members of a container, readable as blobs (decompressed under ctx budgets)."""

    def members(self) -> list[Member]: ...

    def open(self, member: Member) -> "Blob": ...
