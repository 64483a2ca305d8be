"""The thin command-line layer: parse options, call the public API, render, map to an exit code."""
from __future__ import annotations

import contextlib
import enum
import io
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from modelshield import __version__
from modelshield.cli_common import (ConventionGroup, FailOn, Phase, SpecVersion, check_output_path, error, fail,
                                    load_policy, make_app, print_version, source_options, write_output)
from modelshield.signatures_cli import apply_trust, register as register_signature_commands

app = make_app(cls=ConventionGroup, help="Static scanner and ML-BOM generator for third-party models and datasets.",
               epilog="\b\nExamples:\n  modelshield scan ./model\n  modelshield scan hf://org/name@main --format sarif -o scan.sarif"
                      "\n  modelshield rules MS-PKL-001\n  modelshield sbom ./model -o model.cdx.json")


class Format(str, enum.Enum):
    text = "text"
    columns = "columns"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"
    github = "github"
    gitlab = "gitlab"


SCAN_EXAMPLES = """\b
Examples:
  modelshield scan ./model                                  # exit 0 passed, 1 blocked, 2 incomplete
  modelshield scan ckpts/ --format sarif -o scan.sarif --fail-on critical
  modelshield scan repo/ --exclude 'tests/*' --policy ci/modelshield.toml
  modelshield scan hf://org/name@v1.0 --include '*.safetensors' --max-download 5GB
  modelshield scan ./model --format markdown >> "$GITHUB_STEP_SUMMARY"
  modelshield scan ./model --sbom model.dev.cdx.json"""


def progress_printer(quiet: bool, targets: int = 1) -> tuple[Any, Callable[[str, str, int], None] | None]:
    """One rich progress bar on stderr for the whole scan, only when stderr is a terminal: bytes
    hashed of all targets opened so far (the total grows as targets are listed), targets done,
    the file being read."""
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.markup import escape as markup
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from modelshield.scanner.output.escape import text as shown

    # DownloadColumn counts in decimal units (MB = 10^6 bytes), as the reports and --max-download do.
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=False),
                   TransferSpeedColumn(), transient=True,
                   console=__import__("rich.console").console.Console(stderr=True))
    task = bar.add_task("scanning", total=None)
    total, done = [0], [0]

    def label(what: str) -> str:
        name = markup(shown(what)[-40:])
        return f"{done[0]}/{targets} targets  {name}" if targets > 1 else f"scanning {name}"

    def on_event(event: str, what: str, n: int) -> None:
        # targets overlap when their files share the workers: one bar counts them all
        if event == "start":
            total[0] += n
            bar.update(task, total=total[0] or None, description=label(what))
        elif event == "advance":
            bar.update(task, advance=n, description=label(what))
        elif event == "done":
            done[0] += 1
            bar.update(task, description=label(what))

    return bar, on_event


def _pair_outputs(formats: list[Format], outputs: list[Path]) -> dict[Format, Optional[Path]]:
    """--format/-o pairs by position: the n-th format goes to the n-th -o, a format without one
    to stdout (only one may); one -o without --format takes the text report."""
    formats = formats or [Format.text]
    if len(outputs) > len(formats):
        fail("more -o than --format: give one --format per -o")
    if len(set(formats)) != len(formats):
        fail("give each --format once")
    paths: list[Optional[Path]] = [None if str(p) == "-" else p for p in outputs]
    paths += [None] * (len(formats) - len(paths))
    if paths.count(None) > 1:
        fail("only one --format can go to stdout; give the others an -o FILE")
    return dict(zip(formats, paths))


def use_color(output: Optional[Path]) -> bool:
    """ANSI colour only for text on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    from modelshield.scanner.env import color_allowed

    return (output is None or str(output) == "-") and sys.stdout.isatty() and color_allowed()


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


def _ray_executor() -> Any:
    from modelshield.scanner.errors import RayUnavailable
    from modelshield.scanner.ray_executor import RayExecutor

    try:
        return RayExecutor()
    except RayUnavailable as exc:
        fail(str(exc))


class _RayLines(io.TextIOBase):
    """Where stdout points while Ray is connected: Ray's driver prints cluster messages (a worker
    lost, a task retried) on stdout from a thread of its own, and stdout carries the report. They
    go to stderr instead, one escaped line each."""

    def __init__(self) -> None:
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from modelshield.scanner.output import escape

        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            if line:
                sys.stderr.write(f"modelshield: {escape.text(line)}\n")
        return len(text)


@contextlib.contextmanager
def _ray_session(ray: Any) -> Iterator[None]:
    """The scan with Ray connected (stdout guarded, see _RayLines); Ray shut down at the end."""
    if ray is None:
        yield
        return
    try:
        with contextlib.redirect_stdout(_RayLines()):
            try:
                yield
            finally:
                ray.close()
    finally:
        sys.stdout.flush()


@app.command(epilog=SCAN_EXAMPLES)
def scan(
    targets: list[str] = typer.Argument(None, metavar="TARGET", show_default=False, help="Files, folders, hf://org/name[@rev], hf://datasets/..., HF cache folders, or https:// URLs."),
    from_file: Optional[Path] = typer.Option(None, "--from", metavar="FILE", help="Also scan the targets listed in FILE, one a line ('#' comments; '-' reads stdin)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=0, metavar="N", help="Analysis processes (each under the hard limits) [default: 2, or 1 on one core; 0: in this process]."),
    store: Optional[str] = typer.Option(None, "--store", metavar="PATH|URL", help="Result store: reuse analyses of bytes seen before (a sqlite file or postgresql:// URL) [default: results.sqlite in the user cache dir, or MODELSHIELD_STORE]."),
    no_store: bool = typer.Option(False, "--no-store", help="Neither read nor write the result store."),
    executor: Executor = typer.Option(Executor.local, "--executor", help="Where files are analysed: worker processes here, or Ray tasks on the cluster in RAY_ADDRESS (pip install \"modelshield[ray]\")."),
    format: list[Format] = typer.Option([], "--format", "-f", help="Output format [default: text] (columns: the text report as a table; gitlab: GitLab's SAST security report). Repeat with -o to write several reports from one scan."),
    output: list[Path] = typer.Option([], "--output", "-o", metavar="FILE", help="Write the report of the matching --format here (default: stdout; '-' is stdout)."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", case_sensitive=False, help="Exit 1 on findings at or above this severity [default: high, or the policy's]."),
    policy: Optional[Path] = typer.Option(None, "--policy", metavar="FILE", help="Policy file (default: modelshield.toml or [tool.modelshield] in pyproject.toml, searched from here up to the repository root or home folder)."),
    no_policy: bool = typer.Option(False, "--no-policy", help="Ignore every policy file: built-in defaults only."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Text: only blocking findings and the summary; no progress."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show info findings."),
    include: list[str] = typer.Option([], "--include", metavar="GLOB", help="Only files whose path (relative to the target) matches this glob; repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="GLOB", help="Skip files whose path matches this glob; repeatable."),
    include_vcs: bool = typer.Option(False, "--include-vcs", help="Local folders: also scan .git/, .hg/, .svn/... (skipped by default)."),
    max_download: Optional[str] = typer.Option(None, "--max-download", metavar="SIZE", help="Remote sources: refuse to download more than this (e.g. 5GB, 500MiB)."),
    offline: bool = typer.Option(False, "--offline", help="Hub targets: use only the local HF cache (like HF_HUB_OFFLINE=1)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", metavar="DIR", help="Hub targets: HF cache folder (default: the standard cache, HF_HOME)."),
    sbom: Optional[Path] = typer.Option(None, "--sbom", metavar="FILE", help="Also write a CycloneDX ML-BOM built from this same scan."),
    phase: Phase = typer.Option(Phase.development, "--phase", help="BOM phase for --sbom."),
    spec_version: SpecVersion = typer.Option(SpecVersion.v1_6, "--spec-version", help="CycloneDX version for --sbom."),
    from_bom: Optional[Path] = typer.Option(None, "--from-bom", metavar="FILE", help="--sbom deployment phase: the development BOM to link and compare with."),
    reproducible: bool = typer.Option(False, "--reproducible", help="--sbom: byte-identical output for the same input (also SOURCE_DATE_EPOCH)."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="Trust policy for model signatures ([trust] table: keys, CAs, identities per target)."),
    require_signature: bool = typer.Option(False, "--require-signature", help="Exit 1 unless every target carries a valid, trusted signature."),
    requirements: list[Path] = typer.Option([], "--requirements", "-r", help="Check advisories against these pins (requirements.txt, pyproject.toml, uv.lock, poetry.lock, pylock.toml; repeatable) instead of this environment."),
    python: Optional[Path] = typer.Option(None, "--python", help="Check advisories against this interpreter's installed packages (a deployment venv)."),
    ignore_vuln: list[str] = typer.Option([], "--ignore-vuln", help="Ignore this advisory id or alias (repeatable)."),
) -> None:
    """Scan model and dataset artefacts. Exit 0 passed, 1 blocked, 2 incomplete or error."""
    from modelshield import scan as api_scan
    from modelshield.scanner import output as renderers

    from modelshield.store_cli import open_for_scan, read_targets, store_summary, warn

    targets = list(targets or []) + (read_targets(from_file) if from_file is not None else [])
    if not targets:
        fail("give at least one TARGET (or --from FILE)")
    pol = load_policy(policy, fail_on, no_policy)
    apply_trust(pol, trust, require_signature)
    options = source_options(include, exclude, max_download, offline, cache_dir, include_vcs)
    reports = _pair_outputs(format, output)
    for path in reports.values():
        check_output_path(path, "-o")
    check_output_path(sbom, "--sbom")
    if quiet or not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # noqa: TID251 - silences the Hub client's own bars
    bar, on_event = progress_printer(quiet, len(targets))
    result_store = open_for_scan(store, no_store)
    ray = _ray_executor() if executor is Executor.ray else None
    try:
        with _ray_session(ray):
            if bar is not None:
                with bar:
                    report = api_scan(targets, policy=pol, progress=on_event, options=options, workers=jobs,
                                      store=result_store, warn=warn, executor=ray)
            else:
                report = api_scan(targets, policy=pol, options=options, workers=jobs, store=result_store,
                                  warn=warn, executor=ray)
    finally:
        if result_store is not None:
            result_store.close()
    if result_store is not None and not quiet:
        store_summary(report)
    if ray is not None and not quiet:
        for line in ray.describe():
            typer.echo(f"modelshield: {line}", err=True)
    from modelshield.advisories_cli import attach_advisories

    attach_advisories(report, pol, requirements, python, ignore_vuln, quiet)
    for message in report.errors:  # on stderr, once (a text report on stdout leaves them out)
        error(message)
    for fmt, path in reports.items():
        write_output(renderers.render_chunks(report, fmt.value, quiet=quiet, verbose=verbose, color=use_color(path),
                                             width=shutil.get_terminal_size().columns, errors=path is not None), path)
    if sbom is not None:
        from modelshield.sbom_cli import write_bom_from_report

        write_bom_from_report(report, sbom, phase=phase.value, spec_version=spec_version.value, from_bom=from_bom,
                              reproducible=reproducible)
    raise typer.Exit(report.exit_code(inconclusive_ok=pol.inconclusive_ok))


@app.command(epilog="\b\nExamples:\n  modelshield rules\n  modelshield rules MS-PKL-001\n  modelshield rules --markdown > docs/rules.md")
def rules(
    rule_id: Optional[str] = typer.Argument(None, metavar="RULE_ID", help="Explain this rule (e.g. MS-PKL-001)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/rules.md."),
) -> None:
    """List the rule table (id, severity, kind, title), or explain one rule."""
    from modelshield.scanner.rules import explain, load_rules, markdown_table

    if markdown:
        sys.stdout.write(markdown_table())
        return
    if rule_id is not None:
        try:
            sys.stdout.write(explain(rule_id))
        except KeyError as exc:
            fail(str(exc.args[0]))
        return
    for rule in load_rules():
        typer.echo(f"{rule.id:<12} {str(rule.severity):<8} {rule.kind.value:<12} {rule.title}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"modelshield {__version__}")


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", is_eager=True, callback=print_version,
                                            help="Show the version and exit (any command accepts it).")) -> None:
    """Static scanner and ML-BOM generator for third-party models and datasets."""


def _register_optional_commands() -> None:
    """Sub-commands owned by other modules (sbom)."""
    try:
        from modelshield.sbom_cli import app as sbom_app
    except ImportError:
        return
    app.add_typer(sbom_app, name="sbom")
    from modelshield.report_cli import EXAMPLES as REPORT_EXAMPLES, report

    app.command("report", epilog=REPORT_EXAMPLES)(report)
    from modelshield.advisories_cli import app as advisories_app

    app.add_typer(advisories_app, name="advisories")
    from modelshield.store_cli import app as store_app

    app.add_typer(store_app, name="store")


_register_optional_commands()
register_signature_commands(app)


def main() -> None:
    """Console entry point: never a traceback for bad input; exit 2 on usage errors."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # a terminal that cannot show a character
    try:
        app(prog_name="modelshield")
    except KeyboardInterrupt:
        typer.echo("modelshield: interrupted", err=True)
        sys.exit(2)
