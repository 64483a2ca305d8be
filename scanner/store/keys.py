"""Store keys: what an analysis depends on: the bytes, the file name, the engine, the policy."""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..findings import Artefact
    from ..policy import Policy

# Parts of the scanner package that do not change an artefact's analysis (reports, the store).
_NOT_ANALYSIS = {"output", "store", "__pycache__"}
_SUFFIXES = (".py", ".toml", ".json", ".txt")


class FileId(NamedTuple):
    """A file as `stat` sees it: a SHA-256 recorded for the same identity is that file's, unread.

    Any write changes the change time (`ctime`, which no user call can set back), a replaced
    file has another inode: a match on all of these means the bytes hashed then are the bytes
    there now, provided the file was quiet when it was hashed (see `reuse.py`)."""

    path: str  # absolute
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


class StoreKey(NamedTuple):
    """(SHA-256 of the bytes, path in the target, engine digest, analysis-policy digest).

    The path is part of it because analyses read it: identification reads the name (`config.json`
    is a Hugging Face config whose `auto_map` runs code, the same bytes as `data.json` are data),
    a config's folder decides what it refers to, and messages name it."""

    sha256: str
    name: str
    engine: str
    policy: str


@functools.lru_cache(maxsize=1)
def engine_digest() -> str:
    """The version plus every code and data file of the analysers (a changed rule table, allow
    list or parser gives a new digest, so no entry made by the old one is ever read)."""
    from .. import __version__

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return hashlib.sha256(f"modelshield {__version__}\n{tree_digest(root)}".encode()).hexdigest()[:32]


def tree_digest(root: str) -> str:
    """A digest of the analysis code and data under `root` (the scanner package)."""
    h = hashlib.sha256()
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_ANALYSIS]
        files += [os.path.join(folder, n) for n in names if n.endswith(_SUFFIXES)]
    for path in sorted(files):
        with open(path, "rb") as f:
            data = f.read()
        h.update(f"{os.path.relpath(path, root)}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def analysis_digest(policy: Policy) -> str:
    """A digest of the policy fields an artefact's analysis reads: budgets, extra allow entries,
    reviewed code. `fail_on`, suppressions, trust and advisories act after the analysis (on the
    report), so changing them keeps every entry valid."""
    parts = {"budgets": asdict(policy.budgets), "allow": sorted(policy.extra_allow.items()),
             "code": sorted(policy.allowed_code.items())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


# Findings that say something about the moment (a wall-clock or memory limit, a failed read, a
# killed worker) rather than the bytes: an artefact carrying one is analysed again next time.
_MOMENTARY_BUDGETS = {"max_seconds", "memory"}
# Formats whose analysis reads other files next to this one (ONNX external data): not its bytes alone.
_READS_NEIGHBOURS = {"onnx"}


def storable(artefact: Artefact) -> bool:
    """Whether this analysis is a property of the bytes alone (and may be reused)."""
    from ..findings import Status

    if artefact.status is Status.SKIPPED or not artefact.sha256:
        return False
    if artefact.format in _READS_NEIGHBOURS:
        return False
    for f in artefact.findings:
        if f.rule_id.startswith("MS-LIM-") or f.rule_id == "MS-GEN-003":
            return False
        if f.rule_id == "MS-GEN-005" and str(f.evidence.get("budget")) in _MOMENTARY_BUDGETS:
            return False
    return True
