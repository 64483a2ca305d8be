"""`modelshield report`: the ETSI EN 304 223 evidence report (HTML, Markdown or JSON).

    modelshield report ./model --standard etsi-en-304-223 -o evidence.html        # also .md, .json
    modelshield report ./model --role system-operator --phase deployment --policy modelshield.toml
    modelshield report --from-bom model.cdx.json -o evidence.html                 # from a BOM, no rescan

Exit 0 when the report was written (its statuses are in the report, not in the exit code), 2 on
bad input or when a target could not be obtained.
"""
from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any, Optional

import typer

from modelshield.cli_common import FailOn, error, fail, load_policy, source_options, write_output


class Standard(str, enum.Enum):
    etsi_en_304_223 = "etsi-en-304-223"


class ReportFormat(str, enum.Enum):
    html = "html"
    md = "md"
    json = "json"


EXAMPLES = ("\b\nExamples:\n  modelshield report ./model --standard etsi-en-304-223 -o evidence.html\n"
            "  modelshield report ./model --role system-operator --phase deployment --policy modelshield.toml\n"
            "  modelshield report --from-bom model.cdx.json -o evidence.md")
SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def _format(fmt: Optional[ReportFormat], output: Optional[Path]) -> str:
    if fmt is not None:
        return fmt.value
    if output is not None and str(output) != "-":
        found = SUFFIXES.get(output.suffix.lower())
        if found is None:
            fail(f"cannot tell the report format from {output.name!r}: use .html, .md or .json, or --format")
        return found
    return "md"


def _bom_from_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"{path} is not JSON: {exc}")
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        fail(f"{path} is not a CycloneDX JSON BOM")
    return doc


def report(
    targets: list[str] = typer.Argument(None, help="Folders, files, hf://org/name[@rev]... to scan (or --from-bom)."),
    standard: Standard = typer.Option(Standard.etsi_en_304_223, "--standard", help="The standard to report evidence for."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here; the suffix picks the format (.html, .md, .json)."),
    format: Optional[ReportFormat] = typer.Option(None, "--format", "-f", help="html, md or json (default: from --output, else md)."),
    role: list[str] = typer.Option([], "--role", help="developer, system-operator, data-custodian (repeatable): rows for other roles become n/a."),
    phase: Optional[str] = typer.Option(None, "--phase", help="design, development, deployment, maintenance (alias: operation), end-of-life."),
    from_bom: Optional[Path] = typer.Option(None, "--from-bom", help="Report on this CycloneDX BOM instead of scanning."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file: waivers, and [etsi] justifications and attestations."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="Severity recorded as blocking in the BOM the report is built on."),
    include: list[str] = typer.Option([], "--include", help="Remote repos: only files matching this glob."),
    exclude: list[str] = typer.Option([], "--exclude", help="Remote repos: skip files matching this glob."),
    max_download: Optional[str] = typer.Option(None, "--max-download", help="Remote sources: download cap (e.g. 5GB)."),
    offline: bool = typer.Option(False, "--offline", help="Hub targets: use only the local HF cache."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Hub targets: HF cache folder."),
    requirements: list[Path] = typer.Option([], "--requirements", "-r", help="The deployment's runtime (requirements or lock files, repeatable), checked for advisories."),
    python: Optional[Path] = typer.Option(None, "--python", help="The deployment's runtime: this interpreter's installed packages."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="Trust policy for model signatures: a valid signature from a trusted signer is evidence."),
) -> None:
    """Evidence for ETSI EN 304 223 provisions, per role and phase. Exit 0 written, 2 error."""
    from modelshield.sbom import evidence, evidence_render
    from modelshield.signatures_cli import apply_trust

    fmt = _format(format, output)
    pol = load_policy(policy, fail_on)
    if trust is not None:
        if from_bom is not None:
            fail("--trust applies to a scan; a BOM given with --from-bom already records its signature outcome")
        apply_trust(pol, trust, False)
    try:
        roles, selected = evidence.normalise_roles(role), evidence.normalise_phase(phase)
    except evidence.EvidenceInputError as exc:
        fail(str(exc))
    if from_bom is not None:
        if targets:
            fail("give targets to scan or --from-bom, not both")
        bom = _bom_from_file(from_bom)
    else:
        if not targets:
            fail("give targets to scan, or --from-bom BOM")
        options = source_options(include, exclude, max_download, offline, cache_dir)
        bom = _scan_bom(targets, pol, options, selected, requirements, python)
    try:
        result = evidence.derive(bom, roles=roles, phase=selected, etsi=getattr(pol, "etsi", None))
    except evidence.EvidenceInputError as exc:
        fail(str(exc))
    write_output(evidence_render.render(result, fmt), output)
    counts = ", ".join(f"{n} {s}" for s, n in result.summary().items() if n)
    typer.echo(f"modelshield: {standard.value} evidence ({fmt}): {len(result.rows)} provisions: {counts}"
               + (f" -> {output}" if output and str(output) != "-" else ""), err=True)


def _bom_phase(phase: Optional[str]) -> str:
    """The BOM phase for a report phase: end of life, deployment (and maintenance), else development."""
    if phase == "end-of-life":
        fail("an end-of-life report is built from the end-of-life BOM: modelshield sbom TARGET --phase end-of-life "
             "--decision ... -o eol.cdx.json, then modelshield report --from-bom eol.cdx.json")
    return "deployment" if phase in ("deployment", "maintenance") else "development"


def _scan_bom(targets: list[str], pol: Any, options: Any, phase: Optional[str], requirements: list[Path],
              python: Optional[Path]) -> dict[str, Any]:
    from modelshield import scan
    from modelshield.advisories_cli import attach_advisories
    from modelshield.sbom_cli import make_bom

    bom_phase = _bom_phase(phase)
    result = scan(targets, policy=pol, options=options)
    errors = [t.error for t in result.targets if t.error]
    for message in errors:
        error(message)
    if errors:
        fail("no report written: a target could not be obtained")
    if requirements or python is not None:  # the deployment's runtime, never this process's environment
        attach_advisories(result, pol, requirements, python, [], quiet=True)
    return make_bom(result, phase=bom_phase, spec_version="1.7")
