"""modelshield.scanner: static, loader-exact analysis of ML artefacts (never loads or executes them)."""
from __future__ import annotations

if __name__ != "modelshield.scanner":  # the bare folder, imported from the repo root
    raise ImportError(f"the folder {__name__!r} is the package modelshield.scanner: import it under that name "
                      "(pip install -e .), never as a top-level package")

try:
    from importlib.metadata import version as _version

    __version__ = _version("modelshield")
except Exception:  # noqa: BLE001 - running from a source tree without metadata
    __version__ = "0.0.0+source"
