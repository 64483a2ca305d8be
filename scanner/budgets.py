"""Analysis budgets. Exhausting any of them ends in an inconclusive finding (MS-GEN-005), never clean."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Budgets:
    """Limits on work per artefact; users may raise them in the policy file's [budgets] table."""

    max_opcodes: int = 50_000_000  # pickle opcodes per stream
    max_memo: int = 5_000_000  # memo entries per stream
    max_stack_depth: int = 100_000  # nesting of MARK frames and stack items
    max_pickle_bytes: int = 4 << 30  # bytes of pickle opcodes read per artefact
    max_nested_depth: int = 3  # pickle.loads inside pickle inside ...
    max_container_depth: int = 5  # archive inside archive inside ...
    max_members: int = 200_000  # entries per archive, tensors and metadata keys per model header
    max_decompressed: int = 8 << 30  # decompressed bytes per artefact
    max_ratio: int = 1_000  # decompressed/compressed ratio, checked past `ratio_floor` bytes
    ratio_floor: int = 64 << 20
    max_seconds: float = 600.0  # wall time per artefact
    max_header_bytes: int = 100 << 20  # format headers (safetensors reference cap)
    # Hard limits enforced outside the analysing code (scanner/worker): a worker process per artefact.
    max_memory: int = 200 << 20  # memory the analysis of one artefact may add to its worker process
    max_native_seconds: float = 30.0  # wall time of one call into a native parser (h5py)
    max_spill: int = 8 << 30  # bytes written to temporary files per scan (decompressed members)
    max_streams: int = 10_000  # pickle streams concatenated in one file

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> "Budgets":
        """Build from a policy [budgets] table; unknown keys are an error."""
        names = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown budget(s): {', '.join(sorted(unknown))}")
        out = cls()
        for key, value in data.items():
            setattr(out, key, float(value) if names[key] in (float, "float") else int(value))
        return out

