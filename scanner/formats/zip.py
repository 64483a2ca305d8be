"""Zip archives read the way PyTorch's miniz reader (and Python's `zipfile`) read them.

Loader behaviour followed (PyTorch `caffe2/serialize/inline_container.cc` over miniz):
- members are found through the central directory; the data offset comes from the *local*
  header's name and extra lengths, whatever name the local header holds (CVE-2025-1944);
- CRC-32 errors are ignored (PyTorch builds miniz without reader CRC checks, CVE-2025-10156) and
  unusual flag bits do not stop it (CVE-2025-1945): such members are analysed, with info findings;
- ZIP64 end records and extra fields; data descriptors (torch.save sets flag bit 3).
Besides, the local headers are walked from the start so that entries the central directory hides
(reachable by streaming readers) are found and analysed too.

Stored members are `SliceBlob`s over the archive (no copy); deflate, bzip2, LZMA and zstd members
are decompressed streaming into spools under the decompression budgets. Every member goes back
through the sniffer unless a *flavour* (torch zip, Keras) claims the archive by its member names.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import lzma
import stat
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .. import datafiles
from ..blob import Blob, SpoolBlob
from ..errors import BudgetExceeded, FormatError
from ..findings import FormatName, Severity
from .compressed import Decoded, decompress_stream
from .interface import Member

if TYPE_CHECKING:
    from ..context import ScanContext

NAME = FormatName.ZIP

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_Z64_LOCATOR = b"PK\x06\x07"
SIG_Z64_EOCD = b"PK\x06\x06"
SIG_DESCRIPTOR = b"PK\x07\x08"
_DIRECTORY_SIGS = (SIG_CENTRAL, SIG_EOCD, SIG_Z64_EOCD, SIG_Z64_LOCATOR)

_EOCD = struct.Struct("<4s4H2LH")
_Z64_LOCATOR = struct.Struct("<4sLQL")
_Z64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_LOCAL = struct.Struct("<4s2B4HL2L2H")

FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800
# Bits every reader understands: encryption (handled apart), compression options, descriptor, utf-8.
_USUAL_FLAGS = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0040 | 0x0800

METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma", 93: "zstd"}
UNSUPPORTED_METHODS = {1: "shrink", 6: "implode", 9: "deflate64", 98: "ppmd", 99: "aes-encrypted"}
CRC_CHECK_MAX = 16 << 20  # stored members up to this size get their CRC verified
GAP_SCAN_STEP = 1 << 20
FLAVOURS = ("torch_zip", "keras")  # modules of this package with matches(names), analyse_archive


@dataclass
class ZipMember(Member):
    """A zip entry: the `Member` fields plus what the zip headers say."""

    local_offset: int = 0
    flags: int = 0
    crc: int = 0
    create_system: int = 0
    external_attr: int = 0
    hidden: bool = False  # found only by walking local headers
    zip64: bool = False
    data_end: int = 0  # end of the compressed data (before any data descriptor)
    readable: bool = True  # False if its local header is missing (no loader can read it)


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """A local header or empty-archive record at offset 0 (what `torch.load`/`np.load` check), or,
    for names a loader opens with Python's `zipfile` (keras, skops, pandas...), an archive that
    `zipfile` finds behind prepended bytes. Content nothing else recognises is tried the same way
    (`fallback`)."""
    if head.startswith((SIG_LOCAL, SIG_EOCD, SIG_DESCRIPTOR + SIG_LOCAL)):
        return True
    return name.lower().endswith(zipfile_suffixes()) and zipfile_opens(blob)


def fallback(blob: Blob, name: str) -> bool:
    """Unrecognised content under any name: a loader told to use `zipfile` on it would open it."""
    return zipfile_opens(blob)


@functools.lru_cache(maxsize=1)
def zipfile_suffixes() -> tuple[str, ...]:
    """Names whose loaders read zips with Python's zipfile (data/loader_extensions.toml [zipfile])."""
    return tuple(datafiles.load("loader_extensions.toml")["zipfile"])


def zipfile_opens(blob: Blob) -> bool:
    """`zipfile._EndRecData` finds an end record in the last 64 KiB + 22 bytes (the last one) and
    its central directory starts where the record says, possibly shifted by prepended data, as
    `_RealGetContents` reads it. One positioned read of the tail, one of 4 bytes."""
    size = blob.size
    if size < _EOCD.size:
        return False
    tail_len = min(size, _EOCD.size + 0xFFFF)
    tail = blob.read_at(size - tail_len, tail_len)
    i = tail.rfind(SIG_EOCD)
    if i < 0 or i + _EOCD.size > len(tail):
        return False
    _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack(tail[i:i + _EOCD.size])
    eocd_at = size - tail_len + i
    if entries == 0:
        return False  # an empty archive: nothing any reader could load from it
    if cd_offset == 0xFFFFFFFF or entries == 0xFFFF:  # ZIP64: its locator sits right before
        return eocd_at >= _Z64_LOCATOR.size and blob.read_at(eocd_at - _Z64_LOCATOR.size, 4) == SIG_Z64_LOCATOR
    concat = eocd_at - cd_size - cd_offset
    return concat >= 0 and blob.read_at(cd_offset + concat, 4) == SIG_CENTRAL


# --- findings at a member's location ----------------------------------------------------------

def add_at(ctx: "ScanContext", member: str, rule_id: str, **kw: Any) -> None:
    """Add a finding located at `member` of the current container (even outside `ctx.enter`)."""
    if ctx.members and ctx.members[-1] == member:
        ctx.add(rule_id, **kw)
        return
    ctx.members.append(member)
    try:
        ctx.add(rule_id, **kw)
    finally:
        ctx.members.pop()


def path_hazard(name: str) -> str | None:
    """Why a member path escapes the extraction folder, or None."""
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        return "is an absolute path"
    if len(norm) >= 2 and norm[1] == ":" and norm[0].isalpha():
        return "starts with a drive letter"
    if ".." in norm.split("/"):
        return "contains a '..' component"
    return None


def link_hazard(target: str) -> bool:
    """A link target that leaves the archive's folder."""
    return path_hazard(target) is not None


def dispatch_member(archive: Any, member: Member, ctx: "ScanContext") -> None:
    """Open one member and send it back through the sniffer; per-member budget problems are findings."""
    if member.kind != "file":
        return
    if member.encrypted:
        add_at(ctx, member.name, "MS-ARC-005", name=member.name, how=_how_encrypted(member))
        return
    with opened_member(archive, member, ctx) as blob:
        if blob is not None:
            ctx.descend(blob, member.name)


@contextlib.contextmanager
def opened_member(archive: Any, member: Member, ctx: "ScanContext") -> Iterator[Blob | None]:
    """The member's bytes (None if unreadable), closed afterwards; a depth budget that runs out
    inside it is a finding at that member, not the end of the archive's analysis."""
    blob = archive.open(member)
    try:
        yield blob
    except BudgetExceeded as exc:
        if exc.budget not in ("max_container_depth", "max_nested_depth"):
            raise
        add_at(ctx, member.name, "MS-GEN-005", budget=exc.budget, limit=exc.limit)
    finally:
        if blob is not None:
            blob.close()


def _how_encrypted(member: Member) -> str:
    if isinstance(member, ZipMember) and member.flags & FLAG_STRONG_ENCRYPTION:
        return "zip strong encryption"
    if isinstance(member, ZipMember) and member.method == 99:
        return "WinZip AES"
    return "zip traditional encryption" if isinstance(member, ZipMember) else "encrypted"


# --- the archive ------------------------------------------------------------------------------

class ZipArchive:
    """Central directory + local-header walk of a zip in `blob`; implements `interface.Archive`."""

    def __init__(self, blob: Blob, ctx: "ScanContext") -> None:
        self.blob, self.ctx = blob, ctx
        self.entries: list[ZipMember] = []
        self.hidden: list[ZipMember] = []
        self.cd_offset: int | None = None
        self.cd_end: int = 0
        self.declared_entries = 0
        self.zip64 = False
        self.comment_length = 0
        self.gaps: list[tuple[int, int]] = []
        self.unreached: list[ZipMember] = []
        self._spools: list[SpoolBlob] = []
        self._parse()

    # Archive protocol
    def members(self) -> list[ZipMember]:
        """Entries of the central directory, in directory order (what loaders see)."""
        return list(self.entries)

    def open(self, member: Member) -> Blob | None:
        """The member's bytes: a slice for stored data, a spool for compressed data (None: unreadable).

        Truncation, decompression caps and CRC errors become findings at the member's location.
        """
        assert isinstance(member, ZipMember)
        ctx, name = self.ctx, member.name
        if not member.readable:
            return None
        if member.method == 0:
            present = max(0, min(member.size, self.blob.size - member.offset))
            if present < member.size:
                add_at(ctx, name, "MS-ARC-013", name=name, offset=member.offset,
                       what=f"stored member declares {member.size} bytes but only {present} are in the archive")
            out = self.blob.slice(member.offset, present, name)
            if present <= CRC_CHECK_MAX:
                self.check_crc(member, out)
            return out
        decoded = self._decode(member)
        if decoded is None:
            return None
        self._spools.append(decoded.blob)
        return decoded.blob

    def check_crc(self, member: ZipMember, data: Blob) -> None:
        """Info finding if the member's CRC-32 differs from the directory's (loaders ignore it)."""
        crc = 0
        for chunk in data.chunks():
            crc = zlib.crc32(chunk, crc)
        self._crc_finding(member, crc)

    def _crc_finding(self, member: ZipMember, crc: int) -> None:
        if crc != member.crc and not member.flags & FLAG_ENCRYPTED:
            add_at(self.ctx, member.name, "MS-ARC-010", name=member.name, actual=f"{crc:08x}",
                   declared=f"{member.crc:08x}")

    def close(self) -> None:
        for spool in self._spools:
            spool.close()
        self._spools.clear()

    def _decode(self, member: ZipMember) -> Decoded | None:
        ctx, name = self.ctx, member.name
        method = member.method
        start, end = member.offset, member.offset + member.compressed_size
        if end > self.blob.size:
            add_at(ctx, name, "MS-ARC-013", name=name, offset=member.offset,
                   what=f"compressed data declares {member.compressed_size} bytes, the archive ends "
                        f"{end - self.blob.size} bytes earlier")
            end = self.blob.size
        factory = None
        kind = {8: "deflate", 12: "bzip2", 93: "zstd"}.get(method)  # type: ignore[arg-type]
        if method == 14:
            kind, factory, start = self._lzma_factory(member, start, end)
            if factory is None:
                return None
        if kind is None:
            what = UNSUPPORTED_METHODS.get(method, f"compression method {method}")  # type: ignore[arg-type]
            add_at(ctx, name, "MS-ARC-014", name=name, what=f"zip {what}")
            return None
        try:
            res = decompress_stream(self.blob, start, end, kind, ctx, name, factory=factory, limit=member.size)
        except ImportError:
            add_at(ctx, name, "MS-ARC-015", what=f"zip {kind}", package="zstandard")
            return None
        if res.cap:
            add_at(ctx, name, "MS-ARC-006", name=name, cap=res.cap, limit=res.limit, produced=res.blob.size,
                   consumed=res.blob.compressed_in)
            if res.cap == "max_decompressed":
                self._spools.append(res.blob)
                raise BudgetExceeded(res.cap, res.limit)
        elif res.error:
            add_at(ctx, name, "MS-ARC-013", name=name, what=res.error)
        else:
            if res.overflow:
                add_at(ctx, name, "MS-ARC-012",
                       what=f"member {name!r} decompresses to more than its declared {member.size} bytes; "
                            "readers stop at the declared size (analysed up to it)")
            elif res.blob.size < member.size:
                add_at(ctx, name, "MS-ARC-012",
                       what=f"member {name!r} decompresses to {res.blob.size} bytes, not the declared {member.size}")
            self._crc_finding(member, res.crc)
        return res

    def _lzma_factory(self, member: ZipMember, start: int, end: int) -> tuple[str | None, Any, int]:
        # Zip LZMA: 2-byte version, 2-byte properties size, properties, then a raw LZMA1 stream.
        hdr = self.blob.read_at(start, 4)
        if len(hdr) < 4:
            add_at(self.ctx, member.name, "MS-ARC-013", name=member.name, what="truncated zip LZMA header")
            return None, None, start
        psize = int.from_bytes(hdr[2:4], "little")
        props = self.blob.read_at(start + 4, psize)
        try:
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        except (lzma.LZMAError, ValueError) as exc:
            add_at(self.ctx, member.name, "MS-ARC-013", name=member.name, what=f"bad zip LZMA properties: {exc}")
            return None, None, start
        return "lzma", (lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])), start + 4 + psize

    # --- parsing ---

    def _parse(self) -> None:
        eocd = self._find_eocd()
        if eocd is None:
            self.ctx.add("MS-ARC-013", name=self.blob.name or self.ctx.artefact.path,
                         what="no end-of-central-directory record (truncated zip): PyTorch and zipfile refuse it, "
                              "streaming readers may not; the entries found by walking local headers were analysed")
        else:
            self._read_central(*eocd)
        self._walk_locals()
        if eocd is None:  # no directory to hide from: what the walk found is the archive
            for m in self.hidden:
                m.hidden = False
            self.entries, self.hidden = self.hidden, []
        self._structure_findings()

    def _find_eocd(self) -> tuple[int, int, int, int] | None:
        """(eocd offset, cd offset, cd size, entries) from the last EOCD record, ZIP64 aware."""
        size = self.blob.size
        tail_len = min(size, _EOCD.size + 0xFFFF)
        tail = self.blob.read_at(size - tail_len, tail_len)
        i = tail.rfind(SIG_EOCD)
        while i >= 0 and i + _EOCD.size > len(tail):
            i = tail.rfind(SIG_EOCD, 0, i)
        if i < 0:
            return None
        eocd_at = size - tail_len + i
        _, disk, _, _, entries, cd_size, cd_offset, comment = _EOCD.unpack(tail[i:i + _EOCD.size])
        self.comment_length = comment
        end_records = eocd_at
        loc = self.blob.read_at(eocd_at - _Z64_LOCATOR.size, _Z64_LOCATOR.size) if eocd_at >= _Z64_LOCATOR.size else b""
        if len(loc) == _Z64_LOCATOR.size and loc.startswith(SIG_Z64_LOCATOR):
            _, _, z64_at, _ = _Z64_LOCATOR.unpack(loc)
            rec = self.blob.read_at(z64_at, _Z64_EOCD.size)
            if len(rec) == _Z64_EOCD.size and rec.startswith(SIG_Z64_EOCD):
                fields = _Z64_EOCD.unpack(rec)
                entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
                self.zip64 = True
                end_records = z64_at
            else:
                self.ctx.add("MS-ARC-012", offset=eocd_at,
                             what="ZIP64 locator points to no ZIP64 end record; the 32-bit end record was used")
        if disk:
            self.ctx.add("MS-ARC-012", offset=eocd_at, what=f"multi-disk (spanned) zip, disk {disk}")
        # Python's zipfile tolerates data prepended to the archive by shifting every offset.
        concat = end_records - cd_size - cd_offset
        if concat and self.blob.read_at(cd_offset, 4) != SIG_CENTRAL and \
                0 < cd_offset + concat < size and self.blob.read_at(cd_offset + concat, 4) == SIG_CENTRAL:
            self.ctx.add("MS-ARC-012", offset=cd_offset + concat,
                         what=f"central directory offsets are shifted by {concat} bytes (data prepended to the zip); "
                              "zipfile accepts it, PyTorch does not")
            self._shift = concat
        else:
            self._shift = 0
        return eocd_at, cd_offset + self._shift, cd_size, entries

    def _read_central(self, eocd_at: int, cd_offset: int, cd_size: int, declared: int) -> None:
        ctx = self.ctx
        self.declared_entries = declared
        if declared > ctx.budgets.max_members:
            raise BudgetExceeded("max_members", ctx.budgets.max_members)
        if cd_offset > self.blob.size:
            raise FormatError(f"central directory offset {cd_offset} is past the end of the file", eocd_at)
        cd_size = min(cd_size, max(0, eocd_at - cd_offset)) if cd_offset <= eocd_at else cd_size
        if cd_size > ctx.budgets.max_header_bytes:
            raise BudgetExceeded("max_header_bytes", ctx.budgets.max_header_bytes)
        data = self.blob.read_at(cd_offset, cd_size)
        self.cd_offset, self.cd_end = cd_offset, cd_offset + len(data)
        pos = 0
        while pos + _CENTRAL.size <= len(data) and data[pos:pos + 4] == SIG_CENTRAL:
            if len(self.entries) >= ctx.budgets.max_members:
                raise BudgetExceeded("max_members", ctx.budgets.max_members)
            (_, _, create_system, _, _, flags, method, _, _, crc, csize, usize, n_name, n_extra, n_comment,
             _, _, ext_attr, local) = _CENTRAL.unpack_from(data, pos)
            raw_name = data[pos + 46:pos + 46 + n_name]
            extra = data[pos + 46 + n_name:pos + 46 + n_name + n_extra]
            pos += 46 + n_name + n_extra + n_comment
            usize, csize, local, z64 = _zip64_extra(extra, usize, csize, local)
            name = _decode_name(raw_name, flags)
            m = ZipMember(name=name, size=usize, compressed_size=csize, offset=0, method=method,
                          local_offset=local + self._shift, flags=flags, crc=crc, create_system=create_system,
                          external_attr=ext_attr, zip64=z64,
                          encrypted=bool(flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) or method == 99)
            self._classify(m)
            self._read_local(m)
            self.entries.append(m)
        if len(self.entries) != declared:
            ctx.add("MS-ARC-012", offset=eocd_at,
                    what=f"the end record declares {declared} entries, the central directory holds {len(self.entries)}")

    def _classify(self, m: ZipMember) -> None:
        mode = m.external_attr >> 16
        if m.create_system == 3 and stat.S_ISLNK(mode):
            m.kind = "symlink"
        elif m.name.endswith("/") or (m.create_system == 3 and stat.S_ISDIR(mode)) or m.external_attr & 0x10:
            m.kind = "dir" if m.size == 0 else "file"

    def _read_local(self, m: ZipMember) -> None:
        """Data offset from the local header's own lengths (as miniz does); report disagreements."""
        hdr = self.blob.read_at(m.local_offset, _LOCAL.size)
        if len(hdr) < _LOCAL.size or not hdr.startswith(SIG_LOCAL):
            m.readable = False
            add_at(self.ctx, m.name, "MS-ARC-013", name=m.name, offset=m.local_offset,
                   what=f"no local header at offset {m.local_offset}: loaders cannot read this member")
            return
        _, _, _, lflags, lmethod, _, _, lcrc, lcsize, lusize, n_name, n_extra = _LOCAL.unpack(hdr)
        m.offset = m.local_offset + _LOCAL.size + n_name + n_extra
        m.data_end = m.offset + m.compressed_size
        lname = _decode_name(self.blob.read_at(m.local_offset + _LOCAL.size, n_name), lflags)
        if lname != m.name:
            add_at(self.ctx, m.name, "MS-ARC-009", name=m.name, local=lname, field="name")
            hazard = path_hazard(lname)
            if hazard:
                add_at(self.ctx, m.name, "MS-ARC-001", name=lname, why=hazard)
        if lmethod != m.method:
            add_at(self.ctx, m.name, "MS-ARC-009", name=m.name, local=lmethod, field="compression method")
        if (lflags ^ m.flags) & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_DESCRIPTOR):
            add_at(self.ctx, m.name, "MS-ARC-009", name=m.name, local=f"0x{lflags:04x}", field="flag bits")
        odd = (m.flags | lflags) & ~_USUAL_FLAGS & 0xFFFF
        if odd:
            add_at(self.ctx, m.name, "MS-ARC-011", name=m.name, flags=f"0x{odd:04x}")

    def _walk_locals(self) -> None:
        """Walk local headers from the start as a streaming reader does, whatever the directory says.

        Each local header's own sizes give the next one (the directory's sizes only where the local
        header defers them to a data descriptor); the walk ends at the first directory or end record
        signature, and bytes between entries are searched for further local headers. Entries the
        directory does not list are `hidden`; directory entries the walk never reaches (inside another
        entry's data, or out of the stream) are `unreached`.
        """
        known = {m.local_offset: m for m in self.entries if m.readable}
        offsets = sorted(known)
        limit = self.blob.size
        pos = 4 if self.blob.read_at(0, 4) == SIG_DESCRIPTOR else 0  # spanning marker
        steps = 0
        reached: set[int] = set()
        while pos < limit:
            self.ctx.check_time()
            steps += 1
            if steps > self.ctx.budgets.max_members + len(known) + 1:
                raise BudgetExceeded("max_members", self.ctx.budgets.max_members)
            sig = self.blob.read_at(pos, 4)
            if sig in _DIRECTORY_SIGS:
                break  # streaming readers stop at the central directory
            entry = self._hidden_at(pos, known, offsets, limit, search=pos not in known) \
                if sig == SIG_LOCAL else None
            if entry is None:
                nxt = self._gap(pos, offsets, limit)
            else:
                listed = known.get(pos)
                if listed is not None:
                    reached.add(pos)
                    self._compare(listed, entry)
                    if listed.flags & FLAG_DESCRIPTOR and not entry.compressed_size:
                        entry = listed  # the sizes are in the descriptor: take the directory's
                else:
                    self.hidden.append(entry)
                nxt = self._skip_descriptor(entry, known, limit)
            if nxt <= pos:
                break
            pos = nxt
        self.unreached = [m for off, m in known.items() if off not in reached]

    def _compare(self, listed: ZipMember, local: ZipMember) -> None:
        """Local header sizes that disagree with the directory (a streaming reader reads others)."""
        if local.flags & FLAG_DESCRIPTOR and not local.compressed_size:
            return
        if local.compressed_size != listed.compressed_size:
            add_at(self.ctx, listed.name, "MS-ARC-009", name=listed.name, local=local.compressed_size,
                   field="compressed size")
        elif local.size != listed.size:
            add_at(self.ctx, listed.name, "MS-ARC-009", name=listed.name, local=local.size, field="size")

    def _next_known(self, pos: int, offsets: list[int], limit: int) -> int:
        for off in offsets:
            if off > pos:
                return min(off, limit)
        return limit

    def _gap(self, pos: int, offsets: list[int], limit: int) -> int:
        """Bytes no entry covers: find the next local header, directory record or known entry."""
        end = self._next_known(pos, offsets, limit)
        found = self._search(pos + 1, end, (SIG_LOCAL, *_DIRECTORY_SIGS))
        stop = found if found is not None else end
        self.gaps.append((pos, stop))
        return stop

    def _search(self, start: int, end: int, sigs: tuple[bytes, ...]) -> int | None:
        """The first offset in [start, end) where one of the 4-byte signatures `sigs` begins."""
        pos = start
        while pos < end:
            self.ctx.check_time()
            chunk = self.blob.read_at(pos, min(GAP_SCAN_STEP + 3, end - pos))
            if not chunk:
                return None
            hits = [i for i in (chunk.find(sig) for sig in sigs) if i >= 0 and pos + i < end]
            if hits:
                return pos + min(hits)
            pos += GAP_SCAN_STEP
        return None

    def _hidden_at(self, pos: int, known: dict[int, ZipMember], offsets: list[int], limit: int,
                   search: bool = True) -> ZipMember | None:
        hdr = self.blob.read_at(pos, _LOCAL.size)
        if len(hdr) < _LOCAL.size:
            return None
        _, _, _, flags, method, _, _, crc, csize, usize, n_name, n_extra = _LOCAL.unpack(hdr)
        extra = self.blob.read_at(pos + _LOCAL.size + n_name, n_extra)
        usize, csize, _, z64 = _zip64_extra(extra, usize, csize, 0)
        name = _decode_name(self.blob.read_at(pos + _LOCAL.size, n_name), flags)
        data = pos + _LOCAL.size + n_name + n_extra
        if data > limit:
            return None
        if flags & FLAG_DESCRIPTOR and csize == 0 and search:
            # Size only in the trailing descriptor: the entry runs to the next header.
            nxt = self._search(data, limit, (SIG_LOCAL, SIG_CENTRAL))
            end = nxt if nxt is not None else limit
            csize = end - data
            if method == 0:
                usize = csize
        m = ZipMember(name=name, size=usize, compressed_size=csize, offset=data, method=method, local_offset=pos,
                      flags=flags, crc=crc, hidden=True, zip64=z64, data_end=min(data + csize, limit),
                      encrypted=bool(flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) or method == 99)
        if name.endswith("/") and usize == 0:
            m.kind = "dir"
        return m

    def _skip_descriptor(self, m: ZipMember, known: dict[int, ZipMember], limit: int) -> int:
        end = m.data_end
        if not m.flags & FLAG_DESCRIPTOR:
            return end
        sizes = (16, 24, 12, 20) if self.blob.read_at(end, 4) == SIG_DESCRIPTOR else (12, 20)
        for n in sizes:
            p = end + n
            if p >= limit or p in known or self.blob.read_at(p, 4) in (SIG_LOCAL, SIG_CENTRAL):
                return p
        return end + sizes[0]

    def _structure_findings(self) -> None:
        ctx = self.ctx
        for m in self.hidden:
            add_at(ctx, m.name, "MS-ARC-007", offset=m.local_offset, name=m.name, entry_offset=m.local_offset,
                   why="the central directory does not list it")
        for m in self.unreached:
            add_at(ctx, m.name, "MS-ARC-017", offset=m.local_offset, name=m.name, entry_offset=m.local_offset,
                   why="the central directory lists it, but a reader walking the local headers from the start "
                       "never reaches it (it lies inside another entry's data or outside the entry stream)")
        for start, stop in self.gaps:
            if stop > start and self.blob.read_at(start, min(stop - start, 4096)).strip(b"\x00"):
                ctx.add("MS-ARC-012", offset=start,
                        what=f"{stop - start} byte(s) at offset {start} belong to no zip entry")
        counts = Counter(m.name for m in self.entries + self.hidden)
        for name, n in counts.items():
            if n > 1:
                add_at(ctx, name, "MS-ARC-008", name=name, count=n)
        ordered = sorted((m for m in self.entries if m.readable), key=lambda m: m.local_offset)
        overlaps = sum(1 for a, b in zip(ordered, ordered[1:]) if b.local_offset < a.data_end)
        if overlaps:
            ctx.add("MS-ARC-012", what=f"{overlaps} zip entries overlap other entries' data "
                                       "(the overlapping-entry zip bomb technique)")
        for m in self.entries + self.hidden:
            hazard = path_hazard(m.name)
            if hazard:
                add_at(ctx, m.name, "MS-ARC-001", name=m.name, why=hazard)
            if m.kind == "symlink":
                target = self._link_target(m)
                add_at(ctx, m.name, "MS-ARC-002", name=m.name, link_target=target,
                       severity=Severity.HIGH if link_hazard(target) else None)

    def _link_target(self, m: ZipMember) -> str:
        if m.method == 0 and m.readable:
            return self.blob.read_at(m.offset, min(m.size, 1024)).decode("utf-8", "replace")
        return "(compressed link target)"


def _decode_name(raw: bytes, flags: int) -> str:
    # Python's zipfile: utf-8 when flag bit 11 is set, else cp437; PyTorch compares raw bytes.
    return raw.decode("utf-8", "replace") if flags & FLAG_UTF8 else raw.decode("cp437")


def _zip64_extra(extra: bytes, usize: int, csize: int, local: int) -> tuple[int, int, int, bool]:
    """Apply a ZIP64 extra field (0x0001) to the saturated 32-bit fields."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + n]
        pos += 4 + n
        if tag != 0x0001:
            continue
        values = [int.from_bytes(body[i:i + 8], "little") for i in range(0, len(body) - 7, 8)]
        it = iter(values)
        try:
            if usize == 0xFFFFFFFF:
                usize = next(it)
            if csize == 0xFFFFFFFF:
                csize = next(it)
            if local == 0xFFFFFFFF:
                local = next(it)
        except StopIteration:
            pass
        return usize, csize, local, True
    return usize, csize, local, False


# --- flavours and analysis --------------------------------------------------------------------

def _flavour_modules() -> Iterable[ModuleType]:
    for name in FLAVOURS:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ImportError:
            continue
        if hasattr(module, "matches") and hasattr(module, "analyse_archive"):
            yield module


def pick_flavour(names: list[str]) -> ModuleType | None:
    """The first flavour module whose `matches(names)` is true."""
    for module in _flavour_modules():
        try:
            if module.matches(names):
                return module
        except NotImplementedError:
            continue
    return None


def analyse(blob: Blob, ctx: "ScanContext") -> None:
    """Parse the zip, report its hazards, then hand it to a flavour or dispatch every member."""
    archive = ZipArchive(blob, ctx)
    try:
        names = [m.name for m in archive.entries]
        flavour = pick_flavour(names)
        handled = None
        if flavour is not None:
            try:
                flavour.analyse_archive(archive, ctx)
                handled = getattr(flavour, "FLAVOUR", flavour.__name__.rsplit(".", 1)[-1])
            except NotImplementedError:
                handled = None
        if handled is None:
            for m in archive.entries:
                dispatch_member(archive, m, ctx)
        for m in archive.hidden:
            dispatch_member(archive, m, ctx)
        if not ctx.members:
            methods = Counter(METHODS.get(m.method, str(m.method)) for m in archive.entries)  # type: ignore[arg-type]
            ctx.artefact.properties["zip"] = {
                "entries": len(archive.entries), "hidden_entries": len(archive.hidden), "zip64": archive.zip64,
                "methods": dict(methods), "flavour": handled, "encrypted_entries":
                    sum(m.encrypted for m in archive.entries),
            }
    finally:
        archive.close()
