"""Time limits around calls into native parsers (h5py/HDF5) that Python code cannot interrupt.

A format module wraps such calls in `native_call("h5py")`. Inside a worker, entering and leaving
the region is announced to the parent, which then applies the shorter `max_native_seconds` limit
and kills the worker if the call does not return in time (the finding names the parser). Outside a
worker (in-process analysis) the region only checks the deadline on entry.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

# Set by the worker process: called with (parser name, seconds) on entry and (None, 0) on exit.
_announce: Callable[[str | None, float], None] | None = None
_seconds: float = 0.0


def install(announce: Callable[[str | None, float], None] | None, seconds: float) -> None:
    """Route region announcements to the parent (worker start-up) or switch them off (None)."""
    global _announce, _seconds
    _announce, _seconds = announce, seconds


@contextlib.contextmanager
def native_call(parser: str) -> Iterator[None]:
    """Run the body under the native-parser time limit (enforced by the parent in a worker)."""
    announce = _announce
    if announce is None:
        yield
        return
    announce(parser, _seconds)
    try:
        yield
    finally:
        announce(None, 0.0)
