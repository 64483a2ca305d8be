"""modelshield.scanner: static, loader-exact analysis of ML artefacts (never loads or executes them)."""
from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("modelshield")
except Exception:  # noqa: BLE001 - running from a source tree without metadata
    __version__ = "0.0.0+source"
