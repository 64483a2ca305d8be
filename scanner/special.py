"""Files that are not regular files (FIFO, socket, device): never read, never silently passed.

Opening a FIFO for reading blocks until a writer comes, and a device may never end, so such files
are not read. A loader that opens the name gets whatever is behind it, so a special file named like
a model makes the artefact inconclusive (MS-LIM-004); any other is noted (MS-GEN-008).
"""
from __future__ import annotations

import os
import stat

from .errors import NotRegular
from .findings import Artefact, FormatName, Location, Status
from .rules import load_rules
from .suffixes import loader_hint


def open_regular(path: str) -> int:
    """Open a regular file for reading, without blocking on a FIFO; NotRegular for anything else."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(kind(mode))
    return fd


def kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO")."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def kind_of(path: str) -> str:
    """`kind` of the file at `path` (following links)."""
    try:
        return kind(os.stat(path).st_mode)
    except OSError:
        return "a special file"


def special_file(relpath: str, what: str, abspath: str | None = None) -> Artefact:
    """The skipped artefact for a non-regular file, with its finding."""
    artefact = Artefact(path=relpath, absolute_path=abspath, status=Status.SKIPPED, reason="special file",
                        format=FormatName.NOT_READ)
    name = os.path.basename(relpath)
    hint = loader_hint(name)
    loc = Location(path=relpath)
    if hint:
        artefact.findings.append(load_rules().finding("MS-LIM-004", loc, name=name, what=what, hint=hint))
    else:
        artefact.findings.append(load_rules().finding("MS-GEN-008", loc, what=what))
    return artefact
