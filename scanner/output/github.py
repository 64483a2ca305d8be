"""GitHub Actions workflow commands: one annotation per finding, then a notice with the verdict.

    ::error file=models/evil.pkl,title=MS-PKL-001 (critical)::The pickle imports os.system ...

Blocking findings are `error`, other active threats and inconclusive results `warning`, waived
and info findings `notice` (info only with `verbose`). Values are escaped per the workflow-command
rules (`escape.workflow_data` / `workflow_property`: `%`, CR, LF, and `:` `,` in properties) after
`escape.text`, so a file name or message can never end the command or start another one.
"""
from __future__ import annotations

import os

from ..findings import Finding, Kind, Report, Severity, TargetResult
from . import escape
from .text import call_text, where
from .words import plural


def render(report: Report, verbose: bool = False) -> str:
    """The report as workflow commands (one per line)."""
    lines = []
    for target in report.targets:
        if target.error:
            lines.append(_command("error", {"title": "modelshield: target not scanned"}, target.error))
    for target, artefact, finding in report.all_findings():
        if finding.severity is Severity.INFO and finding.kind is Kind.INFO and not verbose:
            continue
        level = _level(report, finding)
        props = {"file": _file(target, artefact.path if artefact else "."),
                 "title": f"{finding.rule_id} ({finding.severity}{', waived' if finding.suppressed else ''})"}
        if finding.location.line is not None and not finding.location.member:
            props["line"] = str(max(finding.location.line, 1))
        lines.append(_command(level, props, _message(finding)))
    blocking = len(report.blocking())
    s = report.summary()
    policy = (report.policy or {}).get("source") or "built-in defaults"
    lines.append(_command("notice", {"title": f"modelshield: {report.verdict.value}"},
                          f"{plural(s['artefacts'], 'file')}, {plural(blocking, 'blocking finding')}, "
                          f"{s['suppressed']} waived; policy: {policy}"))
    return "\n".join(lines) + "\n"


def _level(report: Report, f: Finding) -> str:
    if not f.active or f.kind is Kind.INFO:
        return "notice"
    if f.kind is Kind.THREAT and f.severity >= report.fail_on:
        return "error"
    return "warning"


def _message(f: Finding) -> list[str]:
    """The annotation's lines, each already escaped to one printable line."""
    lines = [escape.text(f.message)]
    call = call_text(f)
    if call:
        lines.append(f"call: {call}")
    at = where(f)
    if at:
        lines.append(f"at: {', '.join(at)}")
    if f.recommendation:
        lines.append(f"fix: {escape.text(f.recommendation)}")
    if f.suppressed:
        lines.append(f"waived: {escape.text(f.suppressed.reason)} (until {escape.text(f.suppressed.expires)})")
    return lines


def _file(target: TargetResult, path: str) -> str:
    """The path GitHub matches against the checkout: relative to the working folder for local
    files inside it, else the absolute path (Hub and URL targets: the target and member path)."""
    if target.root is None:
        return path if path != "." else target.target
    full = os.path.normpath(os.path.join(target.root, path))
    rel = os.path.relpath(full, os.getcwd())
    return full if rel.startswith("..") else rel.replace(os.sep, "/")


def _command(level: str, props: dict[str, str], message: str | list[str]) -> str:
    """`::level k=v,...::message`. A message given as escaped lines keeps its line breaks (as
    %0A); a plain string is escaped to one line."""
    parts = ",".join(f"{k}={escape.workflow_property(v)}" for k, v in props.items())
    body = escape.workflow_data("\n".join(message), escaped=True) if isinstance(message, list) \
        else escape.workflow_data(message)
    return f"::{level} {parts}::{body}"
