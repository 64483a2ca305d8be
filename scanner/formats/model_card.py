"""Model cards (README.md and other markdown cards with YAML front matter): card data for the BOM.

No loader executes a model card, so a card is never a threat by itself: this module only extracts
what the ML-BOM needs, into `ctx.artefact.properties["model_card"]`:

    {"card_data": {...front matter, JSON-safe...}, "sections": {"Intended uses": "...", ...},
     "title": "first H1", "has_front_matter": bool, "truncated": bool, "error": str | None}

The front matter is parsed with `yaml.safe_load` (the parser huggingface_hub uses for
`RepoCard`), bounded in size and in node count (an alias bomb stays small in memory but would
explode when copied). A card whose YAML is broken keeps an `error` and empty card data: that is a
documentation gap for the BOM, not an analysis failure of something a loader would run.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.MODEL_CARD

MAX_CARD_BYTES = 4 << 20  # cards beyond this are read up to here (sections truncated)
MAX_FRONT_MATTER = 512 << 10
MAX_NODES = 50_000  # YAML nodes copied into card_data
MAX_SECTION_CHARS = 8_000
MAX_SECTIONS = 200

# Same shape as huggingface_hub.repocard.REGEX_YAML_BLOCK: '---' line, YAML, '---' line.
_FRONT_MATTER = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """README.md (any case) or a *.md file starting with YAML front matter, if it is UTF-8 text."""
    lower = name.lower().rsplit("/", 1)[-1]
    if not lower.endswith((".md", ".markdown")):
        return False
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is fine; anything earlier is binary.
        if exc.start < len(head) - 4:
            return False
        text = head[:exc.start].decode("utf-8")
    if lower in ("readme.md", "readme.markdown", "modelcard.md", "model_card.md"):
        return True
    return text.lstrip("\ufeff \t\r\n").startswith("---")


def analyse(blob: Blob, ctx: ScanContext) -> None:
    """Parse front matter and sections into `ctx.artefact.properties["model_card"]` (no findings)."""
    size = min(blob.size, MAX_CARD_BYTES)
    raw = blob.read_at(0, size)
    text = raw.decode("utf-8", errors="replace")
    info = parse_card(text)
    info["truncated"] = blob.size > MAX_CARD_BYTES
    if ctx.member is None:
        ctx.artefact.properties["model_card"] = info
    else:  # a card inside an archive: keep it per member
        ctx.artefact.properties.setdefault("model_card:members", {})[ctx.member] = info


def parse_card(text: str) -> dict[str, Any]:
    """Split a card into JSON-safe front-matter data and markdown sections (pure function)."""
    info: dict[str, Any] = {"card_data": {}, "sections": {}, "title": None, "has_front_matter": False,
                            "error": None}
    body = text
    match = _FRONT_MATTER.match(text)
    if match:
        info["has_front_matter"] = True
        body = text[match.end():]
        block = match.group(1)
        if len(block) > MAX_FRONT_MATTER:
            info["error"] = f"front matter larger than {MAX_FRONT_MATTER} bytes; not parsed"
        else:
            info["card_data"], info["error"] = _load_front_matter(block)
    info["title"], info["sections"] = _sections(body)
    return info


def _load_front_matter(block: str) -> tuple[dict[str, Any], str | None]:
    import yaml

    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return {}, f"invalid YAML front matter{where}: {getattr(exc, 'problem', None) or exc}"
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"front matter is a YAML {type(data).__name__}, not a mapping"
    budget = [MAX_NODES]
    try:
        return _json_safe(data, budget), None
    except OverflowError:
        return {}, f"front matter has more than {MAX_NODES} nodes (alias expansion?); not used"


def _json_safe(value: Any, budget: list[int]) -> Any:
    """A bounded JSON-able copy: dates as ISO strings, keys as strings, node count capped."""
    budget[0] -= 1
    if budget[0] < 0:
        raise OverflowError
    if isinstance(value, dict):
        return {str(k): _json_safe(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v, budget) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _sections(body: str) -> tuple[str | None, dict[str, str]]:
    """Headings outside fenced code -> their text (up to the next heading of any level)."""
    title: str | None = None
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    fence: str | None = None

    def close() -> None:
        if current is not None and len(sections) < MAX_SECTIONS:
            content = "\n".join(lines).strip()
            sections[current] = content[:MAX_SECTION_CHARS]

    for line in body.splitlines():
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
        if fence is None and not fence_match:
            heading = _HEADING.match(line)
            if heading:
                close()
                name = heading.group(2).strip()
                if len(heading.group(1)) == 1 and title is None:
                    title = name
                base, n = name, 2
                while name in sections:
                    name, n = f"{base} ({n})", n + 1
                current, lines = name, []
                continue
        if current is not None:
            lines.append(line)
    close()
    return title, sections
