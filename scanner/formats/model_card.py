"""model_card format module (not implemented yet: recognises nothing)."""
from __future__ import annotations

NAME = "model_card"


def sniff(head: bytes, blob, name: str) -> bool:
    return False


def analyse(blob, ctx) -> None:
    raise NotImplementedError
