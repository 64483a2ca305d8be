"""Strict schema validation of a BOM dict against CycloneDX 1.6 or 1.7 (offline, bundled schemas)."""
from __future__ import annotations

import functools
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any, Callable

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
from jsonschema import Draft7Validator, FormatChecker  # noqa: E402

VERSIONS = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}


def _ascii_fast(iri_check: Callable[[object], bool], uri_check: Callable[[object], bool]) -> Callable[[object], bool]:
    """An IRI check that takes the URI grammar for pure-ASCII strings.

    jsonschema checks `iri`/`iri-reference` with rfc3987-syntax, an Earley parser that costs about
    0.1 s per value: 100 dataset URLs made every `sbom` run 20 s slower. RFC 3987's grammar differs
    from RFC 3986's only by `ucschar`/`iprivate`, which are all non-ASCII, so for an ASCII string the
    two grammars accept exactly the same set; non-ASCII values still go through the IRI parser.
    (rfc3987-syntax also rejects IPv6 literals such as `http://[::1]/`, which RFC 3987 allows;
    this check follows the RFC there.)"""
    def check(value: object) -> bool:
        if isinstance(value, str) and value.isascii():
            return uri_check(value)
        return iri_check(value)
    return check


@functools.lru_cache(maxsize=None)
def _format_checker() -> FormatChecker:
    base = Draft7Validator.FORMAT_CHECKER
    checker = FormatChecker(formats=())
    checker.checkers = dict(base.checkers)
    for iri, uri in (("iri", "uri"), ("iri-reference", "uri-reference")):
        if iri in base.checkers and uri in base.checkers:
            (iri_func, iri_raises), (uri_func, _) = base.checkers[iri], base.checkers[uri]
            checker.checkers[iri] = (_ascii_fast(iri_func, uri_func), iri_raises)
    return checker


@functools.lru_cache(maxsize=None)
def _validator(version: str) -> Any:
    """The library's strict validator (its schemas and registry) with the faster IRI check."""
    # `_validator` is the jsonschema validator the library builds for validate_str; evolve() keeps
    # its schema and registry and swaps only the format checker.
    return JsonStrictValidator(VERSIONS[version])._validator.evolve(format_checker=_format_checker())


def schema_errors(doc: dict[str, Any], spec_version: str | None = None) -> list[str]:
    """[] if `doc` is valid for its specVersion (or `spec_version`), else readable error lines."""
    version = spec_version or str(doc.get("specVersion", ""))
    if version not in VERSIONS:
        return [f"specVersion {version!r} is not supported (1.6 or 1.7)"]
    out = []
    for err in _validator(version).iter_errors(json.loads(json.dumps(doc))):
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        out.append(f"{where}: {err.message}")
    return out


def check(doc: dict[str, Any], spec_version: str | None = None) -> None:
    """Raise BomInvalid unless `doc` is strictly valid."""
    errors = schema_errors(doc, spec_version)
    if errors:
        raise BomInvalid(errors)
