"""Legacy `torch.save` (`_use_new_zipfile_serialization=False`) and the older torch tar layout.

Stacked layout (torch/serialization.py `_legacy_save`): magic-number pickle, protocol-version
pickle, sys_info pickle, the main pickle (persistent ids are storages), the storage-keys pickle,
then raw storage bytes, which are never parsed. `torch.load` runs every one of those pickles, so
all five go through the VM.

Tar layout (torch < 0.4, `_legacy_load` `legacy_load`): members `sys_info` (pickle), `pickle`
(main pickle), `storages` (count pickle, then per storage a (key, location, type) pickle and
raw data with an 8-byte element count) and `tensors` (count pickle, then per tensor a pickle and
fixed binary fields). `analyse_tar` is called by the tar module.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..errors import FormatError
from ..analysis.picklevm import analyse_pickle
from . import pickle as binary
from ..analysis.picklevm.trial import start_of
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from .interface import Archive

NAME = FormatName.TORCH_LEGACY
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
STACKED_PICKLES = 5
TAR_NAMES = ("sys_info", "pickle", "storages", "tensors")
ELEMENT_SIZE = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "QUInt8": 1, "QInt8": 1,
                "QInt32": 4, "QUInt4x2": 1, "QUInt2x4": 1, "Untyped": 1}


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """The first pickle returns the magic number, however it is spelled (torch compares the value)."""
    start = start_of(blob, head)
    return start is not None and start.complete and start.value == MAGIC_NUMBER


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """The five stacked pickles; then the raw storages are sized, not parsed."""
    result = analyse_pickle(blob, ctx, flavour="torch-legacy", max_streams=STACKED_PICKLES)
    binary.record(ctx, result, "torch-legacy", protocol=binary.protocol_of(blob))
    facts = {"streams": len(result.streams), "storage_bytes": max(0, blob.size - result.end),
             "storages": sum(1 for p in result.persistent_ids if isinstance(p, list) and p[:1] == ["storage"])}
    if ctx.member is None:
        ctx.artefact.properties["torch_legacy"] = facts
    if result.complete and len(result.streams) < STACKED_PICKLES:
        raise FormatError(f"legacy torch file ends after {len(result.streams)} of {STACKED_PICKLES} pickles",
                          result.end)


def analyse_tar(archive: "Archive", ctx: "ScanContext") -> None:
    """The torch tar checkpoint layout; members other than the four known ones are dispatched."""
    members = {m.name: m for m in archive.members()}
    for m in archive.members():
        if m.kind != "file":
            continue
        blob = archive.open(m)
        with ctx.enter(m.name, container=True):
            ctx.record_member()
            if m.name in ("sys_info", "pickle"):
                result = analyse_pickle(blob, ctx, flavour="torch-legacy", max_streams=1)
                binary.record(ctx, result, "torch-legacy")
            elif m.name == "storages":
                _records(blob, ctx, storages=True)
            elif m.name == "tensors":
                _records(blob, ctx, storages=False)
        if m.name not in TAR_NAMES:
            ctx.descend(blob, m.name)
    missing = [n for n in ("sys_info", "pickle", "storages") if n not in members]
    if missing:
        ctx.add("MS-GEN-006", format=NAME, error=f"legacy torch tar without {', '.join(missing)}")


def _next(result: Any) -> int:
    """Where torch's next read starts: it reads these members unbuffered (no peek), so after a
    STOP inside a FRAME the file stands at the frame end, which _pickle.c read whole."""
    return result.resume_at if result.resume_at is not None else result.end


def _count(blob: "Blob", ctx: "ScanContext", pos: int) -> tuple[int, int | None]:
    """One pickle holding an int (the record count): (end offset, count or None)."""
    result = analyse_pickle(blob, ctx, start=pos, flavour="torch-legacy", max_streams=1)
    value = result.values[0] if result.values else None
    return _next(result), value if isinstance(value, int) and not isinstance(value, bool) else None


def _records(blob: "Blob", ctx: "ScanContext", storages: bool) -> None:
    """`storages`: count, then (pickle, u64 count, data) records, then the storage-views pickle;
    `tensors`: count, then pickle + dims (torch's legacy_load reads exactly these)."""
    pos, count = _count(blob, ctx, 0)
    if count is None:
        raise FormatError("record count pickle does not hold an int", 0)
    if count < 0 or count > blob.size:
        raise FormatError(f"implausible record count {count}", 0)
    for _ in range(count):
        ctx.check_time()
        result = analyse_pickle(blob, ctx, start=pos, flavour="torch-legacy", max_streams=1)
        if not result.complete:
            return
        pos = _next(result)
        value = result.values[0] if result.values else None
        if storages:
            size = _element_size(value)
            raw = blob.read_at(pos, 8)
            if size is None or len(raw) < 8:
                raise FormatError("storage record without a known type or size", pos)
            pos += 8 + struct.unpack("<q", raw)[0] * size
        else:
            raw = blob.read_at(pos, 8)
            if len(raw) < 8:
                raise FormatError("tensor record truncated", pos)
            ndim = struct.unpack("<i", raw[:4])[0]
            if ndim < 0 or ndim > 64:
                raise FormatError(f"tensor record with {ndim} dimensions", pos)
            pos += 8 + 16 * ndim + 8
        if pos > blob.size:
            raise FormatError("record runs past the end of the member", pos)
    if storages:  # torch unpickles the storage views from the stream right after the records
        analyse_pickle(blob, ctx, start=pos, flavour="torch-legacy", max_streams=1)


def _element_size(value: Any) -> int | None:
    """Element size of a ('key', 'location', torch.XStorage) record."""
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[2], str):
        return None
    name = value[2].rsplit(".", 1)[-1]
    return ELEMENT_SIZE.get(name[:-len("Storage")] if name.endswith("Storage") else name)
