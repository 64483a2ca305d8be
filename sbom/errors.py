"""Every exception class of modelshield.sbom, in one place."""
from __future__ import annotations


class BomInvalid(Exception):
    """A BOM failed strict validation; `errors` holds one line per schema error."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} schema error(s): " + "; ".join(errors[:5]))
        self.errors = errors


class EvidenceInputError(ValueError):
    """Bad `--role`/`--phase`, or a malformed `[etsi]` policy table (one line)."""


class SpdxUnavailable(ValueError):
    """The evidence cannot make a valid SPDX 3 document (e.g. no creation time)."""
