"""modelshield.sbom: CycloneDX ML-BOMs built from a scan report (never re-opens artefacts)."""
