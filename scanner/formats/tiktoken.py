"""tiktoken BPE rank files (`*.tiktoken`, and Llama 3's `tokenizer.model`).

Each non-empty line is `<base64 token> <rank>`; `tiktoken.load.load_tiktoken_bpe` reads it with
`line.split()` into two fields, `base64.b64decode(token)` and `int(rank)`, and nothing in the file
can run. Recognised by content: a file whose first lines have this shape; every line is then
checked the way the loader reads it, and a line the loader would reject makes the file
inconclusive (it may be something else wearing the name).
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from ..errors import FormatError
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.TIKTOKEN
_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2} [0-9]{1,10}")
_SNIFF_LINES = 16
_CHUNK = 1 << 20
MAX_LINE = 4096


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """The first lines are all `<base64> <decimal rank>` (the last may be cut by the head)."""
    lines = head.split(b"\n")
    if len(lines) < 2 and blob.size > len(head):
        return False
    complete = lines[:-1] if blob.size > len(head) else lines
    sample = [line.rstrip(b"\r") for line in complete[:_SNIFF_LINES] if line.strip()]
    return bool(sample) and all(_LINE.fullmatch(line) for line in sample)


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Every line as the loader reads it; ranks counted and checked for duplicates."""
    tokens = 0
    max_rank = -1
    ranks: set[int] = set()
    duplicate_ranks = 0
    pos, carry, number = 0, b"", 0
    while pos < blob.size or carry:
        chunk = blob.read_at(pos, _CHUNK) if pos < blob.size else b""
        pos += len(chunk)
        data = carry + chunk
        lines = data.split(b"\n")
        carry = lines.pop() if chunk else b""
        if len(carry) > MAX_LINE:
            raise FormatError(f"line {number + len(lines) + 1} is longer than {MAX_LINE} bytes", pos - len(carry))
        for line in lines:
            number += 1
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise FormatError(f"line {number} has {len(fields)} fields; tiktoken expects `token rank`")
            try:
                base64.b64decode(fields[0])
                rank = int(fields[1])
            except (binascii.Error, ValueError):
                raise FormatError(f"line {number} is not `<base64 token> <integer rank>`") from None
            tokens += 1
            max_rank = max(max_rank, rank)
            if rank in ranks:
                duplicate_ranks += 1
            ranks.add(rank)
        if not number % 65536:
            ctx.check_time()
        if not chunk:
            break
    if not tokens:
        raise FormatError("no token lines")
    if not ctx.members:
        ctx.artefact.format = NAME
    ctx.artefact.properties["tiktoken"] = {"tokens": tokens, "max_rank": max_rank, "duplicate_ranks": duplicate_ranks}
