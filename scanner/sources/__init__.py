"""Targets -> files on disk plus provenance. One module per kind of source.

`resolve(target)` picks the source by the target's form: `hf://...` (Hub repo), `http(s)://...`
(single file URL), an HF cache folder, or a local path.
"""
from __future__ import annotations

from types import ModuleType

from .interface import Resolved, SourceOptions


# (module, the target prefixes it takes, or () when it decides by looking at the target), in order
_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (("hf", ("hf://",)), ("url", ("https://", "http://")),
                                                     ("hf_cache", ()))


def resolve(target: str, options: SourceOptions | None = None) -> Resolved:
    """Turn a target string into files to scan (errors become `result.error`, never exceptions)."""
    from . import local

    for name, prefixes in _SOURCES:
        if prefixes and not target.startswith(prefixes):
            continue  # not imported for targets it cannot take (the Hub client is a slow import)
        module = _optional(name)
        if module is not None and module.accepts(target):
            return module.resolve(target, options or SourceOptions())
    return local.resolve(target, options or SourceOptions())


def _optional(name: str) -> ModuleType | None:
    import importlib

    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(f"sources.{name}"):
            return None
        raise
