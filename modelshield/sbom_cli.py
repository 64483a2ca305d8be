"""`modelshield sbom`: create (default), `diff` and `validate` CycloneDX ML-BOMs.

    modelshield sbom ./model --phase development -o model.dev.cdx.json
    modelshield sbom ./release --phase deployment --from-bom model.dev.cdx.json -o model.cdx.json
    modelshield sbom diff old.cdx.json new.cdx.json     # 0 same, 1 drift/new findings, 2 error
    modelshield sbom validate some.cdx.json             # 0 valid, 1 invalid, 2 unreadable
"""
from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from modelshield.cli_common import FailOn, Phase, SpecVersion, error, load_policy, read_bom_json, source_options, write_output
from modelshield.scanner.findings import Report
from modelshield.scanner.output import escape


class _DefaultCreate(TyperGroup):
    """`modelshield sbom TARGET ...` means `modelshield sbom create TARGET ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultCreate, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="CycloneDX 1.6/1.7 ML-BOMs: create (default), diff, validate.",
                  epilog="\b\nExamples:\n  modelshield sbom ./model -o model.dev.cdx.json\n  modelshield sbom validate model.cdx.json")


class DiffFormat(str, enum.Enum):
    text = "text"
    json = "json"


def attribution(supplier: Optional[str], manufacturer: Optional[str], author: Optional[str]) -> Any:
    """The user's statement of supplier, manufacturer URL and BOM author ("Name <email>")."""
    from modelshield.sbom.context import Attribution

    if manufacturer is not None and not manufacturer.startswith(("https://", "http://")):
        error(f"--manufacturer takes a URL (https://...), not {manufacturer!r}")
        raise typer.Exit(2)
    name, email = Attribution.parse_author(author)
    return Attribution(supplier=(supplier or "").strip() or None, manufacturer=manufacturer,
                       author_name=name, author_email=email)


def render_bom(report: Report, *, phase: str = "development", spec_version: str = "1.6",
               from_bom: Optional[dict[str, Any]] = None, reproducible: bool = False,
               who: Any = None, decision: Optional[str] = None) -> str:
    """The BOM text; typer.Exit(2) with the schema errors when it would be invalid (a bug)."""
    from modelshield.sbom import BomInvalid, build, dumps

    try:
        built = build(report, phase=phase, spec_version=spec_version, from_bom=from_bom,
                      reproducible=reproducible, attribution=who, decision=decision)
    except BomInvalid as exc:
        error(f"the generated BOM is not valid CycloneDX {spec_version} (a modelshield bug):")
        for line in exc.errors[:50]:
            typer.echo(f"  {escape.text(line)}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    for note in built.notes:
        typer.echo(f"modelshield: {escape.text(note)}", err=True)
    return dumps(built.document)


def write_bom_from_report(report: Report, path: Path, *, phase: str = "development", spec_version: str = "1.6",
                          from_bom: Optional[Path] = None, reproducible: bool = False) -> None:
    """Write the BOM of an existing scan (used by `modelshield scan --sbom`)."""
    if phase not in ("development", "deployment", "end-of-life"):
        error(f"unknown phase {phase!r} (development, deployment or end-of-life)")
        raise typer.Exit(2)
    if any(t.error for t in report.targets):
        # The scan's own error lines follow; its exit code (2) stands.
        typer.echo(f"modelshield: no BOM written to {path}: a target could not be obtained", err=True)
        return
    previous = read_bom_json(from_bom) if from_bom is not None else None
    write_output(render_bom(report, phase=phase, spec_version=spec_version, from_bom=previous,
                      reproducible=reproducible), Path(path))


@app.command(epilog="\b\nExamples:\n  modelshield sbom ./model --phase development -o model.dev.cdx.json\n"
                     "  modelshield sbom hf://org/name@<commit> --spec-version 1.7 -o model.dev.cdx.json\n"
                     "  modelshield sbom ./release --phase deployment --from-bom model.dev.cdx.json -o model.cdx.json")
def create(
    targets: list[str] = typer.Argument(..., help="Folders, files, hf://org/name[@rev], hf://datasets/..."),
    phase: Phase = typer.Option(Phase.development, "--phase", help="ETSI EN 304 223 phase the BOM describes."),
    spec_version: SpecVersion = typer.Option(SpecVersion.v1_6, "--spec-version", help="CycloneDX version."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the BOM here (default: stdout)."),
    from_bom: Optional[Path] = typer.Option(None, "--from-bom", help="Development BOM to link (BOM-Link) and diff file hashes against."),
    reproducible: bool = typer.Option(False, "--reproducible", help="Byte-identical output for the same input (also on with SOURCE_DATE_EPOCH)."),
    author: Optional[str] = typer.Option(None, "--author", help='BOM author for metadata.authors: "Name <email>".'),
    supplier: Optional[str] = typer.Option(None, "--supplier", help="Supplier of the models where the files name none (local folders)."),
    manufacturer: Optional[str] = typer.Option(None, "--manufacturer", help="URL of the models' manufacturer where the files name none."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file (waivers become VEX in the deployment BOM)."),
    include: list[str] = typer.Option([], "--include", help="Remote repos: only files matching this glob."),
    exclude: list[str] = typer.Option([], "--exclude", help="Remote repos: skip files matching this glob."),
    max_download: Optional[str] = typer.Option(None, "--max-download", help="Remote sources: download cap (e.g. 5GB)."),
    offline: bool = typer.Option(False, "--offline", help="Hub targets: use only the local HF cache (like HF_HUB_OFFLINE=1)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Hub targets: HF cache folder (default: the standard cache, HF_HOME)."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", case_sensitive=False, help="Severity recorded as the BOM's blocking threshold (modelshield:fail-on) [default: high, or the policy's]."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="Trust policy for model signatures (the outcome is recorded per model)."),
) -> None:
    """Scan TARGETS and write their ML-BOM. Exit 0 written, 2 error (the findings are in the BOM).

    When a target cannot be obtained (gated, not found, offline with nothing cached...) no BOM is
    written: a BOM of bytes that were never read would look like evidence.
    """
    from modelshield import scan

    pol = load_policy(policy, fail_on)
    from modelshield.signatures_cli import apply_trust

    apply_trust(pol, trust, False)
    options = source_options(include, exclude, max_download, offline, cache_dir)
    who = attribution(supplier, manufacturer, author)
    if from_bom is not None and phase is Phase.development:
        typer.echo("modelshield: note: --from-bom links a development BOM from a deployment BOM", err=True)
    previous = read_bom_json(from_bom) if from_bom is not None else None
    report = scan(targets, policy=pol, options=options)
    errors = [t.error for t in report.targets if t.error]
    for message in errors:
        error(message)
    if errors:
        error("no BOM written" + (f" to {output}" if output and str(output) != "-" else ""))
        raise typer.Exit(2)
    text = render_bom(report, phase=phase.value, spec_version=spec_version.value, from_bom=previous,
                      reproducible=reproducible, who=who)
    write_output(text, output)
    doc = json.loads(text)
    files = sum(1 for t in report.targets for _ in t.artefacts)
    typer.echo(f"modelshield: {phase.value} BOM (CycloneDX {spec_version.value}): {files} files, "
               f"{len(doc.get('vulnerabilities', []))} vulnerabilities, verdict {report.verdict.value}"
               + (f" -> {output}" if output and str(output) != "-" else ""), err=True)


@app.command("diff", epilog="\b\nExamples:\n  modelshield sbom diff model.dev.cdx.json model.cdx.json\n"
                             "  modelshield sbom diff old.cdx.json new.cdx.json --format json")
def diff_cmd(
    old: Path = typer.Argument(..., help="The earlier BOM (e.g. the development BOM)."),
    new: Path = typer.Argument(..., help="The later BOM."),
    format: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="Output format."),
) -> None:
    """Compare two BOMs. Exit 0 same, 1 hash drift / added or removed files / new findings, 2 error."""
    from modelshield.sbom.diff import diff

    result = diff(read_bom_json(old), read_bom_json(new))
    if format is DiffFormat.json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for line in result.lines():
            typer.echo(escape.text(line))
        typer.echo("drift: yes" if result.drifted else "drift: none")
    raise typer.Exit(1 if result.drifted else 0)


@app.command("validate", epilog="\b\nExamples:\n  modelshield sbom validate model.cdx.json\n"
                                 "  modelshield sbom validate model.cdx.json --spec-version 1.7")
def validate_cmd(
    path: Path = typer.Argument(..., help="A CycloneDX JSON BOM."),
    spec_version: Optional[SpecVersion] = typer.Option(None, "--spec-version", help="Validate against this version instead of the BOM's specVersion."),
) -> None:
    """Strict schema validation (1.6 or 1.7). Exit 0 valid, 1 invalid, 2 unreadable."""
    from modelshield.sbom.validate import schema_errors

    doc = read_bom_json(path)
    declared = str(doc.get("specVersion", ""))
    version = spec_version.value if spec_version else declared
    if spec_version and declared != version:
        typer.echo(f"{path}: declares CycloneDX {declared or '(no specVersion)'}, not {version}; "
                   f"validate it as {declared or 'its own version'} (omit --spec-version)")
        raise typer.Exit(1)
    errors = schema_errors(doc, version)
    if errors:
        for line in errors[:200]:
            typer.echo(escape.text(line))
        typer.echo(f"{path}: invalid CycloneDX {version} ({len(errors)} error(s))")
        raise typer.Exit(1)
    typer.echo(f"{path}: valid CycloneDX {version}")


def _register_audit() -> None:
    """`sbom audit` lives with the advisories (modelshield.advisories_cli)."""
    from modelshield.advisories_cli import sbom_audit

    app.command("audit", epilog="\b\nExamples:\n  modelshield sbom audit model.cdx.json --requirements requirements.txt")(sbom_audit)


_register_audit()
