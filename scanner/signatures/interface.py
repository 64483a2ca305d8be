"""What every verification method implements: does it handle this bundle, and what does the
signature itself say (the manifest comparison is shared and done by the orchestrator)."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Protocol

from ..findings import SignatureOutcome
from .bundle import Bundle
from .trust import TrustSet


@dataclass
class MethodResult:
    """The verdict on the signature, before the files are compared.

    `authentic`: the DSSE signature verified with the key it names, so the statement is what that
    signer signed (the files can be held to it even when the signer is not trusted).
    """

    outcome: SignatureOutcome
    reason: str
    signer: str | None = None
    authentic: bool = False
    legacy: bool = False


class Method(Protocol):
    """One way of checking who signed: a module with NAME, accepts() and verify()."""

    NAME: str

    def accepts(self, bundle: Bundle) -> bool:
        """True when the bundle's verification material is this method's."""

    def verify(self, bundle: Bundle, trust: TrustSet, now: _dt.datetime) -> MethodResult:
        """Check the signature over the statement and whether its signer is trusted."""
