"""Hard limits by construction: each artefact is analysed in a worker process the parent can kill.

The budgets in `budgets.py` are checks inside Python code; a C parser (HDF5, a decompressor) or a
structure that grows per element escapes them. So the analysis of each file (never its hashing,
which stays in the scanning process) runs in a long-lived worker process whose address space is
capped (`max_memory`, RLIMIT_AS) and which the parent kills past `max_seconds` (or past
`max_native_seconds` inside a native parser call, see `native.py`). A worker that dies or is
killed yields an inconclusive artefact naming the limit (MS-LIM-001 memory, MS-LIM-002 time,
MS-LIM-003 crash); the scan goes on with a fresh worker.

The API is one small function and the pool behind it::

    artefact = analyse_file("model.pkl", "model.pkl", policy)   # one file, one-off pool

    with WorkerPool(policy, size=2) as pool:                    # many files
        job = pool.submit(fd, "model.pkl")                      # fd: an open regular file
        outcome = pool.wait(job)                                # Outcome(artefact, peak_rss, ...)

The worker reads the file through the descriptor the parent opened (passed over a Unix socket),
by positioned reads from the page cache while the parent streams the same file into the hashers:
each byte still comes from disk once. Results come back as tagged JSON (`codec.py`), never pickles.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .native import native_call
from .pool import Job, Outcome, WorkerPool

if TYPE_CHECKING:
    from ..findings import Artefact
    from ..policy import Policy

__all__ = ["analyse_file", "native_call", "available", "Job", "Outcome", "WorkerPool"]


def available() -> bool:
    """Whether worker processes can run here (fork and Unix sockets: Linux, macOS)."""
    import socket

    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket.socket, "sendmsg")


def analyse_file(path: str, relpath: str, policy: "Policy") -> "Artefact":
    """Analyse one file in a worker under the policy's limits (no hashes); the artefact it yields."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with WorkerPool(policy) as pool:
            outcome = pool.wait(pool.submit(fd, relpath, os.path.abspath(path)))
    finally:
        os.close(fd)
    outcome.artefact.absolute_path = path
    return outcome.artefact
