"""The one escaping helper for every string that comes from an artefact.

File names, pickle globals, folded arguments, template text and metadata are attacker-chosen: a
name like ``a\\x1b[2Jb\\nverdict: clean\\n.pkl`` would clear a terminal and forge a verdict line if
printed raw. Every renderer passes such strings through `text()` (terminal, text reports), then
through the syntax-specific wrappers below (markdown code spans, GitHub workflow commands, SARIF
URIs).

`text()` is lossless (injective) and never raises:

- ``\\`` becomes ``\\\\``; ``\\n``, ``\\r``, ``\\t`` are shown as such;
- other C0 controls and DEL become ``\\xNN`` (NN < 80);
- bytes that are not UTF-8 (file names on POSIX arrive as surrogate escapes ``\\udcNN``) become
  ``\\xNN`` with NN >= 80, the original byte;
- anything else that is not printable (C1 controls, bidirectional overrides and other format
  characters, line/paragraph separators, unusual spaces, other lone surrogates, unassigned code
  points) becomes ``\\uNNNN`` or ``\\UNNNNNNNN``.

So ``\\xNN`` below 80 is a control character, at or above 80 a raw byte, and ``\\u``/``\\U`` a code
point: the original string can always be recovered from what is shown.
"""
from __future__ import annotations

import re
from urllib.parse import quote

_SIMPLE = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _char(c: str) -> str:
    if c in _SIMPLE:
        return _SIMPLE[c]
    n = ord(c)
    if n < 0x20 or n == 0x7F:
        return f"\\x{n:02x}"
    if 0xDC80 <= n <= 0xDCFF:  # surrogateescape: the undecodable byte n - 0xDC00
        return f"\\x{n - 0xDC00:02x}"
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def _needs(c: str) -> bool:
    return c in _SIMPLE or (c != " " and not c.isprintable())


def text(value: object) -> str:
    """`value` as a single printable line, losslessly escaped (see the module docstring)."""
    s = value if isinstance(value, str) else str(value)
    if s.isprintable() and "\\" not in s:
        return s
    return "".join(_char(c) if _needs(c) else c for c in s)


def unescape(shown: str) -> str:
    """The inverse of `text()` (for tests and tooling): raw bytes come back as surrogate escapes."""
    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token[1] == "x":
            n = int(token[2:], 16)
            return chr(n) if n < 0x80 else chr(0xDC00 + n)
        if token[1] in "uU":
            return chr(int(token[2:], 16))
        return {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t"}[token]

    return re.sub(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[\\nrt])", one, shown)


def markdown_code(value: object, escaped: bool = False) -> str:
    """A markdown (GFM) code span showing `text(value)` (or `value` itself when the caller already
    escaped it), safe inside a table cell.

    Inside a code span nothing is interpreted (no links, mentions, HTML, emphasis); the fence is
    one backtick longer than any run inside, and pipes are escaped so a cell cannot be split.
    """
    s = (str(value) if escaped else text(value)).replace("|", "\\|")
    if not s:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ")) else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_MD_PUNCT = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~@:&\"'=$^%])")


def markdown_text(value: object) -> str:
    """`text(value)` as markdown prose: every markdown-significant character backslash-escaped,
    and `@` / `://` broken so that no mention or autolink can form."""
    s = _MD_PUNCT.sub(r"\\\1", text(value))
    return s.replace("\\@", "\\@\u200b").replace("\\:\\/\\/", "\\:\u200b\\/\\/").replace("www\\.", "www\u200b\\.")


def workflow_data(value: object, escaped: bool = False) -> str:
    """GitHub workflow-command message text: `text()` (unless the caller already escaped it),
    then `%`, CR and LF percent-encoded as the runner's command parser expects."""
    s = str(value) if escaped else text(value)
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(value: object) -> str:
    """GitHub workflow-command property value (file=, title=): as data, plus `:` and `,` encoded."""
    return workflow_data(value).replace(":", "%3A").replace(",", "%2C")


def uri_path(path: str) -> str:
    """A relative path as an RFC 3986 URI reference: the path's bytes (non-UTF-8 names keep their
    original bytes) percent-encoded except unreserved characters and `/`."""
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        raw = path.encode("utf-8", "surrogatepass")
    return quote(raw, safe="/")
