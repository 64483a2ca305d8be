"""The result store inside a scan: a file whose analysis is stored is not analysed again.

`Reuse.lookups` sits between a source's file list and `engine.scan_files`: it finds each regular
file's SHA-256 (recorded in the store for the file's unchanged stat identity, else one read that
is recorded when the file was quiet), asks the store for a batch at once, and replaces every hit by the
stored artefact (moved to this file's path, the policy's suppressions applied for that path,
`from_store` saying where it came from). Misses go on to the scan; `Reuse.record` stores their
analyses afterwards (only those that depend on the bytes alone: `store.storable`).

A store that fails (locked, corrupt, gone) is said once and then left alone: the scan goes on
analysing everything, never trusting a half-read answer.
"""
from __future__ import annotations

import hashlib
import os
import socket
import stat
import time
from typing import Callable, Iterable, Iterator

from .errors import StoreError
from .findings import Artefact
from .policy import Policy
from .store import Entry, ResultStore, StoreKey, storable
from .store.keys import FileId
from .store.keys import analysis_digest, engine_digest
from .worker.codec import decode_artefact, encode_artefact

FileEntry = tuple[str, str, int]  # (relpath, abspath, size) as sources list them
BATCH = 64  # files hashed per store round trip
_CHUNK = 8 << 20
QUIET_NS = 2_000_000_000  # a file changed this recently is hashed again next time (timestamps are coarse)
HOST = socket.gethostname()  # digests recorded by file identity are this machine's
READ = "sha256 of the bytes read now"
UNREAD = ("sha256 recorded for this file when it had the same device, inode, size, modification and "
          "change times (not read again)")


class Reuse:
    """One scan's use of a store (lookups, then saving what was analysed)."""

    def __init__(self, store: ResultStore, policy: Policy, warn: Callable[[str], None]) -> None:
        self.store, self.policy, self.warn = store, policy, warn
        self.engine, self.policy_digest = engine_digest(), analysis_digest(policy)
        self.failed = False

    def key(self, sha256: str, relpath: str) -> StoreKey:
        return StoreKey(sha256.lower(), relpath.replace("\\", "/"), self.engine, self.policy_digest)

    def _fail(self, exc: StoreError) -> None:
        if not self.failed:
            self.warn(f"{exc}; going on without it")
        self.failed = True

    # ------------------------------------------------------------------ lookups
    def lookups(self, entries: Iterable[FileEntry | Artefact],
                progress: Callable[[str, str, int], None] | None = None) -> Iterator[FileEntry | Artefact]:
        """`entries` in order, each file with a stored analysis replaced by that artefact."""
        pending: list[FileEntry | Artefact] = []
        for entry in entries:
            pending.append(entry)
            if len(pending) >= BATCH:
                yield from self._resolve(pending, progress)
                pending = []
        yield from self._resolve(pending, progress)

    def _resolve(self, pending: list[FileEntry | Artefact],
                 progress: Callable[[str, str, int], None] | None) -> Iterator[FileEntry | Artefact]:
        keys: dict[int, StoreKey] = {}
        unread: set[int] = set()  # files whose SHA-256 the store recorded for their unchanged identity
        if not self.failed:
            files = {i: (entry[0], fid) for i, entry in enumerate(pending)
                     if not isinstance(entry, Artefact) and (fid := _identity(entry[1])) is not None}
            known = self._known([fid for _, fid in files.values()])
            fresh: list[tuple[FileId, str]] = []
            for i, (relpath, fid) in files.items():
                digest = known.get(fid)
                if digest is not None:
                    unread.add(i)
                else:
                    digest, quiet = _sha256(fid)
                    if digest is not None and quiet:
                        fresh.append((fid, digest))
                if digest is not None:
                    keys[i] = self.key(digest, relpath)
            self._remember(fresh)
        found: dict[StoreKey, Entry] = {}
        if keys and not self.failed:
            try:
                found = self.store.get_many(list(keys.values()))
            except StoreError as exc:
                self._fail(exc)
        for i, entry in enumerate(pending):
            key = keys.get(i)
            hit = found.get(key) if key is not None else None
            artefact = None
            if hit is not None and not isinstance(entry, Artefact):
                artefact = self.restore(hit, entry[0], entry[1], UNREAD if i in unread else READ)
            if artefact is not None:
                if progress:
                    progress("advance", artefact.path, artefact.size)
                yield artefact
                continue
            yield entry

    def _known(self, files: list[FileId]) -> dict[FileId, str]:
        if not files or self.failed:
            return {}
        try:
            return self.store.known_digests(HOST, files)
        except StoreError as exc:
            self._fail(exc)
            return {}

    def _remember(self, digests: list[tuple[FileId, str]]) -> None:
        if digests and not self.failed:
            try:
                self.store.remember_digests(HOST, digests)
            except StoreError as exc:
                self._fail(exc)

    def published(self, relpath: str, sha256: str, size: int | None) -> Artefact | None:
        """The stored analysis of a file a source has not fetched yet, by the SHA-256 it publishes."""
        if self.failed:
            return None
        key = self.key(sha256, relpath)
        try:
            hit = self.store.get_many([key]).get(key)
        except StoreError as exc:
            self._fail(exc)
            return None
        artefact = self.restore(hit, relpath, None, "sha256 published for this revision; not downloaded") \
            if hit is not None else None
        if artefact is None or (size is not None and artefact.size != size):
            return None
        return artefact

    def restore(self, hit: Entry, relpath: str, abspath: str | None, how: str = READ) -> Artefact | None:
        """The stored artefact as the one at `relpath` (None when the payload does not decode)."""
        try:
            artefact = decode_artefact(hit.payload)
        except ValueError:
            return None  # a damaged entry is a miss: the file is analysed again
        if artefact.sha256 != hit.key.sha256:
            return None
        artefact.path, artefact.absolute_path = relpath, abspath
        for finding in artefact.findings:
            finding.location.path = relpath
            for site in finding.sites:
                site.path = relpath
        self.policy.apply_suppressions(artefact.findings, relpath)
        artefact.from_store = {"store": self.store.location, "analysed": _iso(hit.created), "verified": how}
        return artefact

    # ------------------------------------------------------------------ saving
    def record(self, artefacts: Iterable[Artefact]) -> None:
        """Store the analyses of the artefacts scanned just now (not those that came from the store)."""
        if self.failed:
            return
        entries = []
        for a in artefacts:
            if a.from_store is not None or not storable(a) or a.sha256 is None:
                continue
            if any("expired_suppression" in f.evidence for f in a.findings):
                continue  # the message carries this scan's policy note
            entries.append(Entry(self.key(a.sha256, a.path), encode_artefact(a), size=a.size, created=time.time()))
        try:
            for i in range(0, len(entries), 500):
                self.store.put(entries[i:i + 500])
        except StoreError as exc:
            self._fail(exc)


def _identity(path: str) -> FileId | None:
    """The regular file at `path` as stat sees it (None for anything else: the scan reports those)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileId(os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _sha256(fid: FileId) -> tuple[str | None, bool]:
    """(SHA-256 of the file, whether it was quiet while read): quiet means the same identity
    before and after the read, and no change for QUIET_NS before it, so that a write racing the
    read within one timestamp tick cannot leave a digest recorded for bytes that are not there."""
    try:
        fd = os.open(fid.path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None, False
    try:
        start = time.time_ns()
        if _fid(fid.path, os.fstat(fd)) != fid:
            return None, False  # replaced since it was listed: the scan reads it afresh
        h = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, _CHUNK, offset):
            h.update(chunk)
            offset += len(chunk)
        quiet = _fid(fid.path, os.fstat(fd)) == fid and max(fid.mtime_ns, fid.ctime_ns) < start - QUIET_NS
        return h.hexdigest(), quiet
    except OSError:
        return None, False
    finally:
        os.close(fd)


def _fid(path: str, st: os.stat_result) -> FileId:
    return FileId(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
