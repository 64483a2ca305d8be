"""Pick the dependency source for a `--requirements` file (by its name) or `--python` interpreter."""
from __future__ import annotations

from pathlib import Path

from .environment import CurrentEnvironment, Interpreter
from .interface import DependencySource, Runtime
from .errors import InputError
from .lockfiles import PoetryLock, Pyproject, PyLock, UvLock
from .requirements import RequirementsFile


def source_for(path: Path) -> DependencySource:
    """uv.lock, poetry.lock, pylock*.toml, pyproject.toml by name; anything else is requirements.txt."""
    name = Path(path).name.lower()
    if name == "uv.lock":
        return UvLock(path)
    if name == "poetry.lock":
        return PoetryLock(path)
    if name.startswith("pylock.") and name.endswith(".toml"):
        return PyLock(path)
    if name == "pyproject.toml":
        return Pyproject(path)
    if Path(path).is_dir():
        raise InputError(f"--requirements {path}: a folder (give requirements.txt, pyproject.toml, uv.lock, "
                         "poetry.lock or pylock.toml)")
    return RequirementsFile(path)


def load_runtime(requirements: list[Path] | None = None, python: Path | None = None) -> Runtime:
    """The runtime from the given files (several combine), else `--python`, else this environment."""
    if requirements:
        parts = [source_for(p).collect() for p in requirements]
        if python is not None:
            parts.append(Interpreter(python).collect())
        return Runtime(packages=[p for r in parts for p in r.packages], source=", ".join(r.source for r in parts),
                       notes=[n for r in parts for n in r.notes])
    if python is not None:
        return Interpreter(python).collect()
    return CurrentEnvironment().collect()
