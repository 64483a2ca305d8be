"""pickle_text format module (not implemented yet: recognises nothing)."""
from __future__ import annotations

NAME = "pickle_text"


def sniff(head: bytes, blob, name: str) -> bool:
    return False


def analyse(blob, ctx) -> None:
    raise NotImplementedError
