"""Compression wrappers (gzip, bzip2, xz, raw LZMA "alone", zlib, zstd, lz4 frame, joblib's `ZF`).

The stream is decompressed chunk by chunk into a `SpoolBlob` under the decompression budgets and
the result goes back through the sniffer (`ctx.descend`): the content decides what it is. This
module also holds `decompress_stream`, the bounded streaming decoder the zip and 7z readers use.

Loader behaviour followed: gzip/bzip2/xz/raw LZMA read concatenated streams (as the `gzip`, `bz2`
and `lzma` modules do, hence joblib; `lzma` decodes .xz and raw LZMA streams in any mix); zero
padding after a gzip member is skipped like `gzip` does (another member may follow it).
"""
from __future__ import annotations

import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..blob import Blob, SpoolBlob
from ..errors import BudgetExceeded, FormatError
from ..findings import FormatName

if TYPE_CHECKING:
    from ..context import ScanContext

NAME = FormatName.COMPRESSED

IN_CHUNK = 64 * 1024  # compressed bytes fed per step (bounds the ratio-check granularity)
OUT_STEP = 1 << 20  # decompressed bytes produced per step

GZIP = b"\x1f\x8b\x08"
BZIP2 = b"BZh"
XZ = b"\xfd7zXZ\x00"
ZSTD = b"\x28\xb5\x2f\xfd"
LZ4 = b"\x04\x22\x4d\x18"
ZFILE = b"ZF"
ZFILE_LEN = 19  # joblib numpy_pickle_compat._MAX_LEN: len(hex(2**64))

# Suffixes removed from the member name given to the inner content (labels only).
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".zlib", ".zst", ".zstd", ".lz4", ".tgz", ".tbz2",
             ".txz")


@dataclass
class Decoded:
    """The outcome of one bounded decompression."""

    blob: SpoolBlob
    end: int  # absolute offset just past the compressed stream (or where reading stopped)
    complete: bool  # the stream's end marker was reached
    error: str | None = None  # decoder error or "truncated"
    cap: str | None = None  # which budget stopped it (max_ratio, max_decompressed)
    limit: Any = None
    consumed: int = 0
    overflow: bool = False  # more output than `limit`
    crc: int = 0


class _ZlibDecoder:
    """zlib decompressobj behind the bz2/lzma decoder interface (needs_input, bounded output)."""

    def __init__(self, wbits: int) -> None:
        self.d = zlib.decompressobj(wbits)
        self.tail = b""
        self.full = False

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self.d.decompress(self.tail + data, max_length)
        self.tail = self.d.unconsumed_tail
        self.full = len(out) >= max_length
        return out

    @property
    def needs_input(self) -> bool:
        return not self.tail and not self.full

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data


def _lzma_alone() -> Any:
    return lzma.LZMADecompressor(lzma.FORMAT_ALONE)


DECODERS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: _ZlibDecoder(31),
    "zlib": lambda: _ZlibDecoder(15),
    "deflate": lambda: _ZlibDecoder(-15),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    "lzma-alone": _lzma_alone,
    "lzma-auto": lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO),
}
# lzma.LZMAFile (lzma.open, joblib's lzma and xz compressors) decodes whatever stream follows the
# end of one, .xz or raw LZMA alike (FORMAT_AUTO), and ignores what does not start a stream.
LZMA_KINDS = ("xz", "lzma-alone")


def _optional_decoder(kind: str) -> Callable[[], Any]:
    """lz4 frame decoder (optional package); raises ImportError when missing."""
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor
    raise KeyError(kind)


def decompress_stream(blob: Blob, start: int, end: int, kind: str, ctx: "ScanContext", name: str,
                      spool: SpoolBlob | None = None, *, factory: Callable[[], Any] | None = None,
                      limit: int | None = None) -> Decoded:
    """Decompress one `kind` stream found at blob[start:end) into a spool, under the budgets.

    Stops at the stream's end marker, or after `limit` output bytes (a zip member's declared size:
    readers return no more than that; `overflow` tells more was there). The per-stream ratio cap
    (`max_ratio` past `ratio_floor`) and the artefact's total cap (`max_decompressed`) end decoding
    with `cap` set instead of raising, so the caller can still analyse what came out.
    Both sides are counted: the compressed bytes read and the bytes produced are charged to the
    spool (the member's ratio, across its concatenated streams) and to `ctx` (the artefact's).
    `ctx.check_time()` runs per step. `crc` is the CRC-32 of the output.
    """
    spool = spool if spool is not None else SpoolBlob(name)
    if kind == "zstd":
        return _zstd(blob, start, end, ctx, spool, limit)
    dec = (factory or DECODERS.get(kind) or _optional_decoder(kind))()
    budgets = ctx.budgets
    pos = start
    produced = 0
    base = spool.size
    result = Decoded(spool, start, False)
    try:
        while pos < end and not dec.eof:
            ctx.check_time()
            data = blob.read_at(pos, min(IN_CHUNK, end - pos))
            if not data:
                break
            pos += len(data)
            spool.compressed_in += len(data)
            ctx.charge_decompressed(0, len(data))
            while True:
                out = dec.decompress(data, OUT_STEP)
                data = b""
                if limit is not None and produced + len(out) > limit:
                    out = out[:limit - produced]
                    result.overflow = True
                if out:
                    result.crc = zlib.crc32(out, result.crc)
                    spool.write(out)
                    produced += len(out)
                    ctx.charge_decompressed(len(out))
                    if _ratio_exceeded(spool, budgets):
                        result.cap, result.limit = "max_ratio", budgets.max_ratio
                        break
                if result.overflow or dec.eof or (dec.needs_input and len(out) < OUT_STEP):
                    break
            if result.cap or result.overflow:
                break
    except BudgetExceeded as exc:
        if exc.budget == "max_seconds":
            raise
        result.cap, result.limit = exc.budget, exc.limit
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError, RuntimeError) as exc:
        result.error = f"{kind} data error: {exc}"
    result.complete = (bool(dec.eof) or result.overflow) and not result.cap and not result.error
    unused = len(dec.unused_data or b"") if dec.eof else 0
    spool.compressed_in -= unused  # read ahead past this stream's end: the next stream's input
    ctx.compressed -= unused
    result.end = pos - unused
    result.consumed = result.end - start
    if not result.complete and not result.error and not result.cap:
        result.error = f"{kind} stream truncated after {spool.size - base} decompressed bytes"
    return result


def _ratio_exceeded(spool: SpoolBlob, budgets: Any) -> bool:
    """The member's ratio (all it decompressed to / all compressed bytes read for it, across
    concatenated streams) past `max_ratio`, once it is larger than `ratio_floor`."""
    return spool.size > budgets.ratio_floor and spool.size > max(spool.compressed_in, 1) * budgets.max_ratio


def _zstd(blob: Blob, start: int, end: int, ctx: "ScanContext", spool: SpoolBlob, limit: int | None) -> Decoded:
    import zstandard  # optional: the caller reports ImportError

    budgets = ctx.budgets
    result = Decoded(spool, end, False)
    raw = blob.slice(start, end - start).reader()
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, read_size=IN_CHUNK)
    produced = 0
    consumed = 0
    try:
        while True:
            ctx.check_time()
            out = reader.read(OUT_STEP)
            now = raw.tell()
            spool.compressed_in += now - consumed
            ctx.charge_decompressed(0, now - consumed)
            consumed = now
            if not out:
                result.complete = True
                break
            if limit is not None and produced + len(out) > limit:
                out = out[:limit - produced]
                result.overflow = result.complete = True
            result.crc = zlib.crc32(out, result.crc)
            spool.write(out)
            produced += len(out)
            ctx.charge_decompressed(len(out))
            if result.overflow:
                break
            if _ratio_exceeded(spool, budgets):
                result.cap, result.limit = "max_ratio", budgets.max_ratio
                break
    except BudgetExceeded as exc:
        if exc.budget == "max_seconds":
            raise
        result.cap, result.limit = exc.budget, exc.limit
    except zstandard.ZstdError as exc:
        result.error = f"zstd data error: {exc}"
    result.consumed = end - start
    return result


def report_decoded(ctx: "ScanContext", res: Decoded, name: str) -> None:
    """Findings for a stream that did not decode completely (bomb cap or truncation)."""
    if res.cap:
        ctx.add("MS-ARC-006", name=name, cap=res.cap, limit=res.limit, produced=res.blob.size,
                consumed=res.blob.compressed_in)
    elif res.error:
        ctx.add("MS-ARC-013", name=name, what=res.error)


# --- sniffing ---------------------------------------------------------------------------------

def _zlib_header(head: bytes) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and \
        (head[0] << 8 | head[1]) % 31 == 0 and not head[1] & 0x20


def _confirms(head: bytes, kind: str) -> bool:
    """Weak magic: accept only if the first block decodes without error."""
    try:
        dec = DECODERS[kind]()
        out = dec.decompress(head[:4096], 4096)
    except (zlib.error, lzma.LZMAError, EOFError, ValueError):
        return False
    return bool(out) or dec.eof or len(head) < 4096


def _lzma_alone_header(head: bytes) -> bool:
    # props byte (lc/lp/pb) < 225, dictionary size, then the 8-byte size (-1 = unknown, joblib).
    if len(head) < 13 or head[0] >= 225 or head[0] != 0x5D:
        return False
    size = int.from_bytes(head[5:13], "little")
    return size == (1 << 64) - 1 or size < (1 << 48)


def kind_of(head: bytes) -> str | None:
    """The compression format of `head`, or None."""
    if head.startswith(GZIP):
        return "gzip"
    if head.startswith(BZIP2) and len(head) >= 10 and 0x31 <= head[3] <= 0x39 and \
            head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    if head.startswith(XZ):
        return "xz"
    if head.startswith(ZSTD):
        return "zstd"
    if head.startswith(LZ4):
        return "lz4"
    if head.startswith(ZFILE) and _zfile_payload_offset(head) is not None:
        return "zfile"
    if _lzma_alone_header(head) and _confirms(head, "lzma-alone"):
        return "lzma-alone"
    if _zlib_header(head) and _confirms(head, "zlib"):
        return "zlib"
    return None


def _zfile_payload_offset(head: bytes) -> int | None:
    """Where joblib's `read_zfile` starts decompressing, if it gets that far.

    joblib (numpy_pickle_compat) parses the 19-byte length field with `int(field, 16)` (so
    whitespace, a sign, `0x`, underscores are all fine) and hands it to `zlib.decompress` as the
    buffer size (negative fails); the same builtin decides here.
    """
    field = head[2:2 + ZFILE_LEN]
    try:
        if not 0 <= int(field, 16) < 1 << 63:  # zlib.decompress wants a Py_ssize_t bufsize
            return None
    except ValueError:
        return None
    off = 2 + ZFILE_LEN
    if head[off:off + 1] == b" ":  # joblib <= 0.8.4 wrote one more space
        off += 1
    return off if _zlib_header(head[off:off + 2]) else None


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """Compression magic numbers; zlib and raw LZMA (weak magic) only if the first block decodes."""
    return kind_of(head) is not None


def inner_name(name: str) -> str:
    """`model.pkl.gz` -> `model.pkl`; `x.tgz` -> `x.tar`; otherwise the name unchanged."""
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            return base + ".tar" if suffix in (".tgz", ".tbz2", ".txz") else base
    return name


def analyse(blob: Blob, ctx: "ScanContext") -> None:
    """Decompress (all concatenated streams), report caps/truncation, dispatch the content."""
    head = blob.head(4096)
    kind = kind_of(head)
    if kind is None:
        raise FormatError("not a recognised compression format", 0)
    name = ctx.members[-1] if ctx.members else (blob.name or ctx.artefact.path)
    start = 0
    decoder_kind = kind
    if kind == "zfile":
        start = _zfile_payload_offset(head) or 0
        decoder_kind = "zlib"
    spool = SpoolBlob(name)
    streams = 0
    complete = False
    props: dict[str, Any] = {"compression": kind}
    try:
        while True:
            before = spool.size
            try:
                res = decompress_stream(blob, start, blob.size, decoder_kind, ctx, name, spool)
            except ImportError:
                package = {"zstd": "zstandard", "lz4": "lz4"}[kind]
                ctx.add("MS-ARC-015", what=kind, package=package)
                return
            if decoder_kind == "lzma-auto" and res.error and spool.size == before:
                _trailing(blob, start, ctx, kind)  # no stream starts here: LZMAFile stops silently
                break
            streams += 1
            complete = res.complete
            report_decoded(ctx, res, name)
            if not res.complete or kind not in ("gzip", "bzip2") + LZMA_KINDS or res.end >= blob.size:
                break
            if kind in LZMA_KINDS:
                start, decoder_kind = res.end, "lzma-auto"
                continue
            nxt = _past_zeros(blob, res.end) if kind == "gzip" else res.end
            rest = blob.read_at(nxt, 8)
            if kind == "gzip" and rest.startswith(GZIP) or kind == "bzip2" and rest.startswith(BZIP2):
                start = nxt
                continue
            _trailing(blob, res.end, ctx, kind)
            break
        props.update(streams=streams, decompressed_size=spool.size, complete=complete)
        if not ctx.members:
            ctx.artefact.properties["compressed"] = props
        if spool.size or complete:
            ctx.descend(spool, inner_name(name))
    finally:
        spool.close()


def _past_zeros(blob: Blob, pos: int) -> int:
    """The first non-zero byte at or after `pos`: `gzip` skips zero padding between members too."""
    for chunk in blob.chunks(pos, blob.size):
        stripped = chunk.lstrip(b"\x00")
        if stripped:
            return pos + len(chunk) - len(stripped)
        pos += len(chunk)
    return pos


def _trailing(blob: Blob, pos: int, ctx: "ScanContext", kind: str) -> None:
    """Bytes after the last stream: zero padding is normal for gzip (ignored); anything else is odd."""
    nonzero = False
    for chunk in blob.chunks(pos, min(blob.size, pos + (1 << 20))):
        if chunk.strip(b"\x00"):
            nonzero = True
            break
    if nonzero:
        ctx.add("MS-ARC-012", offset=pos,
                what=f"{blob.size - pos} byte(s) of non-{kind} data follow the compressed stream at offset {pos}; "
                     "loaders stop or fail there and they were not analysed")
