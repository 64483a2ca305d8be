"""HDF5 files (Keras `.h5` models and `.weights.h5`), read with h5py over positioned reads.

The Keras model lives in the root attribute `model_config` (JSON); `training_config` holds the
compile config. Both go through the shared Keras config analysis (Lambda bytecode runs in `.h5`
even with safe_mode in Keras < 3.11: CVE-2025-9905). The object tree is walked for external links,
external raw storage and virtual datasets, which make the HDF5 library open other host files.
Without h5py the file is inconclusive, never clean. Dataset contents are never read.
"""
from __future__ import annotations

import importlib.util
import json
from typing import Any

from ..blob import Blob
from ..errors import BudgetExceeded, FormatError
from ..context import ScanContext
from ..analysis.keras_walker import analyse_config
from ..findings import FormatName
from ..worker.native import native_call

NAME = FormatName.HDF5
MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 256 << 20
MAX_OBJECTS = 200_000


def superblock_offset(blob: Blob, head: bytes) -> int | None:
    """Where the HDF5 signature is: 0, or a user-block size 512, 1024, 2048, ... (HDF5 spec)."""
    if head.startswith(MAGIC):
        return 0
    offset = 512
    while offset + len(MAGIC) <= blob.size:
        chunk = head[offset:offset + 8] if offset + 8 <= len(head) else blob.read_at(offset, 8)
        if chunk == MAGIC:
            return offset
        offset *= 2
    return None


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    return superblock_offset(blob, head) is not None


def analyse(blob: Blob, ctx: ScanContext) -> None:
    """Open with h5py (file-like over the blob), analyse Keras configs, walk links and storage.

    Every h5py call runs in a `native_call` region: the HDF5 library can loop or crash on crafted
    structure, so inside a worker the parent stops it after `max_native_seconds` (and the address
    space cap stops it growing). Only the root attributes Keras reads are read, each after checking
    its declared size. A bounded reader of our own was considered instead: the HDF5 structures that
    reach the attributes (object headers v1/v2, dense attribute storage in fractal heaps, v1/v2
    B-trees, global heaps for strings) are as large a surface as h5py's, and a reader that disagrees
    with the library is a loader-view gap; the worker limits bound the library instead.
    """
    try:
        import h5py
    except ImportError as exc:
        if importlib.util.find_spec("h5py") is None:
            ctx.add("MS-KERAS-008")
            return
        # Installed but not loadable: in a worker, its shared libraries may not fit under a low
        # max_memory (below ~100 MiB); say so rather than "not installed".
        raise FormatError(f"h5py is installed but could not be loaded ({type(exc).__name__}); a low "
                          "[budgets] max_memory leaves the HDF5 library no room", 0) from None
    props: dict = {"superblock_offset": superblock_offset(blob, blob.head(4096))}
    with native_call("h5py"):
        try:
            handle = h5py.File(blob.reader(), "r")
        except (OSError, ValueError) as exc:
            raise FormatError(f"h5py cannot open it: {exc}") from None
    with handle:
        with native_call("h5py"):
            try:
                attrs = _root_attrs(handle)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise FormatError(f"unreadable root attributes: {exc}") from None
        for key in ("keras_version", "backend"):
            if key in attrs:
                props[key] = _text(attrs[key])[:100]
        configs = [(k, attrs[k]) for k in ("model_config", "training_config") if k in attrs]
        for key, raw in configs:
            text = _text(raw, MAX_CONFIG_BYTES)
            source = f"the {key} attribute"
            try:
                config = json.loads(text)
            except (ValueError, RecursionError) as exc:
                ctx.add("MS-KERAS-007", source=source, error=str(exc)[:200])
                continue
            summary = analyse_config(config, ctx, source=source, h5=True)
            if key == "model_config":
                props["keras"] = summary.as_dict()
                if isinstance(config, dict):
                    props["model_class"] = str(config.get("class_name"))[:100]
        with native_call("h5py"):
            props["objects"] = _walk(handle, ctx)
    ctx.artefact.properties["hdf5"] = props


ROOT_ATTRS = ("model_config", "training_config", "keras_version", "backend")


def _root_attrs(handle: Any) -> dict[str, Any]:
    """The root attributes Keras reads, each only if its declared size is within the budget."""
    out: dict[str, Any] = {}
    names = set(handle.attrs.keys())
    for key in ROOT_ATTRS:
        if key not in names:
            continue
        try:
            declared = handle.attrs.get_id(key).get_storage_size()
        except (OSError, TypeError, ValueError, KeyError):
            continue
        if declared > MAX_CONFIG_BYTES:
            raise BudgetExceeded("keras config bytes", MAX_CONFIG_BYTES)
        try:
            out[key] = handle.attrs[key]
        except (OSError, TypeError, ValueError):
            continue  # unreadable attribute types (e.g. empty dataspace) carry no config
    return out


def _text(value: Any, cap: int = 1 << 20) -> str:
    if hasattr(value, "tobytes") and not isinstance(value, (bytes, str)):
        value = value.tobytes() if getattr(value, "dtype", None) is not None and value.dtype.kind == "S" \
            else str(value)
    if isinstance(value, bytes):
        if len(value) > cap:
            raise BudgetExceeded("keras config bytes", cap)
        return value.decode("utf-8", "replace")
    text = str(value)
    if len(text) > cap:
        raise BudgetExceeded("keras config bytes", cap)
    return text


def _walk(root: Any, ctx: ScanContext) -> int:
    """Visit every link of the tree without following external or soft links."""
    import h5py

    count = 0
    stack = [("/", root)]
    while stack:
        path, group = stack.pop()
        try:
            names = list(group.keys())
        except (OSError, RuntimeError) as exc:
            raise FormatError(f"unreadable group {path}: {exc}") from None
        for name in names:
            count += 1
            if count > MAX_OBJECTS:
                raise BudgetExceeded("hdf5 objects", MAX_OBJECTS)
            if count % 1000 == 0:
                ctx.check_time()
            full = f"{path.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                ctx.add("MS-KERAS-010", object=full, what="is an external link",
                        target=f"{link.filename}:{link.path}"[:300])
                continue
            if isinstance(link, h5py.SoftLink):
                continue
            try:
                obj = group[name]
            except (OSError, KeyError, RuntimeError):
                continue
            if isinstance(obj, h5py.Group):
                stack.append((full, obj))
            elif isinstance(obj, h5py.Dataset):
                external = obj.external
                if external:
                    ctx.add("MS-KERAS-010", object=full, what="stores its data in external raw files",
                            target=", ".join(str(e[0]) for e in external[:5])[:300])
                if obj.is_virtual:
                    sources = {s.file_name for s in obj.virtual_sources()}
                    if sources - {"."}:
                        ctx.add("MS-KERAS-010", object=full, what="is a virtual dataset mapping other files",
                                target=", ".join(sorted(sources))[:300])
    return count
