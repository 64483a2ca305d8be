"""Hard limits by construction: each artefact is analysed in a worker process the parent can kill.

The budgets in `budgets.py` are checks inside Python code; a C parser (HDF5, a decompressor) or a
structure that grows per element escapes them. So the analysis of each file (never its hashing,
which stays in the scanning process) runs in a long-lived worker process whose address space is
capped (`max_memory`, RLIMIT_AS) and which the parent kills past `max_seconds` (or past
`max_native_seconds` inside a native parser call, see `native.py`). A worker that dies or is
killed yields an inconclusive artefact naming the limit (MS-LIM-001 memory, MS-LIM-002 time,
MS-LIM-003 crash); the scan goes on with a fresh worker.

The API is the pool and the job function it runs (module-level, sent to the workers by name)::

    from modelshield.scanner.engine import analyse_open_file   # the engine's job: fd -> Artefact

    with WorkerPool(policy, analyse_open_file, size=2) as pool:
        job = pool.submit(fd, "model.pkl", "/abs/model.pkl")      # fd: an open regular file
        outcome = pool.wait(job)                                # Outcome(artefact, peak_rss, limit, ...)
        jobs = pool.submit_many([(data, "a.json", None), ...])  # small files, one job; data: their bytes
        outcomes = pool.wait_many(jobs)

`engine.analyse_file(path, relpath, policy)` is the one-file shorthand; `engine.scan(...,
workers=N)` runs a whole scan on N workers. The workers are shared by every pool of the process
(one zygote forks them), so pools are cheap to open and close.

The worker reads a file through the descriptor the parent opened (passed over a Unix socket),
by positioned reads from the page cache while the parent streams the same file into the hashers:
each byte still comes from disk once. A small file the parent has read whole for its hashes
travels as content in the job message instead (cheaper than passing a descriptor). Results come
back as tagged JSON (`codec.py`), never pickles.
"""
from __future__ import annotations

import os

from .native import native_call
from .pool import Analyse, Job, Outcome, WorkerPool

__all__ = ["Analyse", "Job", "Outcome", "WorkerPool", "available", "native_call"]


def available() -> bool:
    """Whether worker processes can run here (fork and Unix sockets: Linux, macOS)."""
    import socket

    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket.socket, "sendmsg")
