"""The thin command-line layer: parse options, call the public API, render, map to an exit code."""
from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer

from modelshield import __version__, scan as api_scan
from modelshield.cli_common import FailOn, load_policy, source_options, write_output
from modelshield.scanner.findings import Report
from modelshield.scanner.output import json as json_out, sarif as sarif_out, text as text_out
from modelshield.scanner.output.names import printable_name

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Static scanner and ML-BOM generator for third-party models and datasets.")


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


def progress_printer(quiet: bool):
    """A rich progress bar on stderr, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   transient=True, console=__import__("rich.console").console.Console(stderr=True))
    tasks: dict[str, int] = {}

    def on_event(event: str, what: str, n: int) -> None:
        if event == "start":
            tasks["current"] = bar.add_task(f"scanning {what}", total=n or None)
        elif event == "advance" and "current" in tasks:
            bar.update(tasks["current"], advance=n, description=f"{what[-40:]}")
        elif event == "done" and "current" in tasks:
            bar.remove_task(tasks.pop("current"))

    return bar, on_event


def render(report: Report, fmt: Format, quiet: bool) -> str | Iterator[str]:
    if fmt is Format.json:
        return json_out.render_chunks(report)
    if fmt is Format.sarif:
        return sarif_out.render(report)
    return text_out.render(report, quiet=quiet)


@app.command()
def scan(
    targets: list[str] = typer.Argument(..., help="Files, folders, hf://org/name[@rev], hf://datasets/..., or https:// URLs."),
    format: Format = typer.Option(Format.text, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report here (default: stdout)."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="Exit 1 on findings at or above this severity [default: high, or the policy's]."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file (default: modelshield.toml or [tool.modelshield] in pyproject.toml, searched upward)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Text: only blocking findings and the summary; no progress."),
    include: list[str] = typer.Option([], "--include", help="Remote repos: only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Remote repos: skip files matching this glob (repeatable)."),
    max_download: Optional[str] = typer.Option(None, "--max-download", help="Remote sources: refuse to download more than this (e.g. 5GB)."),
    offline: bool = typer.Option(False, "--offline", help="Hub targets: use only the local HF cache (like HF_HUB_OFFLINE=1)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Hub targets: HF cache folder (default: the standard cache, HF_HOME)."),
    sbom: Optional[Path] = typer.Option(None, "--sbom", help="Also write a CycloneDX ML-BOM built from this same scan."),
    phase: str = typer.Option("development", "--phase", help="BOM phase for --sbom: development or deployment."),
    spec_version: str = typer.Option("1.6", "--spec-version", help="CycloneDX version for --sbom: 1.6 or 1.7."),
    from_bom: Optional[Path] = typer.Option(None, "--from-bom", help="--sbom deployment phase: the development BOM to link and compare with."),
    reproducible: bool = typer.Option(False, "--reproducible", help="--sbom: byte-identical output for the same input (also SOURCE_DATE_EPOCH)."),
) -> None:
    """Scan model and dataset artefacts. Exit 0 passed, 1 blocked, 2 incomplete or error."""
    pol = load_policy(policy, fail_on)
    options = source_options(include, exclude, max_download, offline, cache_dir)
    if quiet or not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the Hub client's own per-file bars
    bar, on_event = progress_printer(quiet)
    if bar is not None:
        with bar:
            report = api_scan(targets, policy=pol, progress=on_event, options=options)
    else:
        report = api_scan(targets, policy=pol, options=options)
    write_output(render(report, format, quiet), output)
    if sbom is not None:
        from modelshield.sbom_cli import write_bom_from_report

        write_bom_from_report(report, sbom, phase=phase, spec_version=spec_version, from_bom=from_bom,
                              reproducible=reproducible)
    for target in report.targets:
        if target.error:
            typer.echo(f"modelshield: error: {printable_name(target.error)}", err=True)
    raise typer.Exit(report.exit_code(inconclusive_ok=pol.inconclusive_ok))


@app.command()
def rules(markdown: bool = typer.Option(False, "--markdown", help="Print docs/rules.md.")) -> None:
    """List the rule table (id, severity, kind, title)."""
    from modelshield.scanner.rules import load_rules, markdown_table

    if markdown:
        sys.stdout.write(markdown_table())
        return
    for rule in load_rules():
        typer.echo(f"{rule.id:<12} {str(rule.severity):<8} {rule.kind.value:<12} {rule.title}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"modelshield {__version__}")


def _register_optional_commands() -> None:
    """Sub-commands owned by other modules (sbom)."""
    try:
        from modelshield.sbom_cli import app as sbom_app
    except ImportError:
        return
    app.add_typer(sbom_app, name="sbom")


_register_optional_commands()


def main() -> None:
    """Console entry point: never a traceback for bad input; exit 2 on usage errors."""
    try:
        app(prog_name="modelshield")
    except KeyboardInterrupt:
        typer.echo("modelshield: interrupted", err=True)
        sys.exit(2)
