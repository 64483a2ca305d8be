"""Python source: Hugging Face remote code (auto_map targets) and dataset loading scripts.

Loaders pick code files by name (`modeling_x.py`, `<dataset>.py`), so this module accepts `.py`
names (and Python shebangs) and hands the bytes to `analysis.python` (`ast` only: nothing is
imported or run). Its description lands in `properties["python_source"]`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.python import analyse_source
from ..errors import FormatError
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.PYTHON_SOURCE
MAX_SOURCE = 8 << 20  # bytes; real modeling files are < 1 MB


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """Python source: a `.py` name (loaders choose code by name) or a Python shebang."""
    lower = name.lower()
    if lower.endswith((".py", ".pyw")):
        return True
    if head.startswith(b"#!"):
        first = head.split(b"\n", 1)[0]
        return b"python" in first
    return False


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Read the file under a size cap and analyse it (see `analysis.python.source`)."""
    if blob.size > MAX_SOURCE:
        raise FormatError(f"{blob.size} bytes is over the {MAX_SOURCE}-byte cap for Python source",
                          rule_id="MS-PY-015")
    ctx.artefact.properties["python_source"] = analyse_source(blob.read_at(0, blob.size), ctx)
