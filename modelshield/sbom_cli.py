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

from modelshield.cli_common import (FailOn, SpecVersion, error, fail, load_policy, read_bom_json, source_options,
                                      write_output)
from modelshield.scanner.findings import Report
from modelshield.scanner.output import escape


class _DefaultCreate(TyperGroup):
    """`modelshield sbom TARGET ...` means `modelshield sbom create TARGET ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultCreate, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ML-BOMs (CycloneDX 1.6/1.7, SPDX 3.0.1): create (default), diff, validate, check, audit.",
                  epilog="\b\nExamples:\n  modelshield sbom ./model -o model.dev.cdx.json\n  modelshield sbom validate model.cdx.json")


class Phase(str, enum.Enum):
    """The BOM's phase; `sbom` adds end-of-life to the phases `scan --sbom` offers."""

    development = "development"
    deployment = "deployment"
    end_of_life = "end-of-life"


class BomFormat(str, enum.Enum):
    cyclonedx = "cyclonedx"
    spdx3 = "spdx3"


class DiffFormat(str, enum.Enum):
    text = "text"
    json = "json"


def attribution(supplier: Optional[str], manufacturer: Optional[str], author: Optional[str]) -> Any:
    """The user's statement of supplier, manufacturer URL and BOM author ("Name <email>")."""
    from modelshield.sbom.context import Attribution

    if manufacturer is not None and not manufacturer.startswith(("https://", "http://")):
        error(f"--manufacturer takes a URL (https://...), not {manufacturer!r}")
        raise typer.Exit(2) from None
    name, email = Attribution.parse_author(author)
    return Attribution(supplier=(supplier or "").strip() or None, manufacturer=manufacturer,
                       author_name=name, author_email=email)


def make_bom(report: Report, *, phase: str = "development", spec_version: str = "1.6",
             from_bom: Optional[dict[str, Any]] = None, reproducible: bool = False, who: Any = None,
             decision: Optional[str] = None, declarations: bool = False,
             etsi: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The validated BOM dict; typer.Exit(2) with the schema errors when it would be invalid (a bug)."""
    from modelshield.sbom import BomInvalid, build
    from modelshield.sbom.evidence import EvidenceInputError

    try:
        built = build(report, phase=phase, spec_version=spec_version, from_bom=from_bom,
                      reproducible=reproducible, attribution=who, decision=decision, declarations=declarations,
                      etsi_policy=etsi)
    except BomInvalid as exc:
        error(f"the generated BOM is not valid CycloneDX {spec_version} (a modelshield bug):")
        for line in exc.errors[:50]:
            typer.echo(f"  {escape.text(line)}", err=True)
        raise typer.Exit(2) from None
    except (ValueError, EvidenceInputError) as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    for note in built.notes:
        typer.echo(f"modelshield: {escape.text(note)}", err=True)
    return built.document


def render_bom(report: Report, *, phase: str = "development", spec_version: str = "1.6",
               from_bom: Optional[dict[str, Any]] = None, reproducible: bool = False,
               who: Any = None, decision: Optional[str] = None, declarations: bool = False,
               fmt: str = "cyclonedx", etsi: Optional[dict[str, Any]] = None) -> str:
    """The BOM text in `fmt` (cyclonedx | spdx3)."""
    from modelshield.sbom import dumps

    doc = make_bom(report, phase=phase, spec_version=spec_version, from_bom=from_bom, reproducible=reproducible,
                   who=who, decision=decision, declarations=declarations, etsi=etsi)
    if fmt != "spdx3":
        return dumps(doc)
    try:
        from modelshield.sbom import spdx3
    except ImportError:
        error("SPDX 3 output needs spdx-python-model: pip install 'modelshield[spdx]'")
        raise typer.Exit(2) from None
    try:
        return spdx3.dumps(spdx3.build(doc))
    except spdx3.SpdxUnavailable as exc:
        error(str(exc))
        raise typer.Exit(2) from None


def write_bom_from_report(report: Report, path: Path, *, phase: str = "development", spec_version: str = "1.6",
                          from_bom: Optional[Path] = None, reproducible: bool = False) -> None:
    """Write the BOM of an existing scan (used by `modelshield scan --sbom`)."""
    if phase not in ("development", "deployment", "end-of-life"):
        error(f"unknown phase {phase!r} (development, deployment or end-of-life)")
        raise typer.Exit(2) from None
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
    format: BomFormat = typer.Option(BomFormat.cyclonedx, "--format", "-f", help="cyclonedx (JSON) or spdx3 (SPDX 3.0.1 JSON-LD, AI and Dataset profiles)."),
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
    declarations: bool = typer.Option(False, "--declarations", help="Add ETSI EN 304 223 evidence (definitions.standards + declarations)."),
    decision: Optional[str] = typer.Option(None, "--decision", help="End of life: the decommissioning decision to record (required with --phase end-of-life)."),
    requirements: list[Path] = typer.Option([], "--requirements", "-r", help="The deployment's runtime: requirements.txt, pyproject.toml, uv.lock, poetry.lock, pylock.toml (repeatable); listed with versions, licences and lock hashes, checked for advisories."),
    python: Optional[Path] = typer.Option(None, "--python", help="The deployment's runtime: this interpreter's installed packages."),
    ignore_vuln: list[str] = typer.Option([], "--ignore-vuln", help="Ignore this advisory id or alias (repeatable)."),
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
    if phase is Phase.end_of_life and not (decision or "").strip():
        fail('--phase end-of-life needs --decision "what was decided" (e.g. "retired, weights destroyed")')
    if from_bom is not None and phase is Phase.development:
        typer.echo("modelshield: note: --from-bom links a development BOM from a deployment BOM", err=True)
    previous = read_bom_json(from_bom) if from_bom is not None else None
    report = scan(targets, policy=pol, options=options)
    errors = [t.error for t in report.targets if t.error]
    for message in errors:
        error(message)
    if errors:
        error("no BOM written" + (f" to {output}" if output and str(output) != "-" else ""))
        raise typer.Exit(2) from None
    if requirements or python is not None:  # the deployment's runtime, never this process's environment
        from modelshield.advisories_cli import attach_advisories

        attach_advisories(report, pol, requirements, python, ignore_vuln, quiet=True)
    text = render_bom(report, phase=phase.value, spec_version=spec_version.value, from_bom=previous,
                      reproducible=reproducible, who=who, decision=decision, declarations=declarations,
                      fmt=format.value, etsi=pol.etsi)
    write_output(text, output)
    files = sum(1 for t in report.targets for _ in t.artefacts)
    findings = sum(1 for _, _, f in report.all_findings() if f.kind.value != "info")
    kind = "SPDX 3.0.1" if format is BomFormat.spdx3 else f"CycloneDX {spec_version.value}"
    typer.echo(f"modelshield: {phase.value} BOM ({kind}): {files} files, {findings} findings, "
               f"verdict {report.verdict.value}" + (f" -> {output}" if output and str(output) != "-" else ""), err=True)


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


class Profile(str, enum.Enum):
    ntia = "ntia"
    cisa_2025 = "cisa-2025"
    bsi = "bsi-tr-03183-2"


@app.command("check", epilog="\b\nExamples:\n  modelshield sbom check model.cdx.json --profile ntia\n"
                              "  modelshield sbom check model.cdx.json -p bsi-tr-03183-2 -p cisa-2025 --format json")
def check_cmd(
    path: Path = typer.Argument(..., help="A CycloneDX JSON BOM (any tool's)."),
    profile: list[Profile] = typer.Option(..., "--profile", "-p", help="ntia, cisa-2025 or bsi-tr-03183-2 (repeatable)."),
    format: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="Output format."),
) -> None:
    """Score a BOM against minimum-element profiles, per element pass / warn / fail.
    Exit 0 no element fails, 1 an element fails, 2 unreadable."""
    from modelshield.sbom import profiles

    doc = read_bom_json(path)
    results = [profiles.check(doc, p.value) for p in profile]
    if format is DiffFormat.json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for result in results:  # component names come from artefacts: one escaped line each
            for line in profiles.text(result).splitlines():
                typer.echo(escape.text(line))
    raise typer.Exit(1 if any(r.failed for r in results) else 0)


def _register_audit() -> None:
    """`sbom audit` lives with the advisories (modelshield.advisories_cli)."""
    from modelshield.advisories_cli import sbom_audit

    app.command("audit", epilog="\b\nExamples:\n  modelshield sbom audit model.cdx.json --requirements requirements.txt")(sbom_audit)


_register_audit()
