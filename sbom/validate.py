"""Strict schema validation of a BOM dict against CycloneDX 1.6 or 1.7 (offline, bundled schemas)."""
from __future__ import annotations

import json
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from .errors import BomInvalid

VERSIONS = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}


def schema_errors(doc: dict[str, Any], spec_version: str | None = None) -> list[str]:
    """[] if `doc` is valid for its specVersion (or `spec_version`), else readable error lines."""
    version = spec_version or str(doc.get("specVersion", ""))
    if version not in VERSIONS:
        return [f"specVersion {version!r} is not supported (1.6 or 1.7)"]
    errors = JsonStrictValidator(VERSIONS[version]).validate_str(json.dumps(doc), all_errors=True)
    if errors is None:
        return []
    out = []
    for err in errors:
        data = getattr(err, "data", None)
        where = "/" + "/".join(str(p) for p in getattr(data, "absolute_path", [])) if data is not None else ""
        out.append(f"{where or '/'}: {getattr(data, 'message', str(err))}")
    return out


def check(doc: dict[str, Any], spec_version: str | None = None) -> None:
    """Raise BomInvalid unless `doc` is strictly valid."""
    errors = schema_errors(doc, spec_version)
    if errors:
        raise BomInvalid(errors)
