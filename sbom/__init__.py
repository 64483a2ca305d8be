"""modelshield.sbom: CycloneDX ML-BOMs built from a scan report (never re-opens artefacts).

    from modelshield import scan
    from modelshield.sbom import build_bom, dumps
    doc = build_bom(scan("./model"), phase="development", spec_version="1.6")
"""
from __future__ import annotations

if __name__ != "modelshield.sbom":  # the bare folder, imported from the repo root
    raise ImportError(f"the folder {__name__!r} is the package modelshield.sbom: import it under that name "
                      "(pip install -e .), never as a top-level package")

from .builder import BuiltBom, build, build_bom, dumps, register_provider
from .errors import BomInvalid
from .validate import schema_errors

__all__ = ["BuiltBom", "build", "build_bom", "dumps", "register_provider", "BomInvalid", "schema_errors"]
