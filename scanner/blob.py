"""Byte sources that format modules read with positioned reads: files, slices, memory, spools.

A `Blob` never maps or loads a whole file: modules ask for the few regions they need
(`read_at`), or stream a region in chunks. Members of containers are `SliceBlob`s over their
parent (stored members) or spooled temporary buffers (decompressed members).
"""
from __future__ import annotations

import io
import os
import tempfile
from typing import Any, Iterator

CHUNK = 1 << 20


class Blob:
    """A read-only, random-access byte source of known size."""

    size: int = 0
    name: str = ""

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes at `offset` (fewer at the end)."""
        raise NotImplementedError

    def head(self, n: int = 4096) -> bytes:
        return self.read_at(0, min(n, self.size))

    def chunks(self, offset: int = 0, end: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
        """Stream [offset, end) in chunks."""
        end = self.size if end is None else min(end, self.size)
        while offset < end:
            data = self.read_at(offset, min(chunk, end - offset))
            if not data:
                return
            offset += len(data)
            yield data

    def reader(self, offset: int = 0) -> io.BufferedReader:
        """A buffered, seekable file object over the blob starting at `offset` (relative seeks)."""
        return io.BufferedReader(_RawView(self, offset), buffer_size=1 << 16)

    def slice(self, offset: int, length: int, name: str = "") -> "Blob":
        return SliceBlob(self, offset, length, name or self.name)

    def close(self) -> None:  # noqa: B027 - optional
        pass


class FileBlob(Blob):
    """A file on disk, read with os.pread (no shared file position, safe across threads).

    Opened by path, or over a descriptor the caller owns (`fd=`; then `close` leaves it open).
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "", fd: int | None = None) -> None:
        self.path = os.fspath(path)
        self.owned = fd is None
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0)) if fd is None else fd
        self.size = os.fstat(self.fd).st_size
        self.name = name or os.path.basename(self.path)

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:  # a crafted negative offset reads nothing
            return b""
        return os.pread(self.fd, min(n, self.size - offset), offset)

    def close(self) -> None:
        if self.fd >= 0 and self.owned:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "FileBlob":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SliceBlob(Blob):
    """A window [offset, offset+length) of another blob (a stored container member)."""

    def __init__(self, parent: Blob, offset: int, length: int, name: str = "") -> None:
        self.parent, self.offset = parent, offset
        self.size = max(0, min(length, parent.size - offset))
        self.name = name

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:  # a crafted negative offset reads nothing
            return b""
        return self.parent.read_at(self.offset + offset, min(n, self.size - offset))


class BytesBlob(Blob):
    """Bytes already in memory (small decompressed members, nested payloads)."""

    def __init__(self, data: bytes | memoryview, name: str = "") -> None:
        self.data = memoryview(data)
        self.size = len(data)
        self.name = name

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0:
            return b""
        return bytes(self.data[offset:offset + max(n, 0)])


class SpillMeter:
    """Bytes the spools of this process wrote to temporary files, against an allowance per scan."""

    def __init__(self, allowance: int | None = None) -> None:
        self.allowance, self.used = allowance, 0

    def reset(self, allowance: int | None) -> None:
        self.allowance, self.used = allowance, 0

    def charge(self, n: int) -> None:
        from .errors import BudgetExceeded

        self.used += n
        if self.allowance is not None and self.used > self.allowance:
            raise BudgetExceeded("max_spill", self.allowance)


SPILL = SpillMeter()


class SpoolBlob(Blob):
    """Write-once buffer for decompressed content: memory up to `max_memory`, then a temp file.

    Fill it with `write`, then read it like any blob. The temp file is unlinked at creation (it
    disappears with the process, even a killed one) and is closed on `close`. Bytes written to it
    are charged to `SPILL` (BudgetExceeded past the scan's allowance).
    """

    def __init__(self, name: str = "", max_memory: int = 16 << 20) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=max_memory)
        self.size = 0
        self.name = name
        self.on_disk = False
        self.compressed_in = 0  # compressed bytes read to produce the content (decompression ratio)

    def write(self, data: bytes) -> None:
        self.file.seek(0, io.SEEK_END)
        self.file.write(data)
        self.size += len(data)
        if self.on_disk:
            SPILL.charge(len(data))
        elif getattr(self.file, "_rolled", False):
            self.on_disk = True
            SPILL.charge(self.size)

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:  # a crafted negative offset reads nothing
            return b""
        self.file.seek(offset)
        return self.file.read(min(n, self.size - offset))

    def close(self) -> None:
        self.file.close()


class _RawView(io.RawIOBase):
    def __init__(self, blob: Blob, start: int) -> None:
        self.blob, self.start, self.pos = blob, start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.blob.read_at(self.start + self.pos, len(buf))
        buf[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self.pos = offset
        elif whence == io.SEEK_CUR:
            self.pos += offset
        else:
            self.pos = self.blob.size - self.start + offset
        return self.pos

    def tell(self) -> int:
        return self.pos
