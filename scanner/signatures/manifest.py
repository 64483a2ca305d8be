"""The model folder as OMS serialises it, and its comparison with a signed manifest.

Serialisation (model_signing's, reproduced): every regular file under the folder, recursively,
named by its POSIX path relative to the folder, except paths under an ignored path (whole
segments: `.git` covers `.git/config`, not `.github`); a symbolic link is an error unless the
signature allows links (then the file it points to is hashed). `files` hashes each file whole;
`shards` hashes `[start, end)` slices of `shard_size` bytes (`path:start:end`; empty files have
no shard).

Digests come from a `DigestSource`: during a scan, the SHA-256 the file pass already computed
for the report (no second read); otherwise, or for shards and other hash types, the file is read
again in fixed-size chunks (memory bounded) and the bytes re-read are counted and reported.
Nothing outside the folder is ever read: a link leaving it cannot be checked.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import importlib
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .statement import Statement

CHUNK = 8 << 20


@dataclass
class Entry:
    """One path of the folder listing."""

    rel: str
    kind: str  # "file" | "symlink" | "outside" (a link leaving the folder) | "special" | "unavailable"
    path: str | None = None  # where to read it (None: nothing to read here)
    size: int = 0
    sha256: str | None = None  # known already (the scan's file pass)


@dataclass
class Listing:
    """What the folder holds, for the comparison."""

    entries: dict[str, Entry] = field(default_factory=dict)
    reread_bytes: int = 0


def walk(root: str, cache_links: bool = False) -> Listing:
    """List `root` the way OMS serialisation walks it (metadata only; no content is read).

    `cache_links`: an HF cache snapshot, whose files are links into `blobs/` by construction;
    those links stand for the repo's regular files.
    """
    listing = Listing()
    boundary = os.path.realpath(root)
    repo_dir = os.path.dirname(os.path.dirname(boundary)) if cache_links else boundary
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            items = list(os.scandir(folder))
        except OSError:
            continue
        for item in items:
            rel = os.path.relpath(item.path, root).replace(os.sep, "/")
            try:
                if item.is_symlink():
                    real = os.path.realpath(item.path)
                    inside = real.startswith((boundary if not cache_links else repo_dir) + os.sep)
                    if os.path.isdir(real):
                        continue  # OMS neither descends into nor hashes a link to a folder
                    if not inside:
                        listing.entries[rel] = Entry(rel, "outside")
                    elif cache_links and os.path.isfile(real):
                        listing.entries[rel] = Entry(rel, "file", item.path, os.path.getsize(real))
                    elif os.path.isfile(real):
                        listing.entries[rel] = Entry(rel, "symlink", item.path, os.path.getsize(real))
                    else:
                        listing.entries[rel] = Entry(rel, "special")
                elif item.is_dir(follow_symlinks=False):
                    todo.append(item.path)
                elif item.is_file(follow_symlinks=False):
                    listing.entries[rel] = Entry(rel, "file", item.path, item.stat(follow_symlinks=False).st_size)
                else:
                    listing.entries[rel] = Entry(rel, "special")
            except OSError:
                listing.entries[rel] = Entry(rel, "unavailable")
    return listing


def normalise_ignores(paths: Iterable[str]) -> list[str]:
    """Ignore entries as relative POSIX paths; entries leaving the folder are dropped (as OMS does)."""
    out = []
    for p in paths:
        norm = posixpath.normpath(p.replace("\\", "/")) if p else "."
        if norm.startswith(("/", "../")) or norm == "..":
            continue
        out.append(norm)
    return out


def ignored(rel: str, ignores: list[str]) -> bool:
    """True when `rel` is an ignored path or lies under one (whole path segments)."""
    return any(i == "." or rel == i or rel.startswith(i + "/") for i in ignores)


def hasher(hash_type: str) -> Callable[[], Any]:
    """A constructor for the statement's hash type; ValueError when unavailable here."""
    if hash_type == "sha256":
        return hashlib.sha256
    if hash_type in ("blake2b", "blake2"):
        return hashlib.blake2b
    if hash_type == "blake3":
        # Imported by name: blake3 is optional and typed only when installed, so a static import
        # would need an ignore that is unused on one of the two kinds of machine.
        try:
            module = importlib.import_module("blake3")
        except ImportError:
            raise ValueError("BLAKE3 digests need the blake3 package (pip install blake3)") from None
        constructor: Callable[[], Any] = module.blake3
        return constructor
    raise ValueError(f"unsupported hash type {hash_type!r}")


def hash_range(path: str, make: Callable[[], Any], start: int = 0, end: int | None = None) -> str:
    """Digest of bytes [start, end) of a file, read in fixed-size chunks."""
    h = make()
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = start
        while end is None or offset < end:
            want = CHUNK if end is None else min(CHUNK, end - offset)
            chunk = os.pread(fd, want, offset)
            if not chunk:
                break
            h.update(chunk)
            offset += len(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) slices of a file of `size` bytes (none for an empty file)."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def local_resources(listing: Listing, statement: Statement, ignores: list[str],
                    workers: int = 2) -> tuple[dict[str, str], list[str]]:
    """name -> digest of the folder's resources per the statement, and the ignored files present.

    Links, links leaving the folder and unreadable entries are skipped here (the comparison
    reports them). Raises ValueError when the hash type is unavailable.
    """
    make = hasher(statement.hash_type)
    digests: dict[str, str] = {}
    uncovered: list[str] = []
    jobs: list[tuple[str, str, int, int | None]] = []
    for rel, entry in sorted(listing.entries.items()):
        if ignored(rel, ignores):
            uncovered.append(rel)
            continue
        if entry.kind not in ("file", "symlink") or entry.path is None:
            continue
        if entry.kind == "symlink" and not statement.allow_symlinks:
            continue
        if statement.method == "files":
            if statement.hash_type == "sha256" and entry.sha256:
                digests[rel] = entry.sha256
            else:
                jobs.append((rel, entry.path, 0, None))
                listing.reread_bytes += entry.size
        else:
            assert statement.shard_size is not None
            for start, end in shard_ranges(entry.size, statement.shard_size):
                jobs.append((f"{rel}:{start}:{end}", entry.path, start, end))
            listing.reread_bytes += entry.size
    if jobs:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(hash_range, path, make, start, end): name for name, path, start, end in jobs}
            for future in concurrent.futures.as_completed(futures):
                try:
                    digests[futures[future]] = future.result()
                except OSError:
                    pass  # reported as missing/changed by the comparison
    return digests, uncovered


@dataclass
class Comparison:
    covered: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # "old -> new"
    symlinks: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        keys = ("changed", "missing", "added", "renamed", "symlinks", "outside", "unreadable")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


def compare(statement: Statement, listing: Listing, actual: dict[str, str], unavailable: set[str],
            ignores: list[str]) -> Comparison:
    """Signed resources against the folder's; `unavailable`: files known to exist but not fetched."""
    out = Comparison()
    expected: dict[str, str] = {}
    for r in statement.resources:
        expected[r.name] = r.digest
    files_of = {_file_of(n, statement.method) for n in expected}
    for rel, entry in sorted(listing.entries.items()):
        if ignored(rel, ignores):
            continue
        if entry.kind == "symlink" and not statement.allow_symlinks:
            out.symlinks.append(rel)
        elif entry.kind == "outside":
            out.outside.append(rel)
        elif entry.kind in ("special", "unavailable"):
            out.unreadable.append(rel)
    present_files = {rel for rel, e in listing.entries.items() if not ignored(rel, ignores)}
    for name, digest in sorted(expected.items()):
        path = _file_of(name, statement.method)
        if path in unavailable:
            if path not in out.unchecked:
                out.unchecked.append(path)
        elif name in actual:
            if actual[name] == digest:
                if path not in out.covered:
                    out.covered.append(path)
            elif path not in out.changed:
                out.changed.append(path)
        elif path not in present_files and path not in out.missing:
            out.missing.append(path)
        elif path in present_files and path not in out.symlinks + out.outside + out.unreadable + out.changed:
            out.changed.append(path)  # present, but its shards differ from the signed ones
    for name in sorted(actual):
        path = _file_of(name, statement.method)
        if path not in files_of and path not in out.added:
            out.added.append(path)
    # An added file whose content is a missing file's: a rename, reported as such.
    by_digest = {expected[n]: _file_of(n, statement.method) for n in expected if statement.method == "files"}
    for path in list(out.added):
        old = by_digest.get(actual.get(path, ""))
        if old is not None and old in out.missing:
            out.renamed.append(f"{old} -> {path}")
            out.added.remove(path)
            out.missing.remove(old)
    out.covered = [p for p in out.covered if p not in out.changed]
    return out


def _file_of(name: str, method: str) -> str:
    if method == "shards":
        head, _, _ = name.rpartition(":")
        return head.rpartition(":")[0] or name
    return name
