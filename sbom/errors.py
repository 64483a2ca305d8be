"""Every exception class of modelshield.sbom, in one place."""
from __future__ import annotations


class BomInvalid(Exception):
    """A BOM failed strict validation; `errors` holds one line per schema error."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} schema error(s): " + "; ".join(errors[:5]))
        self.errors = errors
