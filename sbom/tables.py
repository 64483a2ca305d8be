"""The sbom package's data tables (TOML files under `data/`), loaded once."""
from __future__ import annotations

import functools
import sys
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """Parse `data/<name>.toml` of this package."""
    text = (resources.files(__package__) / "data" / f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _suffix(path: str) -> str:
    base = path.rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def file_flags(fmt: str, path: str) -> dict[str, bool]:
    """BSI executable/archive/structured flags for a file of scanner format `fmt` at `path`."""
    table = load("file_kinds")
    flags = table["format"].get(fmt)
    if flags is None:
        flags = table["suffix"].get(_suffix(path), {})
    return {k: bool(flags.get(k, False)) for k in ("executable", "archive", "structured")}


def loader_distributions(fmt: str, path: str) -> list[str]:
    """Python distributions that would load such a file (by format, then file name, then suffix)."""
    table = load("loaders")
    base = path.rsplit("/", 1)[-1].lower()
    return list(table["format"].get(fmt) or table["filename"].get(base) or table["suffix"].get(_suffix(path), []))


def library_distributions(library_name: str) -> list[str]:
    """Distributions behind a Hub `library_name`."""
    return list(load("loaders")["library_name"].get(library_name, []))
