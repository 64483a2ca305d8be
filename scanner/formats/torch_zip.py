"""The PyTorch zip flavour (`torch.save` since 1.6, `torch.jit.save`), a zip flavour module.

`torch.load` reads `<archive>/data.pkl` with persistent ids naming storages stored raw under
`<archive>/data/<key>`; TorchScript archives add `constants.pkl` and a `code/` tree of serialized
TorchScript that `torch.jit.load` compiles. Here every `.pkl` member (not only `data.pkl`) goes
through the pickle VM with the `torch-zip` flavour; `code/**/*.py` goes to the operator allowlist
analysis (`analysis.torchscript`); storages are inventoried by size, never read; other members go back
through the sniffer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, FormatError
from ..findings import FormatName
from .zip import CRC_CHECK_MAX, add_at, dispatch_member, opened_member

if TYPE_CHECKING:
    from ..context import ScanContext
    from .interface import Archive, Member

FLAVOUR = "torch-zip"
_MARKERS = ("data.pkl", "constants.pkl")
_VERSION_RECORDS = ("version", ".data/version")


def _split(name: str) -> tuple[str, str]:
    """("archive", "data.pkl") for "archive/data.pkl"; ("", name) without a folder."""
    head, sep, rest = name.partition("/")
    return (head, rest) if sep else ("", name)


def matches(names: list[str]) -> bool:
    """A `<prefix>/data.pkl` or `<prefix>/constants.pkl` record next to a version record.

    Case-insensitive: PyTorch's miniz looks records up with `mz_zip_reader_locate_file(..., 0)`,
    which ignores case, so `archive/DATA.PKL` is what `torch.load` unpickles.
    """
    records = {_split(n.lower()) for n in names}
    prefixes = {p for p, rest in records if rest in _MARKERS}
    return any((p, v) in records for p in prefixes for v in _VERSION_RECORDS) or \
        any(rest == "data.pkl" for _, rest in records)


# the loaders read the storages a pickle names from the folder named like it: `data.pkl` from
# `data/<key>` (torch.load, torch.jit.load), `constants.pkl` from `constants/<key>` (torch.jit.load's
# readArchive("constants")); raw tensor bytes, never unpickled, so never sniffed (a uint8 constant
# may hold any bytes, a pickle's among them)
_STORAGE_DIRS = ("data", "constants")


def _is_storage(rest: str) -> bool:
    folder, sep, key = rest.partition("/")
    return bool(sep) and folder in _STORAGE_DIRS and bool(key) and "/" not in key


def analyse_archive(archive: "Archive", ctx: "ScanContext") -> None:
    """Pickles through the VM, storages inventoried, the rest dispatched; TorchScript noted."""
    members = archive.members()
    storages = 0
    storage_bytes = 0
    pickles: list[str] = []
    code_files = 0
    prefixes: list[str] = []
    records: dict[str, str] = {}
    code: list["Member"] = []
    # TorchScript archives (torch.jit.save) carry a code/ tree; their pickles name __torch__.*
    # classes compiled from it, which the loader resolves without a Python import.
    scripted = any(_split(m.name)[1].startswith("code/") for m in members)
    flavour = "torchscript" if scripted else "torch-zip"
    for m in members:
        ctx.check_time()
        prefix, rest = _split(m.name)
        if prefix not in prefixes:
            prefixes.append(prefix)
        if m.kind != "file":
            continue
        if rest.startswith("code/") and rest.endswith(".py"):
            code_files += 1
            code.append(m)  # compiled by TorchScript, not imported by Python: see analysis.torchscript
            continue
        if _is_storage(rest):
            storages += 1
            storage_bytes += m.size
            if m.encrypted:
                add_at(ctx, m.name, "MS-ARC-005", name=m.name, how="zip encryption")
            continue
        if m.name.lower().endswith(".pkl") and not m.encrypted:
            pickles.append(m.name)
            _analyse_pickle_member(archive, m, ctx, flavour)
            continue
        if rest in ("version", ".data/version", "byteorder", ".format_version", ".storage_alignment") and \
                not m.encrypted and m.size <= 64 and m.method == 0:
            data = archive.open(m)
            if data is not None:
                records[rest] = data.read_at(0, 64).decode("ascii", "replace").strip()
        dispatch_member(archive, m, ctx)
    torchscript = code_files > 0 or any(_split(n)[1] == "constants.pkl" for n in pickles)
    code_props = _analyse_code(archive, code, ctx) if code else None
    if code_files:
        ctx.add("MS-ARC-016", code_files=code_files)
    if not ctx.members:
        ctx.artefact.format = FormatName.TORCHSCRIPT if torchscript else FormatName.TORCH_ZIP
        ctx.artefact.properties["torch_zip"] = {
            "archive_name": prefixes[0] if prefixes else "", "pickles": pickles, "storages": storages,
            "storage_bytes": storage_bytes, "torchscript": torchscript, "code_files": code_files,
            "version": records.get("version") or records.get(".data/version"),
            "byteorder": records.get("byteorder"),
        }
        if code_props is not None:
            ctx.artefact.properties["torchscript"] = code_props


def _analyse_code(archive: "Archive", members: list["Member"], ctx: "ScanContext") -> dict[str, Any]:
    """Every `code/` file through the TorchScript operator analysis (one pass over the whole tree,
    since classes and methods of one file are used from others)."""
    from ..analysis import torchscript as torchscript_code

    files = []
    total = 0
    for m in members:
        ctx.check_time()
        if m.encrypted:
            add_at(ctx, m.name, "MS-ARC-005", name=m.name, how="zip encryption")
            continue
        total += m.size
        if total > torchscript_code.MAX_CODE:
            raise BudgetExceeded("TorchScript code bytes", torchscript_code.MAX_CODE)
        with opened_member(archive, m, ctx) as blob:
            if blob is None:
                continue
            ctx.members.append(m.name)
            try:
                ctx.record_member()
            finally:
                ctx.members.pop()
            parsed = torchscript_code.parse(m.name, blob.read_at(0, blob.size), ctx)
        if parsed is not None:
            files.append(parsed)
    return torchscript_code.analyse(files, ctx)


def _analyse_pickle_member(archive: "Archive", member: "Member", ctx: "ScanContext", flavour: str) -> None:
    from ..analysis.picklevm import analyse_pickle

    with opened_member(archive, member, ctx) as blob:
        if blob is None:
            return
        with ctx.enter(member.name, container=True):
            ctx.record_member()
            if member.method == 0 and blob.size > CRC_CHECK_MAX and hasattr(archive, "check_crc"):
                archive.check_crc(member, blob)  # smaller stored members were checked by open()
            _run(analyse_pickle, blob, ctx, flavour)


def _run(analyse_pickle: Any, blob: Any, ctx: "ScanContext", flavour: str) -> None:
    """The VM call with the engine's error mapping, located at the member."""
    try:
        analyse_pickle(blob, ctx, flavour=flavour)
    except BudgetExceeded as exc:
        if exc.budget == "max_seconds":
            raise
        ctx.add("MS-GEN-005", budget=exc.budget, limit=exc.limit)
    except FormatError as exc:
        ctx.add(exc.rule_id, offset=exc.offset, format="pickle", error=exc.reason)
    except NotImplementedError:
        ctx.add("MS-GEN-006", format="pickle", error="the pickle VM is not available yet")
    except RecursionError:
        ctx.add("MS-GEN-005", budget="recursion", limit="interpreter recursion limit")
    except Exception as exc:  # noqa: BLE001 - a VM bug must never pass the checkpoint as clean
        ctx.add("MS-GEN-006", format="pickle", error=f"internal error {type(exc).__name__}: {exc}")
