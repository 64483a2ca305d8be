"""The one sequential read of a file: SHA-256 and SHA-512 in two threads, overlapping the analysis.

The reader thread reads fixed-size chunks with os.pread and hashes SHA-256 itself; a second
thread hashes SHA-512 from a bounded queue (SHA-512 is the slower digest on CPUs with SHA
extensions, so it gets a thread of its own and the read goes with the faster one). hashlib
releases the GIL on large updates, so the two digests run on both cores while the format module
does its few positioned reads in the caller's thread. Memory is bounded by QUEUE_DEPTH chunks.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

CHUNK = 8 << 20
QUEUE_DEPTH = 4


@dataclass
class Digests:
    sha256: str | None = None
    sha512: str | None = None
    # hash_while: set once both threads are done (the caller may do other work until then)
    hashed: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)


@contextlib.contextmanager
def hash_while(fd: int, on_bytes: Callable[[int], None] | None = None) -> Iterator[Digests]:
    """Hash the file behind `fd` in the background while the body runs; digests filled on exit.

    Raises OSError on exit if the read failed.
    """
    out = Digests()
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
    errors: list[BaseException] = []
    stop = threading.Event()

    def hash512() -> None:
        while (chunk := chunks.get()) is not None:
            sha512.update(chunk)
        out.hashed.set()  # the reader's end marker came last

    def read() -> None:
        offset = 0
        try:
            while not stop.is_set():
                chunk = os.pread(fd, CHUNK, offset)
                if not chunk:
                    break
                offset += len(chunk)
                chunks.put(chunk)
                sha256.update(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
        finally:
            chunks.put(None)

    t512 = threading.Thread(target=hash512, name="sha512", daemon=True)
    reader = threading.Thread(target=read, name="read+sha256", daemon=True)
    t512.start()
    reader.start()
    try:
        yield out
    except BaseException:
        stop.set()
        raise
    finally:
        reader.join()
        t512.join()
    if errors:
        raise errors[0]
    out.sha256, out.sha512 = sha256.hexdigest(), sha512.hexdigest()


INLINE_MAX = 1 << 20  # files up to this size are hashed in the calling thread (no thread start-up)


def hash_inline(fd: int, on_bytes: Callable[[int], None] | None = None) -> Digests:
    """Hash a small file in the calling thread (one positioned read per CHUNK, usually one)."""
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        offset += len(chunk)
        sha256.update(chunk)
        sha512.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return Digests(sha256.hexdigest(), sha512.hexdigest())


def read_inline(fd: int, on_bytes: Callable[[int], None] | None = None) -> tuple[bytes, Digests]:
    """A small file's whole content and its digests (one positioned read per CHUNK, usually one):
    the content then goes to a worker in the job message instead of the descriptor."""
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    chunks = []
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        offset += len(chunk)
        sha256.update(chunk)
        sha512.update(chunk)
        chunks.append(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return data, Digests(sha256.hexdigest(), sha512.hexdigest())


def hash_file(path: str) -> Digests:
    """SHA-256 and SHA-512 of a file (same single read), without analysis."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with hash_while(fd) as digests:
            pass
    finally:
        os.close(fd)
    return digests
