"""pyproject.toml dependencies, uv.lock, poetry.lock and pylock.toml (PEP 751).

Lock files pin every package with its artefact hashes; pyproject.toml states ranges (unknown
versions unless pinned exactly). Poetry's own `[tool.poetry.dependencies]` syntax ("^1.2",
"~1.2", "1.2.*") is read as poetry defines it: only a bare version or "==X" is a pin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelshield.scanner.datafiles import tomllib
from modelshield.scanner.findings import RuntimePackage
from .interface import DependencySource, Runtime, as_dict, pypi_purl
from .errors import InputError
from .matching import parse_version
from .requirements import RequirementsFile, pinned_version, read_text


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None


def _hashes(items: Any) -> list[str]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            value = item.get("hash")
            if isinstance(value, str):
                out.append(value)
            elif isinstance(item.get("hashes"), dict):  # pylock.toml
                out += [f"{alg}:{digest}" for alg, digest in sorted(item["hashes"].items())]
    return out


def _locked(name: Any, version: Any, source: str, hashes: list[str]) -> RuntimePackage | None:
    if not isinstance(name, str) or not name:
        return None
    ver = version if isinstance(version, str) and parse_version(version) is not None else None
    return RuntimePackage(name=canonicalize_name(name), version=ver,
                          source=source if ver else f"{source} (no PEP 440 version: {version!r})",
                          purl=pypi_purl(name, ver) if ver else None, hashes=hashes)


class UvLock(DependencySource):
    def __init__(self, path: Path):
        self.path = Path(path)

    def collect(self) -> Runtime:
        data = _toml(self.path)
        if not isinstance(data.get("package"), list):
            raise InputError(f"{self.path}: no [[package]] tables (not a uv.lock)")
        runtime = Runtime(packages=[], source=f"uv.lock:{self.path}")
        for pkg in data["package"]:
            if not isinstance(pkg, dict):
                continue
            src = as_dict(pkg.get("source"))
            if "editable" in src or "virtual" in src:  # the project itself
                continue
            hashes = _hashes(pkg.get("wheels")) + _hashes([pkg.get("sdist")] if pkg.get("sdist") else [])
            item = _locked(pkg.get("name"), pkg.get("version"), self.path.name, hashes)
            if item:
                runtime.packages.append(item)
        return runtime


class PoetryLock(DependencySource):
    def __init__(self, path: Path):
        self.path = Path(path)

    def collect(self) -> Runtime:
        data = _toml(self.path)
        if not isinstance(data.get("package"), list):
            raise InputError(f"{self.path}: no [[package]] tables (not a poetry.lock)")
        runtime = Runtime(packages=[], source=f"poetry.lock:{self.path}")
        for pkg in data["package"]:
            if isinstance(pkg, dict):
                item = _locked(pkg.get("name"), pkg.get("version"), self.path.name, _hashes(pkg.get("files")))
                if item:
                    runtime.packages.append(item)
        return runtime


class PyLock(DependencySource):
    """PEP 751 `pylock.toml` / `pylock.*.toml`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def collect(self) -> Runtime:
        data = _toml(self.path)
        if not isinstance(data.get("packages"), list):
            raise InputError(f"{self.path}: no [[packages]] tables (not a pylock.toml)")
        runtime = Runtime(packages=[], source=f"pylock:{self.path}")
        for pkg in data["packages"]:
            if isinstance(pkg, dict):
                sdist = [pkg["sdist"]] if isinstance(pkg.get("sdist"), dict) else []
                hashes = _hashes(pkg.get("wheels")) + _hashes(sdist)
                item = _locked(pkg.get("name"), pkg.get("version"), self.path.name, hashes)
                if item:
                    runtime.packages.append(item)
        return runtime


class Pyproject(DependencySource):
    """[project] dependencies and optional-dependencies, [dependency-groups], Poetry's tables."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def collect(self) -> Runtime:
        data = _toml(self.path)
        runtime = Runtime(packages=[], source=f"pyproject:{self.path}")
        project = as_dict(data.get("project"))
        lines: list[tuple[str, str]] = [(d, "project.dependencies") for d in project.get("dependencies") or []]
        for extra, deps in (project.get("optional-dependencies") or {}).items():
            lines += [(d, f"project.optional-dependencies.{extra}") for d in deps or []]
        for group, deps in (data.get("dependency-groups") or {}).items():
            lines += [(d, f"dependency-groups.{group}") for d in deps or [] if isinstance(d, str)]
        reader = RequirementsFile(self.path)
        for text, where in lines:
            if isinstance(text, str):
                reader._requirement(text, f"{self.path.name} {where}", [], runtime, {}, False)
        poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
        tables = [("tool.poetry.dependencies", poetry.get("dependencies"))]
        for group, body in (poetry.get("group") or {}).items():
            tables.append((f"tool.poetry.group.{group}.dependencies", (body or {}).get("dependencies")))
        for where, deps in tables:
            for name, spec in (deps or {}).items():
                if canonicalize_name(name) == "python":
                    continue
                runtime.packages.append(_poetry_dependency(name, spec, f"{self.path.name} {where}"))
        return runtime


def _poetry_dependency(name: str, spec: Any, where: str) -> RuntimePackage:
    text = spec.get("version") if isinstance(spec, dict) else spec
    version = None
    if isinstance(text, str):
        text = text.strip()
        if parse_version(text) is not None:  # poetry: a bare version is an exact pin
            version = text
        else:
            try:
                version = pinned_version(Requirement(f"{name}{text}"))
            except InvalidRequirement:
                version = None
    return RuntimePackage(name=canonicalize_name(name), version=version,
                          source=where if version else f"{where} (not pinned: {text!r})",
                          purl=pypi_purl(name, version) if version else None)
