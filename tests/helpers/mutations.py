"""Hypothesis strategy: seed byte strings with a few random edits (flip, insert, delete, truncate)."""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def mutations(seeds: list[bytes], min_edits: int, max_edits: int) -> Any:
    """A strategy drawing one of `seeds` and applying `min_edits`..`max_edits` random edits to it."""

    @st.composite
    def mutated(draw: Any) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(min_edits, max_edits))):
            op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            pos = draw(st.integers(0, max(len(data) - 1, 0)))
            if op == "flip" and data:
                data[pos] = draw(st.integers(0, 255))
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete" and data:
                del data[pos:pos + draw(st.integers(1, 4))]
            elif op == "truncate":
                del data[pos:]
        return bytes(data)

    return mutated()
