"""The result store inside a scan: a file whose analysis is stored is not analysed again.

`Reuse.lookups` sits between a source's file list and `engine.scan_files`: it hashes each regular
file (SHA-256, one read), asks the store for a batch at once, and replaces every hit by the
stored artefact (moved to this file's path, the policy's suppressions applied for that path,
`from_store` saying where it came from). Misses go on to the scan; `Reuse.record` stores their
analyses afterwards (only those that depend on the bytes alone: `store.storable`).

A store that fails (locked, corrupt, gone) is said once and then left alone: the scan goes on
analysing everything, never trusting a half-read answer.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from typing import Callable, Iterable, Iterator

from .errors import StoreError
from .findings import Artefact
from .policy import Policy
from .store import Entry, ResultStore, StoreKey, storable
from .store.keys import analysis_digest, engine_digest
from .worker.codec import decode_artefact, encode_artefact

FileEntry = tuple[str, str, int]  # (relpath, abspath, size) as sources list them
BATCH = 64  # files hashed per store round trip
_CHUNK = 8 << 20


class Reuse:
    """One scan's use of a store (lookups, then saving what was analysed)."""

    def __init__(self, store: ResultStore, policy: Policy, warn: Callable[[str], None]) -> None:
        self.store, self.policy, self.warn = store, policy, warn
        self.engine, self.policy_digest = engine_digest(), analysis_digest(policy)
        self.failed = False
        self.hits = self.misses = self.saved = 0
        self.keys: dict[str, StoreKey] = {}  # abspath -> key of a file looked up and missed

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
        if not self.failed:
            for i, entry in enumerate(pending):
                if isinstance(entry, Artefact):
                    continue
                digest = _sha256(entry[1])
                if digest is not None:
                    keys[i] = self.key(digest, entry[0])
        found: dict[StoreKey, Entry] = {}
        if keys:
            try:
                found = self.store.get_many(list(keys.values()))
            except StoreError as exc:
                self._fail(exc)
        for i, entry in enumerate(pending):
            key = keys.get(i)
            hit = found.get(key) if key is not None else None
            artefact = self.restore(hit, entry[0], entry[1]) if hit is not None and not isinstance(entry, Artefact) \
                else None
            if artefact is not None:
                self.hits += 1
                if progress:
                    progress("advance", artefact.path, artefact.size)
                yield artefact
                continue
            if key is not None and not isinstance(entry, Artefact):
                self.keys[entry[1]] = key
                self.misses += 1
            yield entry

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
        self.hits += 1
        return artefact

    def restore(self, hit: Entry, relpath: str, abspath: str | None, how: str = "sha256 of the bytes read now"
                ) -> Artefact | None:
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
                self.saved += len(entries[i:i + 500])
        except StoreError as exc:
            self._fail(exc)


def _sha256(path: str) -> str | None:
    """SHA-256 of a regular file (None for anything else or an error: the scan reports those)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, _CHUNK, offset):
            h.update(chunk)
            offset += len(chunk)
        return h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
