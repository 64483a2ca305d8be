"""Dispatch: which format module reads a blob, and running it with errors turned into findings.

Below the engine and above the formats. The engine calls `analyse_blob` once per file; formats
and analysers reach it for members and embedded payloads through `ScanContext.descend` (the
context holds `analyse_blob` as its dispatcher), so no module below imports this one.

`candidates` yields, in sniffing order, the format modules that recognise the content: each is
one loader's view of the file. Today the first view is analysed (`identify`).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Iterator

from . import formats
from .errors import BudgetExceeded, FormatError
from .findings import Status
from .formats.interface import HEAD_SIZE, FormatModule
from .suffixes import loader_hint

if TYPE_CHECKING:
    from .blob import Blob
    from .context import ScanContext

__all__ = ["analyse_blob", "candidates", "identify", "loader_hint"]


def candidates(blob: "Blob", name: str) -> Iterator[FormatModule]:
    """The format modules that recognise the content, in sniffing order (lazily: sniffing costs)."""
    head = blob.head(HEAD_SIZE)
    for module in formats.modules():
        if module.sniff(head, blob, name):
            yield module


def identify(blob: "Blob", name: str) -> FormatModule | None:
    """The first format module that recognises the content, or None."""
    return next(candidates(blob, name), None)


def analyse_blob(blob: "Blob", ctx: "ScanContext", name: str) -> str:
    """Identify `blob` and run its format module, turning errors into inconclusive findings.

    Returns the format name ("unknown" if nothing recognised it, "empty" for an empty file).
    Binds `ctx.dispatcher` to this function if the context has none, so members recurse here.
    """
    if ctx.dispatcher is None:
        ctx.dispatcher = analyse_blob
    ctx.check_time()
    module = identify(blob, name)
    if module is None:
        return _unrecognised(blob, ctx, name)
    _run(module, blob, ctx)
    return module.NAME


def _unrecognised(blob: "Blob", ctx: "ScanContext", name: str) -> str:
    """No format module claims the content: inconclusive if a loader opens such names."""
    hint = loader_hint(name)
    if blob.size == 0:
        if hint:
            ctx.add("MS-GEN-006", format="empty file", error=f"0 bytes, but {hint} would open it")
        return "empty"
    if hint:
        ctx.add("MS-GEN-002", hint=hint)
    elif ctx.member is None:
        ctx.add("MS-GEN-001")
        ctx.artefact.status = Status.INVENTORIED
    return "unknown"


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
