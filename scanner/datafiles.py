"""The package's data tables (TOML files under scanner/data/), each parsed once."""
from __future__ import annotations

import functools
import sys
from importlib import resources
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = ["load", "path", "tomllib"]


def path(*parts: str) -> Traversable:
    """A file or folder under scanner/data/."""
    return resources.files("modelshield.scanner").joinpath("data", *parts)


@functools.lru_cache(maxsize=None)
def load(*parts: str) -> dict[str, Any]:
    """The parsed TOML file scanner/data/<parts...> (cached: treat it as read-only)."""
    return tomllib.loads(path(*parts).read_text(encoding="utf-8"))
