"""`modelshield advisories` (list, show, import, update), the scan hook, and `sbom audit`.

    modelshield advisories list [--package keras]
    modelshield advisories show CVE-2025-1550
    modelshield advisories import PyPI-all.zip        # an OSV dump, no network
    modelshield advisories update [--osv-url URL]     # refresh from an OSV API
    modelshield sbom audit model.cdx.json --requirements requirements.txt

Thin: the logic lives in `modelshield.advisories`.
"""
from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from modelshield.cli_common import FailOn, error, fail, load_policy, read_bom_json, write_output
from modelshield.scanner.findings import Report

if TYPE_CHECKING:
    from modelshield.advisories.database import CombinedDatabase

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="OSV advisories for the loader libraries that open model artefacts.",
                  epilog="\b\nExamples:\n  modelshield advisories list --package keras\n  modelshield advisories show CVE-2025-1550")


class ListFormat(str, enum.Enum):
    text = "text"
    json = "json"


class AuditFormat(str, enum.Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    cyclonedx = "cyclonedx"


def _database() -> CombinedDatabase:
    from modelshield.advisories.database import open_database

    try:
        return open_database()
    except OSError as exc:
        fail(f"advisory index unreadable: {exc} (delete it or run `modelshield advisories import/update` again)")


def _warn_if_stale(db: CombinedDatabase) -> None:
    described = db.describe()
    if described.get("warning"):
        typer.echo(f"modelshield: warning: {described['warning']}", err=True)


def attach_advisories(report: Report, policy: Any, requirements: list[Path], python: Optional[Path],
                      ignore_vuln: list[str], quiet: bool = False) -> None:
    """The scan hook: runtime (environment, --requirements, --python) x formats -> findings."""
    from modelshield.advisories.audit import check_report
    from modelshield.advisories.errors import InputError
    from modelshield.advisories.policy import parse
    from modelshield.advisories.errors import AdvisoryPolicyError
    from modelshield.advisories.runtime import load_runtime

    try:
        adv_policy = parse(getattr(policy, "advisories", {}) or {}, policy.source or "policy")
    except AdvisoryPolicyError as exc:
        fail(str(exc))
    try:
        runtime = load_runtime(requirements, python)
    except InputError as exc:
        fail(str(exc))
    db = _database()
    result = check_report(report, runtime, db, policy=adv_policy, ignore=ignore_vuln,
                          apply_suppressions=policy.apply_suppressions,
                          record_runtime=bool(requirements) or python is not None)
    if result.warning:
        typer.echo(f"modelshield: warning: {result.warning}", err=True)
    if not quiet:
        for note in runtime.notes:
            typer.echo(f"modelshield: note: {note}", err=True)


@app.command("list", epilog="\b\nExamples:\n  modelshield advisories list\n  modelshield advisories list --package keras")
def list_cmd(
    package: Optional[str] = typer.Option(None, "--package", "-p", help="Only advisories for this PyPI package."),
    format: ListFormat = typer.Option(ListFormat.text, "--format", "-f", help="Output format."),
) -> None:
    """The advisories in the database in use (pip-audit-like columns)."""
    from modelshield.advisories import listing

    db = _database()
    rows = listing.rows(db, package)
    if format is ListFormat.json:
        typer.echo(json.dumps({"database": db.describe(), "advisories": rows}, indent=2))
    else:
        typer.echo(listing.table(rows))
        typer.echo(f"\n{len(rows)} advisories; {db.info().describe()}")
    _warn_if_stale(db)


@app.command("show", epilog="\b\nExamples:\n  modelshield advisories show CVE-2025-1550")
def show_cmd(
    ident: str = typer.Argument(..., help="An advisory id or alias (GHSA-..., CVE-..., PYSEC-...)."),
    raw: bool = typer.Option(False, "--json", help="Print the OSV record itself."),
) -> None:
    """One advisory: summary, packages, ranges, fix, formats, references. Exit 2 if unknown."""
    from modelshield.advisories import listing

    db = _database()
    adv = db.get(ident)
    if adv is None:
        fail(f"no advisory {ident!r} in the {db.info().kind} database (try `modelshield advisories update`)")
    typer.echo(json.dumps(adv.raw, indent=2, ensure_ascii=False) if raw else listing.describe(adv))


@app.command("import", epilog="\b\nExamples:\n  modelshield advisories import PyPI-all.zip")
def import_cmd(dump: Path = typer.Argument(..., help="An OSV dump zip (e.g. the PyPI all.zip of the OSV bucket).")) -> None:
    """Keep the ML-relevant advisories of an OSV dump in the local index (no network). Exit 2 on bad input."""
    from modelshield.advisories.dump import import_dump
    from modelshield.advisories.errors import InputError

    try:
        result = import_dump(dump)
    except InputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the advisory index: {exc.strerror or exc}")
    typer.echo(f"imported {result.kept} ML-relevant advisories of {result.read} records "
               f"(dump dated {result.date.date().isoformat() if result.date else '?'}) -> {result.path}")
    if result.malformed:
        typer.echo(f"modelshield: warning: {len(result.malformed)} malformed record(s) skipped, "
                   f"e.g. {result.malformed[0]}", err=True)


@app.command("update", epilog="\b\nExamples:\n  modelshield advisories update")
def update_cmd(
    osv_url: str = typer.Option("https://api.osv.dev", "--osv-url", help="OSV-compatible API base URL."),
    timeout: float = typer.Option(60.0, "--timeout", help="Read timeout per request, seconds."),
) -> None:
    """Refresh the local index from an OSV API (querybatch, then each record). Exit 2 when offline."""
    from modelshield.advisories.osv_api import update
    from modelshield.advisories.errors import UpdateError

    try:
        result = update(osv_url, timeout=(min(10.0, timeout), timeout))
    except UpdateError as exc:
        fail(f"advisory update failed: {exc}; the previous database stays in use")
    except OSError as exc:
        fail(f"cannot write the advisory index: {exc.strerror or exc}")
    typer.echo(f"updated: {result.records} advisories ({result.fetched} fetched, {result.reused} unchanged) "
               f"from {result.url} -> {result.path}")


def sbom_audit(
    bom: Path = typer.Argument(..., help="A CycloneDX JSON BOM (ours, or a third party's ML-BOM with file hashes)."),
    requirements: list[Path] = typer.Option([], "--requirements", "-r", help="The deployment's requirements.txt, pyproject.toml, uv.lock, poetry.lock or pylock.toml (repeatable)."),
    python: Optional[Path] = typer.Option(None, "--python", help="The deployment's Python interpreter (its installed packages)."),
    format: AuditFormat = typer.Option(AuditFormat.text, "--format", "-f", help="text, json, sarif, or cyclonedx (the BOM with updated vulnerabilities[])."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here (default: stdout)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file (waivers, known-bad hashes)."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="Exit 1 at or above this severity [default: high, or the policy's]."),
    ignore_vuln: list[str] = typer.Option([], "--ignore-vuln", help="Ignore this advisory id or alias (repeatable)."),
) -> None:
    """Re-check a BOM against today's advisories and known-bad hashes, without touching artefacts.

    Exit 0 passed, 1 blocked, 2 incomplete or bad input (as `scan`).
    """
    from modelshield.advisories import bom_audit
    from modelshield.advisories.errors import InputError
    from modelshield.advisories.policy import parse
    from modelshield.advisories.errors import AdvisoryPolicyError

    pol = load_policy(policy, fail_on)
    try:
        adv_policy = parse(pol.advisories, pol.source or "policy")
    except AdvisoryPolicyError as exc:
        fail(str(exc))
    doc = read_bom_json(bom)
    db = _database()
    try:
        audit = bom_audit.audit(doc, db, requirements=requirements, python=python, policy=adv_policy,
                                ignore=ignore_vuln, fail_on=pol.fail_on, apply_suppressions=pol.apply_suppressions,
                                name=str(bom))
    except InputError as exc:
        fail(str(exc))
    if audit.result.warning:
        typer.echo(f"modelshield: warning: {audit.result.warning}", err=True)
    report = audit.report
    if format is AuditFormat.cyclonedx:
        from modelshield.sbom import dumps, schema_errors

        updated = bom_audit.write_back(doc, audit, now=report.started or None)
        version = str(updated.get("specVersion", ""))
        if version in ("1.6", "1.7"):
            errors = schema_errors(updated, version)
            if errors:
                fail(f"the updated BOM is not valid CycloneDX {version} (a modelshield bug): {errors[0]}")
        else:
            typer.echo(f"modelshield: note: CycloneDX {version or '?'} BOM written back without schema validation "
                       "(modelshield validates 1.6 and 1.7)", err=True)
        text = dumps(updated)
    elif format is AuditFormat.json:
        from modelshield.scanner.output import json as json_out
        text = json_out.render(report)
    elif format is AuditFormat.sarif:
        from modelshield.scanner.output import sarif as sarif_out
        text = sarif_out.render(report)
    else:
        from modelshield.scanner.output import text as text_out
        text = text_out.render(report)
    write_output(text, output)
    if not audit.files:
        error(f"{bom}: no file components with a SHA-256 hash: nothing to re-assess")
    raise typer.Exit(report.exit_code(inconclusive_ok=pol.inconclusive_ok) if audit.files else 2)
