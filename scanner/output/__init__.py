"""Renderers: each turns a `Report` into one output syntax and reads nothing else.

Every string that comes from an artefact goes through `escape` (one helper for all renderers).
"""
from __future__ import annotations

import importlib
from typing import Iterator

from ..findings import Report

# --format name -> module; `columns` is the text module's column layout.
FORMATS = ("text", "columns", "json", "sarif", "markdown", "github", "gitlab")


def render(report: Report, fmt: str, *, quiet: bool = False, verbose: bool = False, color: bool = False,
           width: int = 100, errors: bool = True) -> str:
    """The report in output format `fmt` (one of FORMATS); `errors=False` leaves target errors out
    of the text formats (printed on stderr by the caller)."""
    if fmt in ("text", "columns"):
        from . import text

        return text.render(report, quiet=quiet, verbose=verbose, color=color,
                           layout="columns" if fmt == "columns" else "lines", width=width, errors=errors)
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r} ({', '.join(FORMATS)})")
    module = importlib.import_module(f"{__name__}.{fmt}")
    return module.render(report, verbose=verbose) if fmt in ("markdown", "github") else module.render(report)


def render_chunks(report: Report, fmt: str, **options: object) -> Iterator[str]:
    """`render` in pieces: the JSON report artefact by artefact (a scan of 100,000 files never holds
    its whole report as one string), other formats in one piece."""
    if fmt == "json":
        from . import json as json_out

        return json_out.render_chunks(report)
    return iter([render(report, fmt, **options)])  # type: ignore[arg-type]
