"""File and member names as text any output can encode, without losing what the name was.

On POSIX a file name is bytes; Python decodes the bytes that are not UTF-8 as lone surrogates
(`surrogateescape`), which no UTF-8 writer accepts (`UnicodeEncodeError` under `-o` or
`PYTHONIOENCODING=utf-8`). Such names are shown with each undecodable byte as `\\xNN`, the way
Python's `backslashreplace` shows bytes: `os.fsencode` of the original name gives them back.
"""
from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def printable_name(name: str) -> str:
    """`name` with undecodable bytes (surrogate escapes) as `\\xNN`; other lone surrogates as `\\uXXXX`."""
    if name.isascii():
        return name
    return _SURROGATE.sub(_escape, name)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
