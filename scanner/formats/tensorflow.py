"""tensorflow format module (not implemented yet: recognises nothing)."""
from __future__ import annotations

NAME = "tensorflow"


def sniff(head: bytes, blob, name: str) -> bool:
    return False


def analyse(blob, ctx) -> None:
    raise NotImplementedError
