"""modelshield.sbom: CycloneDX ML-BOMs built from a scan report (never re-opens artefacts).

    from modelshield import scan
    from modelshield.sbom import build_bom, dumps
    doc = build_bom(scan("./model"), phase="development", spec_version="1.6")
"""
from __future__ import annotations

from .builder import build_bom, dumps, register_provider
from .validate import BomInvalid, schema_errors

__all__ = ["build_bom", "dumps", "register_provider", "BomInvalid", "schema_errors"]
