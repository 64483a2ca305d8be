"""What every source returns: the files to scan and a TargetResult carrying provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..findings import Artefact, TargetResult


@dataclass
class SourceOptions:
    """How remote sources fetch: filters, size cap, cache location, offline mode."""

    include: list[str] = field(default_factory=list)  # globs; empty = everything
    exclude: list[str] = field(default_factory=list)
    max_download: int | None = None  # bytes
    cache_dir: str | None = None  # default: the standard HF cache / a temp folder for URLs
    offline: bool | None = None  # None: follow HF_HUB_OFFLINE
    include_vcs: bool = False  # local folders: also scan .git/, .hg/... (skipped by default)
    # the result store, for sources that know a file's SHA-256 before fetching it (the Hub's LFS
    # files): (path, sha256, size) -> the stored analysis of those bytes, or None (set by the engine)
    reuse: Callable[[str, str, int | None], Artefact | None] | None = None


@dataclass
class Resolved:
    """Files of a target: (path relative to the target root, absolute path, size).

    `files` may be a lazy iterator (e.g. yielding each file as soon as its download finished, so
    scanning starts before the whole repo is fetched); set `total_bytes` for progress when known.
    """

    result: TargetResult
    files: Iterable[tuple[str, str, int]] = field(default_factory=list)
    total_bytes: int | None = None
    # Called after every file was scanned (e.g. compare our hashes with the Hub's, clean temp files).
    finish: Callable[[TargetResult], None] | None = None
