"""Every exception class of modelshield.advisories, in one place."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input (unreadable file, malformed lock file, failing interpreter): a one-line message."""


class RecordError(ValueError):
    """Not a usable OSV record (the message says why)."""


class UpdateError(RuntimeError):
    """The update failed; the message is one line."""


class AdvisoryPolicyError(ValueError):
    """The [advisories] table is invalid; the message says where."""
