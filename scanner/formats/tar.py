"""Tar archives (ustar, GNU, pax, v7) read with the stdlib `tarfile` over a blob reader.

Nothing is extracted: `tarfile` reads headers and seeks over data, members are `SliceBlob`s at
their data offsets, dispatched back through the sniffer. Links, devices and traversal paths are
findings. Members after the end-of-archive zero blocks (which `tarfile` and `torch.load` ignore,
but `tar --ignore-zeros` extracts) are reported as hidden and analysed too. Archives laid out like
the pre-1.6 `torch.save` tar checkpoint (`sys_info`, `pickle`, `storages`, `tensors`) go to
`torch_legacy.analyse_tar`.
"""
from __future__ import annotations

import importlib
import tarfile
from typing import TYPE_CHECKING

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..findings import FormatName, Severity
from .interface import Member
from .zip import add_at, dispatch_member, link_hazard, path_hazard

if TYPE_CHECKING:
    from ..context import ScanContext

NAME = FormatName.TAR
BLOCK = 512
TORCH_LEGACY_NAMES = {"sys_info", "pickle", "storages", "tensors"}


def _checksum_ok(header: bytes) -> bool:
    """`tarfile` accepts this header block: its own `TarInfo.frombuf` decides (a pure parse of
    512 bytes: checksum, unsigned or signed, number fields cut at NUL or base-256 as `nti` reads
    them; an all-NUL block is the end of the archive)."""
    if len(header) < BLOCK:
        return False
    try:
        tarfile.TarInfo.frombuf(header[:BLOCK], "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError, OverflowError):
        return False
    return True


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """A first header block whose checksum is right: ustar/GNU/pax (`ustar` at 257) or v7, as `tarfile`."""
    return _checksum_ok(head[:BLOCK])


class TarArchive:
    """Members of a tar in `blob` (headers only read); implements `interface.Archive`."""

    def __init__(self, blob: Blob, ctx: "ScanContext") -> None:
        self.blob, self.ctx = blob, ctx
        self.entries: list[Member] = []
        self.hidden: list[Member] = []
        self.sparse: list[str] = []
        self.error: str | None = None
        end = self._read(0, self.entries)
        if end is not None and self.error is None:
            start = self._after_end_marker(end)
            if start is not None:
                self._read(start, self.hidden)

    def members(self) -> list[Member]:
        return list(self.entries)

    def open(self, member: Member) -> Blob:
        present = max(0, min(member.size, self.blob.size - member.offset))
        if present < member.size:
            add_at(self.ctx, member.name, "MS-ARC-013", name=member.name, offset=member.offset,
                   what=f"tar member declares {member.size} bytes but only {present} are in the archive")
        return self.blob.slice(member.offset, present, member.name)

    def _read(self, start: int, out: list[Member]) -> int | None:
        """Read headers from `start`; returns where the archive's data ended (None if it failed)."""
        ctx = self.ctx
        reader = self.blob.reader(start)
        try:
            tf = tarfile.open(fileobj=reader, mode="r:")
        except (tarfile.TarError, EOFError, ValueError, OSError) as exc:
            if start == 0:
                raise FormatError(f"not a readable tar archive: {exc}", 0) from None
            return None
        try:
            while True:
                ctx.check_time()
                try:
                    info = tf.next()
                except (tarfile.TarError, EOFError, ValueError, OSError, UnicodeError) as exc:
                    self.error = f"tar header after {len(out)} member(s) is corrupt or truncated: {exc}"
                    break
                if info is None:
                    break
                if len(self.entries) + len(self.hidden) >= ctx.budgets.max_members:
                    raise BudgetExceeded("max_members", ctx.budgets.max_members)
                out.append(_member(info, start))
                if info.issparse():
                    self.sparse.append(info.name)
            return start + tf.offset
        finally:
            tf.close()

    def _after_end_marker(self, end: int) -> int | None:
        """Offset of a tar header hidden after the zero blocks that end the archive, if any."""
        pos = end
        scanned = 0
        while pos + BLOCK <= self.blob.size and scanned < (1 << 20):
            block = self.blob.read_at(pos, BLOCK)
            if block.strip(b"\x00"):
                return pos if _checksum_ok(block) else None
            pos += BLOCK
            scanned += BLOCK
        return None


def _member(info: tarfile.TarInfo, base: int) -> Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                tarfile.FIFOTYPE: "FIFO"}.get(info.type, f"special entry (type {info.type!r})")
    return Member(name=info.name, size=info.size, compressed_size=info.size, offset=base + info.offset_data,
                  kind=kind, link_target=info.linkname or None)


def _hazards(ctx: "ScanContext", members: list[Member]) -> None:
    for m in members:
        why = path_hazard(m.name)
        if why:
            add_at(ctx, m.name, "MS-ARC-001", name=m.name, why=why)
        target = m.link_target or ""
        escapes = link_hazard(target)
        if m.kind == "symlink":
            add_at(ctx, m.name, "MS-ARC-002", name=m.name, link_target=target,
                   severity=Severity.HIGH if escapes else None)
        elif m.kind == "hardlink":
            add_at(ctx, m.name, "MS-ARC-003", name=m.name, link_target=target,
                   severity=Severity.HIGH if escapes else None)
        elif m.kind not in ("file", "dir"):
            add_at(ctx, m.name, "MS-ARC-004", name=m.name, what=m.kind)


def _torch_legacy(archive: TarArchive, ctx: "ScanContext") -> bool:
    """Hand a legacy torch tar checkpoint to torch_legacy; False if that is not available."""
    try:
        module = importlib.import_module(f"{__package__}.torch_legacy")
        module.analyse_tar(archive, ctx)
    except (ImportError, AttributeError, NotImplementedError):
        return False
    return True


def analyse(blob: Blob, ctx: "ScanContext") -> None:
    """List members, report hazards, analyse members (torch legacy layout or via the sniffer)."""
    archive = TarArchive(blob, ctx)
    _hazards(ctx, archive.entries + archive.hidden)
    for m in archive.hidden:
        add_at(ctx, m.name, "MS-ARC-007", offset=m.offset, name=m.name, entry_offset=m.offset,
               why="it lies after the end-of-archive marker (tarfile stops there, tar --ignore-zeros does not)")
    for name in archive.sparse:
        add_at(ctx, name, "MS-ARC-012", what=f"GNU sparse member {name!r}: analysed as stored, holes not expanded")
    if archive.error:
        ctx.add("MS-ARC-013", name=ctx.members[-1] if ctx.members else ctx.artefact.path, what=archive.error)
    layout = TORCH_LEGACY_NAMES <= {m.name for m in archive.entries}
    if not ctx.members:
        ctx.artefact.properties["tar"] = {"entries": len(archive.entries), "hidden_entries": len(archive.hidden),
                                          "torch_legacy": layout}
    legacy = layout and _torch_legacy(archive, ctx)
    if not legacy:
        for m in archive.entries:
            dispatch_member(archive, m, ctx)
    for m in archive.hidden:
        dispatch_member(archive, m, ctx)
