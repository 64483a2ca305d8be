"""Local files and folders: recursive, never following a symlink out of the target."""
from __future__ import annotations

import os
import stat

from ..context import ScanContext
from ..findings import Artefact, Status, TargetResult
from ..policy import Policy
from .interface import Resolved


def resolve(target: str) -> Resolved:
    """Walk `target` (file or folder). Links leaving the folder become findings, not reads."""
    result = TargetResult(target=target, kind="local")
    path = os.path.abspath(os.path.expanduser(target))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        result.error = f"{target}: no such file or directory"
        return Resolved(result)
    except OSError as exc:
        result.error = f"{target}: {exc.strerror or exc}"
        return Resolved(result)
    if stat.S_ISREG(st.st_mode):
        result.root = os.path.dirname(path)
        return Resolved(result, [(os.path.basename(path), path, st.st_size)])
    if not stat.S_ISDIR(st.st_mode):
        result.error = f"{target}: not a regular file or folder"
        return Resolved(result)
    result.root = path
    files: list[tuple[str, str, int]] = []
    _walk(path, path, result, files)
    files.sort()
    return Resolved(result, files)


def _walk(root: str, folder: str, result: TargetResult, files: list[tuple[str, str, int]]) -> None:
    real_root = os.path.realpath(root)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        _skipped(result, rel, "unreadable folder", "MS-GEN-003", error=exc.strerror or str(exc))
        return
    for entry in entries:
        rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
        try:
            if entry.is_symlink():
                dest = os.path.realpath(entry.path)
                inside = dest == real_root or dest.startswith(real_root + os.sep)
                if not inside:
                    _skipped(result, rel, "symlink outside the target", "MS-GEN-004",
                             link_target=os.readlink(entry.path))
                elif os.path.isfile(dest):
                    files.append((rel, entry.path, os.path.getsize(dest)))
                # a link to a folder inside the target: its files are scanned where they are
                continue
            if entry.is_dir(follow_symlinks=False):
                _walk(root, entry.path, result, files)
            elif entry.is_file(follow_symlinks=False):
                files.append((rel, entry.path, entry.stat(follow_symlinks=False).st_size))
            else:
                _skipped(result, rel, "special file", "MS-GEN-008", what="fifo, socket or device")
        except OSError as exc:
            _skipped(result, rel, "unreadable", "MS-GEN-003", error=exc.strerror or str(exc))


def _skipped(result: TargetResult, rel: str, reason: str, rule_id: str, **evidence: str) -> None:
    artefact = Artefact(path=rel, status=Status.SKIPPED, reason=reason, format="-")
    ScanContext(artefact=artefact, policy=Policy.default()).add(rule_id, **evidence)
    result.artefacts.append(artefact)
