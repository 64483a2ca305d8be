"""Strict schema validation of a BOM dict against CycloneDX 1.6 or 1.7 (offline, bundled schemas)."""
from __future__ import annotations

import functools
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

from .errors import BomInvalid


def _light_rfc3987_syntax() -> None:
    """Make importing jsonschema cheap without changing what it checks.

    jsonschema checks the "iri"/"iri-reference" formats (18 places in the CycloneDX schema) with
    `rfc3987_syntax.is_valid_syntax`, which parses with one Earley parser over the package's
    grammar; but importing `rfc3987_syntax` also builds 38 more parsers nobody calls (seconds of
    grammar compilation, most of `sbom validate`'s time). This registers a module with the same
    `is_valid_syntax`, over the same grammar file, with the same parser, built on first use.
    """
    if "rfc3987_syntax" in sys.modules:
        return
    spec = importlib.util.find_spec("rfc3987_syntax")
    if spec is None or spec.origin is None:
        return
    grammar = Path(spec.origin).parent / "syntax_rfc3987.lark"
    if not grammar.is_file():
        return
    from lark import Lark, exceptions

    @functools.lru_cache(maxsize=1)
    def parser() -> Any:
        text = grammar.read_text(encoding="utf-8")
        return Lark(text, start=["iri", "iri_reference", "absolute_iri"], parser="earley")

    def is_valid_syntax(term: str, value: str) -> bool:
        try:
            parser().parse(value, start=term)
            return True
        except exceptions.LarkError:
            return False

    module = types.ModuleType("rfc3987_syntax", "is_valid_syntax of rfc3987-syntax, its parser built on first use")
    setattr(module, "is_valid_syntax", is_valid_syntax)  # noqa: B010 - a ModuleType has no declared attributes
    sys.modules["rfc3987_syntax"] = module


_light_rfc3987_syntax()

from cyclonedx.schema import SchemaVersion  # noqa: E402 - after the module above is registered
from cyclonedx.validation.json import JsonStrictValidator  # noqa: E402

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
