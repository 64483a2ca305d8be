"""Byte-level zip surgery for the archive tests (independent of modelshield's own zip reader).

Offsets come from Python's `zipfile` (`start_dir`, `header_offset`); the edits reproduce the
published evasions: CRC, local/central name mismatch, flag bits, entries hidden from the central
directory, encryption flags, huge declared sizes.
"""
from __future__ import annotations

import io
import struct
import zipfile

CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
EOCD = struct.Struct("<4s4H2LH")
Z64_EOCD = struct.Struct("<4sQ2H2L4Q")


def central_records(data: bytes) -> list[tuple[int, str, tuple]]:
    """(offset, name, fields) of every central-directory record."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    pos, out = zf.start_dir, []
    while data[pos:pos + 4] == b"PK\x01\x02":
        fields = CENTRAL.unpack_from(data, pos)
        n, e, c = fields[12], fields[13], fields[14]
        out.append((pos, data[pos + 46:pos + 46 + n].decode(), fields))
        pos += 46 + n + e + c
    return out


def _record(data: bytes, name: str) -> tuple[int, tuple]:
    for pos, rname, fields in central_records(data):
        if rname == name:
            return pos, fields
    raise KeyError(name)


def patch_central(data: bytes, name: str, **values: int) -> bytes:
    """Set central-directory fields of `name` (flags, method, crc, csize, usize, attr, system)."""
    pos, fields = _record(data, name)
    f = list(fields)
    index = {"system": 2, "flags": 5, "method": 6, "crc": 9, "csize": 10, "usize": 11, "attr": 17}
    for key, value in values.items():
        f[index[key]] = value
    buf = bytearray(data)
    CENTRAL.pack_into(buf, pos, *f)
    return bytes(buf)


def local_offset(data: bytes, name: str) -> int:
    return _record(data, name)[1][18]


def patch_local(data: bytes, name: str, *, flags: int | None = None, new_name: str | None = None) -> bytes:
    """Edit the local header of `name`: flag bits, or its name (same length)."""
    off = local_offset(data, name)
    buf = bytearray(data)
    if flags is not None:
        struct.pack_into("<H", buf, off + 6, flags)
    if new_name is not None:
        raw = new_name.encode()
        assert len(raw) == len(name.encode())
        buf[off + 30:off + 30 + len(raw)] = raw
    return bytes(buf)


def hide(data: bytes, name: str) -> bytes:
    """Remove `name` from the central directory (its local entry stays): a hidden entry."""
    pos, fields = _record(data, name)
    length = 46 + fields[12] + fields[13] + fields[14]
    out = bytearray(data[:pos] + data[pos + length:])
    eocd = out.rfind(b"PK\x05\x06")
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_off, comment = EOCD.unpack_from(out, eocd)
    if n_total != 0xFFFF:
        n_disk, n_total = n_disk - 1, n_total - 1
    if cd_size != 0xFFFFFFFF:
        cd_size -= length
    EOCD.pack_into(out, eocd, sig, disk, cd_disk, n_disk, n_total, cd_size, cd_off, comment)
    z64 = out.rfind(b"PK\x06\x06", 0, eocd)
    if z64 >= 0:
        f = list(Z64_EOCD.unpack_from(out, z64))
        f[6] -= 1
        f[7] -= 1
        f[8] -= length
        Z64_EOCD.pack_into(out, z64, *f)
        loc = out.rfind(b"PK\x06\x07", 0, eocd)
        if loc >= 0:
            struct.pack_into("<Q", out, loc + 8, z64)
    return bytes(out)


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, payload in entries:
            zf.writestr(name, payload)
    return buf.getvalue()


def append_entry(data: bytes, name: str, payload: bytes) -> bytes:
    """Add an entry to an existing zip (Python rewrites the directory after it)."""
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(name, payload)
    return buf.getvalue()


def deflate_zeros(gib: int = 1) -> bytes:
    """A raw deflate stream of `gib` GiB of zeros, built in ~0.1 s (identical fully-flushed blocks)."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * (16 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (64 * gib) + c.flush()


def zip_with_raw_deflate(name: str, stream: bytes, usize: int, crc: int = 0) -> bytes:
    """A one-entry zip whose deflated data is `stream` (declared sizes as given)."""
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 0x21, crc, len(stream), usize,
                        len(name), 0) + name.encode()
    cd_off = len(local) + len(stream)
    central = CENTRAL.pack(b"PK\x01\x02", 20, 0, 20, 0, 0, 8, 0, 0x21, crc, len(stream), usize, len(name), 0, 0,
                           0, 0, 0, 0) + name.encode()
    eocd = EOCD.pack(b"PK\x05\x06", 0, 0, 1, 1, len(central), cd_off, 0)
    return local + stream + central + eocd
