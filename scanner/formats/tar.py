"""Tar archives (ustar, GNU, pax, v7), read header by header the way the real readers read them.

Written by hand because no library reads tars the way *every* extractor does, within bounds:
- Python's `tarfile` (and so `torch.load` of a legacy tar checkpoint) stops at the first header
  whose checksum is wrong, and holds a GNU long-name or pax record whole in memory (a 1 GiB
  record is 1 GiB, or 2 with the decoded copy);
- GNU tar (`read_and` in src/list.c) skips a bad header one block at a time and goes on
  extracting whatever valid headers follow; with `--ignore-zeros` it also reads past the
  end-of-archive zero blocks;
- the two differ on data sizes too: `tarfile` skips the data of regular (and unknown) entries
  only, GNU tar skips every entry's declared size but a hard link's and a folder's (so a symlink
  or FIFO header with a size hides, from one reader, what the other extracts).
So the archive is walked twice over its headers (never its data): once as `tarfile` reads it, once
as GNU tar with `--ignore-zeros` does. The union is analysed; an entry one reader extracts and
another does not is reported (MS-ARC-007) with the reason. Long names and pax values are kept up
to `MAX_NAME` bytes and otherwise skipped, never loaded whole. Nothing is extracted: members are
`SliceBlob`s at their data offsets, dispatched back through the sniffer. Archives laid out like
the pre-1.6 `torch.save` tar checkpoint go to `torch_legacy.analyse_tar` (with tarfile's view).
"""
from __future__ import annotations

import importlib
import tarfile
from dataclasses import dataclass, field
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
MAX_NAME = 64 << 10  # bytes of a long name / pax value kept (PATH_MAX is 4096)
MAX_PAX_RECORDS = 10_000  # records read from one pax header
SCAN_CHUNK = 1 << 20  # bytes read at a time looking for the next valid header
_CHECKSUM_START = set(b" 01234567\x80\xff")  # first byte of a checksum field GNU tar can read
_CHECKSUM_END = set(b" \x0001234567")

REGULAR = {b"0", b"\x00", b"7", b"S"}  # tarfile.REGULAR_TYPES (contiguous, GNU sparse)
KNOWN = REGULAR | {b"1", b"2", b"3", b"4", b"5", b"6", b"L", b"K", b"x", b"g", b"X"}
KINDS = {b"5": "dir", b"2": "symlink", b"1": "hardlink", b"3": "character device", b"4": "block device",
         b"6": "FIFO"}


def _number(field: bytes) -> int | None:
    """An octal or base-256 header number (GNU `from_header`); None if unreadable or negative."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return None if field[0] == 0xFF else value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _checksum_ok(header: bytes) -> bool:
    """GNU `tar_checksum`: the recorded sum matches the unsigned (POSIX) or signed (old Sun) sum."""
    if len(header) < BLOCK:
        return False
    recorded = _number(header[148:156])
    if recorded is None:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:BLOCK])
    signed = unsigned - 256 * sum(1 for b in header[:148] + header[156:BLOCK] if b >= 128)
    return recorded in (unsigned, signed)


def _tarfile_accepts(header: bytes) -> bool:
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
    """A first header block that `tarfile` or GNU tar reads as a header (ustar/GNU/pax or v7)."""
    block = head[:BLOCK]
    return _tarfile_accepts(block) or (bool(block.strip(b"\x00")) and _checksum_ok(block))


@dataclass
class TarMember(Member):
    """A tar entry: the `Member` fields plus where its header is and which readers extract it."""

    header: int = 0
    views: set[str] = field(default_factory=set)  # "tarfile", "gnu"
    after_end: bool = False  # past the end-of-archive zero blocks (tar --ignore-zeros)
    after_bad: bool = False  # past a header with a bad checksum (GNU tar skips it, tarfile stops)
    sparse: bool = False
    typeflag: bytes = b"0"


@dataclass
class _Walk:
    """One reader's pass over the headers."""

    members: list[TarMember] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)  # offsets of headers with a bad checksum or size
    end: int | None = None  # offset of the end-of-archive marker, if reached
    error: str | None = None
    long_records: list[tuple[int, str, int]] = field(default_factory=list)  # (offset, kind, size)
    # pax headers past a budget: (offset, budget, limit)
    unread: list[tuple[int, str, int]] = field(default_factory=list)


class TarArchive:
    """Members of a tar in `blob` (headers only read); implements `interface.Archive`.

    `entries` is what `tarfile` extracts (the torch loader's view); `hidden` what only GNU tar
    extracts (after a bad header, or after the end marker with --ignore-zeros).
    """

    def __init__(self, blob: Blob, ctx: "ScanContext") -> None:
        self.blob, self.ctx = blob, ctx
        python = self._walk(gnu=False)
        gnu = self._walk(gnu=True)
        self.python, self.gnu = python, gnu
        by_header = {m.header: m for m in python.members}
        for m in gnu.members:
            seen = by_header.get(m.header)
            if seen is not None and (seen.offset, seen.size, seen.name) == (m.offset, m.size, m.name):
                seen.views.add("gnu")
            else:
                by_header.setdefault(m.header, m)
                if by_header[m.header] is not m:  # same header read differently: both are analysed
                    by_header[-m.header - 1] = m
        self.entries = [m for m in python.members]
        self.hidden = [m for m in by_header.values() if "tarfile" not in m.views]
        self.python_only = [m for m in python.members if "gnu" not in m.views]
        self.error = python.error or gnu.error

    def members(self) -> list[Member]:
        return list(self.entries)

    def open(self, member: Member) -> Blob:
        present = max(0, min(member.size, self.blob.size - member.offset))
        if present < member.size:
            add_at(self.ctx, member.name, "MS-ARC-013", name=member.name, offset=member.offset,
                   what=f"tar member declares {member.size} bytes but only {present} are in the archive")
        return self.blob.slice(member.offset, present, member.name)

    # --- one reader's walk ---------------------------------------------------------------------

    def _walk(self, gnu: bool) -> _Walk:
        """Headers as GNU tar --ignore-zeros (`gnu`) or Python's tarfile reads them."""
        ctx, blob = self.ctx, self.blob
        out = _Walk()
        view = "gnu" if gnu else "tarfile"
        pos: int | None = 0
        after_end = after_bad = False
        pending: dict[str, object] = {}  # long name/link and pax records for the next entry
        global_pax: dict[str, object] = {}
        steps = last = 0
        while pos is not None and pos + BLOCK <= blob.size:
            steps += 1
            if steps % 256 == 0:
                ctx.check_time()
            block = blob.read_at(pos, BLOCK)
            last = pos
            zero = not block.strip(b"\x00")
            size = None if zero else _number(block[124:136])
            valid = _checksum_ok(block) if gnu else _tarfile_accepts(block)
            if zero or not valid or size is None:
                if not gnu:
                    if zero:
                        out.end = pos
                    elif pos == 0 and not _checksum_ok(block):
                        raise FormatError("not a readable tar archive: bad checksum in the first header", 0)
                    else:
                        out.error = f"the tar header at offset {pos} is corrupt (bad checksum or size): " \
                                    "tarfile stops reading there"
                    break
                if zero:
                    out.end = pos if out.end is None else out.end
                    after_end = True
                else:
                    out.bad.append(pos)
                    after_bad = True
                pending = {}  # GNU drops a pending long name / pax header at a bad block
                pos = self._next_header(pos + BLOCK)
                continue
            typeflag = block[156:157]
            data = pos + BLOCK
            if typeflag in (b"L", b"K"):
                pending["name" if typeflag == b"L" else "link"] = self._long_text(data, size, pos, out)
                pos = data + _padded(size)
                continue
            if typeflag in (b"x", b"g", b"X"):
                records, ok = self._pax(data, size, pos, out)
                if not ok and not gnu:
                    out.error = f"the pax header at offset {pos} is malformed: tarfile stops reading there"
                    break
                (global_pax if typeflag == b"g" else pending).update(records)
                pos = data + _padded(size)
                continue
            member = self._member(block, pos, size, typeflag, {**global_pax, **pending}, gnu)
            member.views.add(view)
            member.after_end, member.after_bad = after_end, after_bad
            if len(out.members) >= ctx.budgets.max_members:
                raise BudgetExceeded("max_members", ctx.budgets.max_members)
            out.members.append(member)
            pending = {}
            if gnu:  # GNU tar 1.34: every entry's data but a hard link's and a folder's
                skip = 0 if typeflag in (b"1", b"5") else member.size
            else:
                skip = member.size if typeflag in REGULAR or typeflag not in KNOWN else 0
            pos = data + _padded(skip)
        if pos is not None and pos > blob.size and out.error is None:
            out.error = f"the archive ends inside the entry whose header is at offset {last}"
        return out

    def _next_header(self, pos: int) -> int | None:
        """GNU tar after a zero or bad block: the next block (at a block boundary) that is a valid header.

        Zero runs are skipped in C (`lstrip`); other blocks are checked only if their checksum
        field and type flag look like a header's, so skipping a large member's data stays fast.
        """
        blob = self.blob
        while pos + BLOCK <= blob.size:
            self.ctx.check_time()
            chunk = blob.read_at(pos, SCAN_CHUNK)
            rest = chunk.lstrip(b"\x00")
            skip = (len(chunk) - len(rest)) // BLOCK * BLOCK
            for i in range(skip, len(chunk) - BLOCK + 1, BLOCK):
                if chunk[i + 148] in _CHECKSUM_START and chunk[i + 155] in _CHECKSUM_END and \
                        _checksum_ok(chunk[i:i + BLOCK]):
                    return pos + i
            pos += max(BLOCK, len(chunk) // BLOCK * BLOCK)
        return None

    def _long_text(self, data: int, size: int, header: int, out: _Walk) -> str:
        """A GNU long name/link record: up to its first NUL, kept to MAX_NAME bytes (never read whole)."""
        raw = self.blob.read_at(data, min(size, MAX_NAME))
        if size > MAX_NAME:
            out.long_records.append((header, "GNU long-name record", size))
        return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")

    def _pax(self, data: int, size: int, header: int, out: _Walk) -> tuple[dict[str, object], bool]:
        """The pax records that change what is extracted (path, linkpath, size, GNU sparse), bounded;
        and whether the records were well formed."""
        if size > self.ctx.budgets.max_header_bytes:
            out.long_records.append((header, "pax extended header", size))
            out.unread.append((header, "max_header_bytes", self.ctx.budgets.max_header_bytes))
            return {}, True
        keep: dict[str, object] = {}
        pos, end, count = data, data + size, 0
        while pos < end:
            count += 1
            if count > MAX_PAX_RECORDS:
                out.long_records.append((header, "pax extended header", size))
                out.unread.append((header, "pax records", MAX_PAX_RECORDS))
                break
            head = self.blob.read_at(pos, min(32, end - pos))
            space = head.find(b" ")
            if space <= 0 or not head[:space].isdigit():
                return keep, not head.strip(b"\x00")  # tarfile: "invalid header" (zero padding is fine)
            length = int(head[:space])
            if length <= space + 1 or pos + length > end:
                return keep, False
            body_at = pos + space + 1
            key_part = self.blob.read_at(body_at, min(length - space - 1, 256))
            eq = key_part.find(b"=")
            if eq > 0:
                key = key_part[:eq].decode("utf-8", "replace")
                if key in ("path", "linkpath", "size") or key.startswith("GNU.sparse."):
                    value_len = length - space - 1 - eq - 1 - 1  # minus '=' and the trailing newline
                    value = self.blob.read_at(body_at + eq + 1, min(max(value_len, 0), MAX_NAME))
                    if value_len > MAX_NAME:
                        out.long_records.append((header, f"pax {key!r} record", value_len))
                    keep[key] = value.decode("utf-8", "surrogateescape")
            pos += length
        return keep, True

    def _member(self, block: bytes, header: int, size: int, typeflag: bytes, ext: dict[str, object],
                gnu: bool) -> TarMember:
        name = _field(block[0:100])
        prefix = _field(block[345:500])
        # tarfile joins a non-empty prefix field for every non-GNU type; GNU tar only for POSIX ustar.
        if prefix and (block[257:263] == b"ustar\x00" if gnu else typeflag not in (b"L", b"K", b"S")):
            name = prefix + "/" + name
        link = _field(block[157:257])
        name = str(ext.get("name") or ext.get("path") or ext.get("GNU.sparse.name") or name)
        link = str(ext.get("link") or ext.get("linkpath") or link)
        if isinstance(ext.get("size"), str) and str(ext["size"]).isdigit():
            size = int(str(ext["size"]))
        sparse = typeflag == b"S" or any(k.startswith("GNU.sparse.") for k in ext)
        if typeflag in REGULAR or typeflag not in KNOWN:
            kind = "file"
        else:
            kind = KINDS.get(typeflag, f"special entry (type {typeflag!r})")
        if kind == "file" and name.endswith("/") and typeflag in (b"\x00", b"0"):
            kind = "dir"  # tarfile: an old-style regular entry named like a folder is a folder
        return TarMember(name=name, size=size, compressed_size=size, offset=header + BLOCK, kind=kind,
                         link_target=link or None, header=header, sparse=sparse, typeflag=typeflag)


def _field(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _padded(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def _why_hidden(m: TarMember) -> str:
    if m.after_bad:
        return "it follows a header with a bad checksum: GNU tar skips that header and extracts it, tarfile stops"
    if m.after_end:
        return "it lies after the end-of-archive marker (tarfile stops there, tar --ignore-zeros does not)"
    return "Python's tarfile does not read it (GNU tar does)"


def _hazards(ctx: "ScanContext", members: list[TarMember]) -> None:
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
    """List members as every reader sees them, report hazards and disagreements, analyse the union."""
    archive = TarArchive(blob, ctx)
    _hazards(ctx, archive.entries + archive.hidden)
    for m in archive.hidden:
        add_at(ctx, m.name, "MS-ARC-007", offset=m.header, name=m.name, entry_offset=m.header, why=_why_hidden(m))
    for m in archive.python_only:
        add_at(ctx, m.name, "MS-ARC-017", offset=m.header, name=m.name, entry_offset=m.header,
               why="Python's tarfile (torch.load) reads it where GNU tar skips the previous entry's declared data")
    for offset in archive.gnu.bad[:20]:
        ctx.add("MS-ARC-012", offset=offset,
                what=f"the tar header at offset {offset} has a bad checksum or size: tarfile stops reading "
                     "there, GNU tar skips it and reads on")
    for header, what, size in {*archive.python.long_records, *archive.gnu.long_records}:
        ctx.add("MS-ARC-012", offset=header,
                what=f"a {what} of {size} bytes at offset {header}: tarfile and GNU tar hold it whole in "
                     f"memory; only its first {MAX_NAME} bytes were read")
    for header, budget, limit in {*archive.python.unread, *archive.gnu.unread}:
        ctx.add("MS-GEN-005", offset=header, budget=budget, limit=limit)  # what it would change is unknown
    for m in archive.entries + archive.hidden:
        if m.sparse:
            add_at(ctx, m.name, "MS-ARC-012",
                   what=f"GNU sparse member {m.name!r}: analysed as stored, holes not expanded")
    if archive.error and not (archive.hidden and archive.python.error == archive.error):
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
