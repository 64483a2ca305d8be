"""The advisories package's data tables (under `data/`), each parsed once."""
from __future__ import annotations

import fnmatch
import functools
import json
import posixpath
import sys
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping

from packaging.utils import canonicalize_name

from modelshield.scanner.datafiles import tomllib

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable


def path(*parts: str) -> Traversable:
    """A file or folder under advisories/data/."""
    return resources.files("modelshield.advisories").joinpath("data", *parts)


@functools.lru_cache(maxsize=None)
def load_toml(name: str) -> dict[str, Any]:
    return tomllib.loads(path(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def load_json(name: str) -> Any:
    return json.loads(path(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def ml_packages() -> dict[str, tuple[str, ...]]:
    """Canonical package name -> the format ids it opens (data/ml_packages.toml)."""
    return {canonicalize_name(name): tuple(entry.get("formats", []))
            for name, entry in load_toml("ml_packages.toml")["package"].items()}


def is_ml_package(name: str) -> bool:
    return canonicalize_name(name) in ml_packages()


def artefact_formats(fmt: str, properties: Mapping[str, object]) -> set[str]:
    """Format ids present in one artefact: its format and the format facts its modules recorded."""
    aliases = load_toml("formats.toml")["property_alias"]
    found = {fmt} if fmt else set()
    for key in properties:
        found.add(aliases.get(key, key))
    return found


def format_matches(wanted: tuple[str, ...] | list[str], present: set[str], path: str) -> list[str]:
    """Which of the `wanted` format ids (or file-name globs such as "*.skops") this file has."""
    base = posixpath.basename(path.replace("\\", "/")).lower()
    return [w for w in wanted if (w.startswith("*") and fnmatch.fnmatchcase(base, w.lower())) or w in present]
