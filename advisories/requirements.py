"""requirements.txt (pip's format): pins, hashes, markers, `-r`/`-c` includes, editable and URL
requirements. Each line is parsed with `packaging.requirements`; only an exact pin (`==X` without
a wildcard, or `===X`) gives a version: everything else is unknown, never guessed."""
from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from modelshield.scanner.findings import RuntimePackage
from .interface import DependencySource, Runtime, pypi_purl
from .errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 20
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_HASH = re.compile(r"--hash[=\s]+(\S+)")
_IGNORED_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--pre",
                    "--trusted-host", "--prefer-binary", "--require-hashes", "--no-binary", "--only-binary",
                    "--use-feature", "--config-settings", "-Z", "--always-unzip")


def read_text(path: Path) -> str:
    """A small text file, or InputError with a one-line reason."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with `\\` continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        joined = buffer + line
        buffer = ""
        joined = re.sub(r"(^|\s)#.*$", "", joined).strip()
        if joined:
            out.append((start, joined))
    if buffer.strip():
        out.append((start, re.sub(r"(^|\s)#.*$", "", buffer).strip()))
    return out


def pinned_version(req: Requirement) -> str | None:
    """The version of an exact pin, else None."""
    specs = list(req.specifier)
    if len(specs) != 1:
        return None
    spec = specs[0]
    if spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*")):
        return spec.version
    return None


class RequirementsFile(DependencySource):
    def __init__(self, path: Path):
        self.path = Path(path)

    def collect(self) -> Runtime:
        runtime = Runtime(packages=[], source=f"requirements:{self.path}")
        constraints: dict[str, str] = {}
        self._read(self.path, runtime, constraints, depth=0, seen=set(), constraint=False)
        for pkg in runtime.packages:  # a -c constraint pins what a requirement left open
            if pkg.version is None and canonicalize_name(pkg.name) in constraints:
                pkg.version = constraints[canonicalize_name(pkg.name)]
                pkg.source += " (pinned by a constraint)"
                pkg.purl = pypi_purl(pkg.name, pkg.version)
        return runtime

    def _read(self, path: Path, runtime: Runtime, constraints: dict[str, str], *, depth: int,
              seen: set[Path], constraint: bool) -> None:
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: includes nested more than {MAX_DEPTH} deep")
        real = path.resolve()
        if real in seen:
            runtime.notes.append(f"{path}: included twice (include loop); read once")
            return
        seen.add(real)
        for number, line in logical_lines(read_text(path)):
            where = f"{path.name}:{number}"
            option, _, rest = line.partition(" ")
            if option in ("-r", "--requirement", "-c", "--constraint") or \
                    option.startswith(("--requirement=", "--constraint=")):
                target = (rest if " " in line and "=" not in option else option.split("=", 1)[1]).strip()
                if not target:
                    raise InputError(f"{where}: {option} needs a file name")
                self._read(path.parent / target, runtime, constraints, depth=depth + 1, seen=seen,
                           constraint=constraint or option.lstrip("-").startswith("c"))
                continue
            if option in ("-e", "--editable") or option.startswith("--editable="):
                target = rest.strip() or option.partition("=")[2]
                egg = re.search(r"#egg=([A-Za-z0-9._-]+)", target)
                name = egg.group(1) if egg else target
                runtime.packages.append(RuntimePackage(name=canonicalize_name(name) if egg else name, version=None,
                                                       source=f"{where} (editable)", purl=None))
                continue
            if line.startswith("-"):
                if option.split("=", 1)[0] not in _IGNORED_OPTIONS:
                    runtime.notes.append(f"{where}: option {option.split('=', 1)[0]} ignored")
                continue
            hashes = _HASH.findall(line)
            text = _HASH.sub("", line).strip()
            self._requirement(text, where, hashes, runtime, constraints, constraint)

    def _requirement(self, text: str, where: str, hashes: list[str], runtime: Runtime,
                     constraints: dict[str, str], constraint: bool) -> None:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            name = _NAME.match(text)
            runtime.notes.append(f"{where}: unparseable requirement ({str(exc).splitlines()[0]})")
            if name and not constraint:
                runtime.packages.append(RuntimePackage(name=canonicalize_name(name.group(1)), version=None,
                                                       source=f"{where} (unparseable)", hashes=hashes))
            return
        if req.marker is not None:
            try:
                applies = req.marker.evaluate()
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                applies = True
            if not applies:
                runtime.notes.append(f"{where}: {req.name} excluded by its marker ({req.marker}) on this platform")
                return
        version = pinned_version(req)
        if version is None and req.url:
            version = _wheel_version(req.url)
        if constraint:
            if version is not None:
                constraints[canonicalize_name(req.name)] = version
            return
        unpinned = f"{where} (not pinned: {req.specifier or req.url or 'any version'})"
        runtime.packages.append(RuntimePackage(name=canonicalize_name(req.name), version=version,
                                               source=where if version else unpinned,
                                               purl=pypi_purl(req.name, version) if version else None,
                                               hashes=[h if ":" in h else f"sha256:{h}" for h in hashes]))


def _wheel_version(url: str) -> str | None:
    name = url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith(".whl"):
        return None
    try:
        return str(parse_wheel_filename(name)[1])
    except InvalidWheelFilename:
        return None
