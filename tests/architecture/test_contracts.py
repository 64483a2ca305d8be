"""Typed contracts between the packages: format names are one enum, every member in use."""
from __future__ import annotations

import re
from pathlib import Path

from modelshield.scanner import formats
from modelshield.scanner.findings import Artefact, FormatName

ROOT = Path(__file__).resolve().parents[2]


def test_every_format_module_is_named_by_the_enum():
    names = [module.NAME for module in formats.modules()]
    assert all(isinstance(name, FormatName) for name in names), names
    assert len(set(names)) == len(names), names


def test_every_format_name_is_produced_somewhere():
    """A member no module, flavour or state uses is a stale name in reports and BOMs."""
    code = "\n".join(p.read_text(encoding="utf-8") for folder in ("scanner", "sbom", "advisories")
                     for p in (ROOT / folder).rglob("*.py") if p.name != "findings.py")
    used = set(re.findall(r"FormatName\.([A-Z0-9_]+)", code)) | {"UNKNOWN"}  # the Artefact default
    assert {m.name for m in FormatName} - used == set()


def test_format_names_compare_render_and_serialise_as_their_values():
    art = Artefact(path="x", format=FormatName.TORCH_ZIP)
    assert art.format == "torch-zip" and f"{art.format}" == "torch-zip" and str(art.format) == "torch-zip"
    assert FormatName.parse("torch-zip") is FormatName.TORCH_ZIP
    assert FormatName.parse("some-future-format") is FormatName.UNKNOWN
    from modelshield.scanner.findings import to_dict

    assert to_dict(art)["format"] == "torch-zip"
