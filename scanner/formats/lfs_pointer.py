"""Git LFS pointer files: the small text stub git leaves when the real content was never fetched.

A checkout without `git lfs pull` (or with GIT_LFS_SKIP_SMUDGE=1) holds, instead of the model, a
pointer of at most 1024 bytes (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):

    version https://git-lfs.github.com/spec/v1
    oid sha256:<64 hex>
    size <bytes>

The bytes a loader would read are not there, so nothing was checked: inconclusive, with the fix.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.GIT_LFS_POINTER
MAX_POINTER = 1024
_VERSIONS = (b"version https://git-lfs.github.com/spec/v1\n", b"version https://hawser.github.com/spec/v1\n")
_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
_SIZE = re.compile(rb"^size ([0-9]+)$", re.M)


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """A pointer: the spec's first line, at most 1024 bytes."""
    return blob.size <= MAX_POINTER and head.startswith(_VERSIONS)


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    text = blob.head(MAX_POINTER)
    oid, size = _OID.search(text), _SIZE.search(text)
    ctx.add("MS-GEN-009", oid=oid.group(1).decode() if oid else "unknown",
            size=int(size.group(1)) if size else "unknown")
