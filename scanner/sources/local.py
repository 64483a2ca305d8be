"""Local files and folders: recursive, never following a symlink out of the target.

Version-control metadata folders (`.git`, `.hg`...) are not artefacts: they are listed as skipped
unless `SourceOptions.include_vcs`. `--include/--exclude` globs select files by their path
relative to the target, with the same matching as for Hub repos.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from ..findings import Artefact, FormatName, Status, TargetResult
from ..rules import load_rules
from ..special import kind_of, special_file
from .interface import Resolved, SourceOptions

# Metadata folders of version-control systems (a `.git` *file* is a worktree or submodule link).
VCS_NAMES = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", ".pijul", "CVS", ".fslckout", "_FOSSIL_"})
VCS_REASON = "version-control metadata (--include-vcs to scan it)"
FILTER_REASON = "excluded by --include/--exclude"


@dataclass(frozen=True)
class Entry:
    """A regular file found by `walk` (reached directly, or through a link inside the boundary)."""

    rel: str  # path relative to the walked root, "/"-separated
    path: str  # where to read it
    size: int
    link_dest: str | None = None  # the real path when reached through a symbolic link


def resolve(target: str, options: SourceOptions | None = None) -> Resolved:
    """Walk `target` (file or folder). Links leaving the folder become findings, not reads."""
    options = options or SourceOptions()
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
    entries = walk(path, os.path.realpath(path), result, "the target", skip_vcs=not options.include_vcs)
    if options.include or options.exclude:
        # The same matching as for Hub repos: the glob applies to the whole relative path.
        from huggingface_hub.utils import filter_repo_objects

        kept = {e.rel for e in filter_repo_objects(entries, allow_patterns=options.include or None,
                                                   ignore_patterns=options.exclude or None, key=lambda e: e.rel)}
        for e in entries:
            if e.rel not in kept:
                result.artefacts.append(Artefact(path=e.rel, size=e.size, status=Status.SKIPPED,
                                                 reason=FILTER_REASON, format=FormatName.NOT_READ))
        entries = [e for e in entries if e.rel in kept]
    return Resolved(result, sorted((e.rel, e.path, e.size) for e in entries))


def walk(root: str, boundary: str, result: TargetResult, boundary_name: str, skip_vcs: bool = False) -> list[Entry]:
    """Regular files under `root`; links are followed only to files inside `boundary` (a real path).

    Everything not read becomes a skipped artefact with its finding: links leaving the boundary
    (MS-GEN-004), dangling links and unreadable entries (MS-GEN-003), special files (MS-GEN-008).
    Links to folders are not descended (their files are scanned where they are, if inside).
    """
    out: list[Entry] = []
    _walk(root, root, "", boundary, result, boundary_name, out, skip_vcs)
    return out


def _walk(root: str, folder: str, prefix: str, boundary: str, result: TargetResult, boundary_name: str,
          out: list[Entry], skip_vcs: bool) -> None:
    """`prefix`: the folder's path relative to `root` with a trailing "/" ("" at the root)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skipped(result, _rel(root, folder), "unreadable folder", "MS-GEN-003", error=exc.strerror or str(exc))
        return
    for entry in entries:
        rel = prefix + entry.name  # os.path.relpath per entry costs more than the scan of an empty file
        if skip_vcs and entry.name in VCS_NAMES:
            result.artefacts.append(Artefact(path=rel, status=Status.SKIPPED, reason=VCS_REASON,
                                             format=FormatName.NOT_READ))
            continue
        try:
            if entry.is_symlink():
                dest = os.path.realpath(entry.path)
                if not (dest == boundary or dest.startswith(boundary + os.sep)):
                    skipped(result, rel, f"symlink outside {boundary_name}", "MS-GEN-004",
                            link_target=os.readlink(entry.path))
                elif os.path.isfile(dest):
                    out.append(Entry(rel, entry.path, os.path.getsize(dest), dest))
                elif not os.path.exists(dest):
                    skipped(result, rel, "dangling symlink", "MS-GEN-003", error="the file it points to is missing")
                elif os.path.isdir(dest):
                    skipped(result, rel, "symlink to a folder", "MS-GEN-008",
                            what="a link to a folder, not followed; its files are scanned where they are, if inside")
                else:
                    result.artefacts.append(special_file(rel, "a link to " + kind_of(dest)))
            elif entry.is_dir(follow_symlinks=False):
                _walk(root, entry.path, rel + "/", boundary, result, boundary_name, out, skip_vcs)
            elif entry.is_file(follow_symlinks=False):
                out.append(Entry(rel, entry.path, entry.stat(follow_symlinks=False).st_size))
            else:  # never opened (a FIFO blocks); inconclusive if a loader would open it by name
                result.artefacts.append(special_file(rel, kind_of(entry.path)))
        except OSError as exc:
            skipped(result, rel, "unreadable", "MS-GEN-003", error=exc.strerror or str(exc))


def skipped(result: TargetResult, rel: str, reason: str, rule_id: str, **evidence: Any) -> Artefact:
    """Record a file that was not read, with the finding that says why."""
    from ..findings import Location

    artefact = Artefact(path=rel, status=Status.SKIPPED, reason=reason, format=FormatName.NOT_READ)
    artefact.findings.append(load_rules().finding(rule_id, Location(path=rel), **evidence))
    result.artefacts.append(artefact)
    return artefact


def _rel(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
