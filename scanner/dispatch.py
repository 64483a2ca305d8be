"""Dispatch: which format module reads a blob, and running it with errors turned into findings.

Below the engine and above the formats. The engine calls `analyse_blob` once per file; formats
and analysers reach it for members and embedded payloads through `ScanContext.descend` (the
context holds `analyse_blob` as its dispatcher), so no module below imports this one.

`views` lists, in sniffing order, the format modules whose loaders open the content: the first
names the format, every other one is a loader reading the same bytes its own way (a tar whose
header is also a pickle, an HDF5 file with a pickle in its user block, a GGUF or safetensors
header whose first bytes start a stream `pickle.load` runs). All of them are analysed and the
findings of all views are the file's (the worst decides the verdict). See `formats.EXACT`.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Iterator

from . import formats
from .errors import BudgetExceeded, FormatError
from .findings import FormatName, Status
from .formats.interface import HEAD_SIZE, FormatModule
from .analysis.picklevm.trial import refusal
from .suffixes import decided_by_unpickler, loader_hint

if TYPE_CHECKING:
    from .blob import Blob
    from .context import ScanContext

__all__ = ["analyse_blob", "candidates", "identify", "loader_hint", "views"]


def candidates(blob: "Blob", name: str) -> Iterator[FormatModule]:
    """The format modules that recognise the content, in sniffing order (lazily: sniffing costs)."""
    head = blob.head(HEAD_SIZE)
    for module in formats.modules():
        if module.sniff(head, blob, name):
            yield module


def identify(blob: "Blob", name: str) -> FormatModule | None:
    """The first format module that recognises the content, or None."""
    return next(candidates(blob, name), None)


def views(blob: "Blob", name: str) -> list[FormatModule]:
    """Every loader's view of the content: the identifying module first, then each further EXACT
    module that accepts it (one unpickler-at-offset-0 view at most). Empty if nothing does."""
    head = blob.head(HEAD_SIZE)
    found: list[FormatModule] = []
    unpickler = False
    for module in formats.modules():
        if found and module.NAME not in formats.EXACT:
            continue
        if unpickler and module.NAME in formats.UNPICKLER_AT_0:
            continue
        if module.sniff(head, blob, name):
            found.append(module)
            unpickler = unpickler or module.NAME in formats.UNPICKLER_AT_0
    if not found:  # unrecognised content: a loader that is told what it is may still open it
        for module in formats.modules():
            fallback = getattr(module, "fallback", None)
            if fallback is not None and fallback(blob, name):
                return [module]
    return found


def analyse_blob(blob: "Blob", ctx: "ScanContext", name: str) -> FormatName:
    """Identify `blob` and run its format module, turning errors into inconclusive findings.

    Returns the format name ("unknown" if nothing recognised it, "empty" for an empty file).
    Binds `ctx.dispatcher` to this function if the context has none, so members recurse here.
    """
    if ctx.dispatcher is None:
        ctx.dispatcher = analyse_blob
    ctx.check_time()
    found = views(blob, name)
    if not found:
        return _unrecognised(blob, ctx, name)
    if len(found) > 1 and ctx.member is None:
        ctx.artefact.properties["views"] = [m.NAME for m in found]
    for module in found:
        _run(module, blob, ctx)
    return found[0].NAME


def _unrecognised(blob: "Blob", ctx: "ScanContext", name: str) -> FormatName:
    """No format module claims the content: inventoried, unless a loader we cannot follow opens
    such names (inconclusive). Names of content-decided unpickling loaders get a message only."""
    hint = loader_hint(name)
    if blob.size == 0:
        if hint:
            ctx.add("MS-GEN-006", format="empty file", error=f"0 bytes, but {hint} would open it")
        return FormatName.EMPTY
    if hint and decided_by_unpickler(name):
        ctx.add("MS-PKL-016", hint=hint, reason=refusal(blob))
        if ctx.member is None:
            ctx.artefact.status = Status.INVENTORIED
    elif hint:
        ctx.add("MS-GEN-002", hint=hint)
    elif ctx.member is None:
        ctx.add("MS-GEN-001")
        ctx.artefact.status = Status.INVENTORIED
    return FormatName.UNKNOWN


def _run(module: FormatModule, blob: "Blob", ctx: "ScanContext") -> None:
    """`module.analyse`, with every failure an inconclusive finding (never a clean pass)."""
    try:
        module.analyse(blob, ctx)
    except BudgetExceeded as exc:
        ctx.add("MS-GEN-005", budget=exc.budget, limit=exc.limit)
    except FormatError as exc:
        ctx.add(exc.rule_id, offset=exc.offset, format=module.NAME, error=exc.reason)
    except NotImplementedError:
        ctx.add("MS-GEN-006", format=module.NAME, error="this format is not analysed yet")
    except RecursionError:
        ctx.add("MS-GEN-005", budget="recursion", limit=sys.getrecursionlimit())
    except MemoryError:  # the worker's address-space cap (max_memory) was reached
        ctx.add("MS-LIM-001", limit=f"{ctx.budgets.max_memory >> 20} MiB", during=f"in the {module.NAME} analysis")
    except Exception as exc:  # noqa: BLE001 - a parser bug must never pass a file as clean
        ctx.add("MS-GEN-006", format=module.NAME, error=f"internal error {type(exc).__name__}: {exc}")
