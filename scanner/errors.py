"""Every exception class of modelshield.scanner, in one place (as huggingface_hub's `errors`).

Format modules and analysers raise `FormatError` (malformed input) and `BudgetExceeded` (a budget
ran out); the dispatcher turns both into inconclusive findings. The others are raised and caught
inside one area (policy files, the Hub guard, the pickle VM, the marshal reader, signatures).
"""
from __future__ import annotations

from typing import Any


class BudgetExceeded(Exception):
    """Raised inside a format module when a budget runs out; the engine turns it into MS-GEN-005."""

    def __init__(self, budget: str, limit: Any) -> None:
        super().__init__(f"{budget} budget ({limit}) exhausted")
        self.budget, self.limit = budget, limit


class FormatError(Exception):
    """Malformed input a format module cannot analyse further; the engine makes it inconclusive.

    Raise it with a short, precise reason (no traceback reaches the user).
    """

    def __init__(self, reason: str, offset: int | None = None, rule_id: str = "MS-GEN-006") -> None:
        super().__init__(reason)
        self.reason, self.offset, self.rule_id = reason, offset, rule_id


class ProtoError(FormatError):
    """Malformed protobuf wire data."""


class PolicyError(ValueError):
    """The policy file is invalid; the message says where."""


class PickleError(Exception):
    """The stream is malformed where CPython's unpickler would raise; `offset` is where."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason, self.offset = reason, offset


class MarshalError(ValueError):
    """The bytes are not a marshalled code object this reader understands."""


class ArchiveBomb(Exception):
    """A 7z member would outgrow a decompression cap (`cap` names it); raised from py7zr's writer."""

    def __init__(self, cap: str, limit: Any) -> None:
        super().__init__(cap)
        self.cap, self.limit = cap, limit


class DuplicateKey(Exception):
    """A JSON header repeats `key` (safetensors refuses such headers, Python's json keeps the last)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class HostileAnswer(Exception):
    """The server's answer is refused; `path` is the repo file it was about (None: an API call).

    `hostile` is False for answers a broken proxy could give too (compression, stalls)."""

    def __init__(self, reason: str, path: str | None = None, hostile: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.hostile = hostile


class DownloadRefused(Exception):
    """A URL download is refused (redirect, status, size, encoding); the message is the reason."""


class BundleError(ValueError):
    """The signature file cannot be read as an OMS bundle; the message is the one-line reason."""


class StatementError(ValueError):
    """The statement is malformed (`unverifiable`) or self-inconsistent (`invalid` when `invalid`)."""

    def __init__(self, reason: str, invalid: bool = False):
        super().__init__(reason)
        self.invalid = invalid


class TrustError(ValueError):
    """The trust policy is invalid; the message says where."""


class SigningError(ValueError):
    """Signing cannot proceed; the message is the one-line reason."""


class RayUnavailable(Exception):
    """`--executor ray`: Ray is not installed or the cluster cannot be reached (one-line message)."""


class StoreError(Exception):
    """The result store cannot be used (missing, corrupt, locked, unreachable); one-line message."""


class NotRegular(Exception):
    """The path is a FIFO, socket, device or folder (`what` says which, in words); never opened."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class ChannelClosed(Exception):
    """A worker channel's other end went away (the process exited or was killed)."""


class MessageTooLarge(Exception):
    """A worker channel message longer than the receiver accepts."""
