"""What every result-store backend provides (sqlite, postgres)."""
from __future__ import annotations

import abc
import datetime as _dt
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

from ..errors import StoreError
from .keys import FileId, StoreKey

__all__ = ["Entry", "ResultStore", "StoreError"]


@dataclass
class Entry:
    """One stored analysis: the key, the artefact's analysis as JSON bytes, when it was made and last used."""

    key: StoreKey
    payload: bytes
    size: int = 0  # of the analysed file
    created: float = 0.0  # POSIX time of the analysis
    used: float = 0.0  # POSIX time of the last lookup that hit it


class ResultStore(abc.ABC):
    """A mapping StoreKey -> Entry shared by concurrent scans (processes, Ray workers)."""

    location: str  # for messages: the file path, or the URL without its password

    def get(self, key: StoreKey) -> Entry | None:
        """The entry for `key`, or None; marks it used."""
        return self.get_many([key]).get(key)

    @abc.abstractmethod
    def get_many(self, keys: list[StoreKey]) -> dict[StoreKey, Entry]:
        """The entries found among `keys` (one round trip); marks them used."""

    @abc.abstractmethod
    def put(self, entries: list[Entry]) -> None:
        """Store `entries` (a newer analysis of the same key replaces the old one)."""

    @abc.abstractmethod
    def known_digests(self, host: str, files: list[FileId]) -> dict[FileId, str]:
        """The SHA-256 recorded on `host` for each of `files` whose identity is unchanged."""

    @abc.abstractmethod
    def remember_digests(self, host: str, digests: list[tuple[FileId, str]]) -> None:
        """Record the SHA-256 of files hashed on `host` (replacing what was recorded for their paths)."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts: entries, distinct hashes, engines, policies, payload bytes, oldest/newest."""

    @abc.abstractmethod
    def entries(self) -> Iterator[Entry]:
        """Every entry (for export), oldest first."""

    @abc.abstractmethod
    def gc(self, older_than: _dt.timedelta, engine: str | None = None) -> int:
        """Delete entries not used for `older_than` (and, given `engine`, those made by any other
        engine), and file digests not seen for as long; returns how many entries were deleted."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def export(self, out: IO[str]) -> int:
        """Write every entry as one JSON line (key, dates, analysis); returns the count."""
        import json

        n = 0
        for entry in self.entries():
            record = {**entry.key._asdict(),
                      "size": entry.size, "created": _iso(entry.created), "used": _iso(entry.used),
                      "analysis": json.loads(entry.payload.decode("utf-8", "surrogatepass"))}
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
        return n

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unchanged(files: list[FileId], rows: Iterable[tuple[Any, ...]]) -> dict[FileId, str]:
    """The recorded digests of `files` from rows (path, dev, ino, size, mtime_ns, ctime_ns, sha256)
    whose identity matches the file's now."""
    wanted = set(files)
    out = {}
    for *identity, sha256 in rows:
        fid = FileId(*identity)
        if fid in wanted:
            out[fid] = sha256
    return out


def by_engine_and_policy(keys: list[StoreKey]) -> dict[tuple[str, str], list[str]]:
    """The keys' distinct hashes (sorted) per (engine, policy): one query per group."""
    groups: dict[tuple[str, str], set[str]] = {}
    for k in keys:
        groups.setdefault((k.engine, k.policy), set()).add(k.sha256)
    return {group: sorted(hashes) for group, hashes in groups.items()}


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
