"""Standalone Jinja chat-template files (`*.jinja`, `*.jinja2`, `*.j2`): read, then analysed by
`analysis.jinja_template` (the analyser GGUF, safetensors and HF configs share)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.jinja_template import MAX_TEMPLATE_CHARS, analyse_template
from ..errors import FormatError
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.CHAT_TEMPLATE

SUFFIXES = (".jinja", ".jinja2", ".j2")


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """A `*.jinja` / `*.j2` text file (text formats are chosen by name, as their loaders do)."""
    if not name.lower().endswith(SUFFIXES):
        return False
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte sequence cut at the head boundary is fine
        if exc.start < len(head) - 4:
            return False
    return True


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Analyse a standalone chat template file."""
    limit = min(ctx.budgets.max_header_bytes, MAX_TEMPLATE_CHARS * 4)
    if blob.size > limit:
        raise FormatError(f"template file of {blob.size} bytes exceeds the {limit}-byte budget", 0,
                          rule_id="MS-GEN-006")
    raw = blob.read_at(0, blob.size)
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", exc.start) from None
    analyse_template(source, ctx, field=blob.name or "template", offset=None)
