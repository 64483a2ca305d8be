"""File-name suffixes that decide what a loader does with a file (data/loader_extensions.toml).

Below the formats and the sources: the dispatcher, the text format and the Hub download ranking
all ask the one table which loader would open a file of a given name.
"""
from __future__ import annotations

import functools

from . import datafiles


@functools.lru_cache(maxsize=1)
def loader_suffixes() -> dict[str, str]:
    """Suffix -> loader that opens such files (data/loader_extensions.toml)."""
    table: dict[str, str] = datafiles.load("loader_extensions.toml")["suffix"]
    return table


def loader_hint(name: str) -> str | None:
    """Which loader would open a file of this name, if any."""
    lower = name.lower()
    for suffix, loader in loader_suffixes().items():
        if lower.endswith(suffix):
            return loader
    return None


@functools.lru_cache(maxsize=1)
def _unpickler_names() -> dict[str, str]:
    table: dict[str, str] = datafiles.load("loader_extensions.toml")["unpickler_names"]
    return table


def decided_by_unpickler(name: str) -> bool:
    """True if every loader this name suggests reads by content, ending in an unpickler at offset 0."""
    lower = name.lower()
    return any(lower.endswith(suffix) for suffix in _unpickler_names())
