"""Markdown (GitHub-flavoured) report for job summaries and pull-request comments.

A heading with the verdict, a table of targets, a table of the artefacts that are not clean, the
top findings (most severe first) with links to the rule table, and the summary lines. Every
artefact-derived string is a code span or escaped prose (`escape.markdown_code/markdown_text`), so
a hostile name can neither break the table nor inject links, mentions or HTML.
"""
from __future__ import annotations

from ..findings import Kind, Report, Severity, Verdict
from . import escape
from .sarif import RULES_DOC
from .text import call_text, summary_lines, where
from .words import plural, size

MAX_ARTEFACTS = 50
MAX_FINDINGS = 25
_ICON = {Verdict.UNSAFE: ":x:", Verdict.INCONCLUSIVE: ":warning:", Verdict.WAIVED: ":heavy_minus_sign:",
         Verdict.CLEAN: ":white_check_mark:"}


def render(report: Report, verbose: bool = False, max_findings: int = MAX_FINDINGS) -> str:
    """The report as markdown; `verbose` lists info findings too."""
    verdict = report.verdict
    s = report.summary()
    lines = [f"## {_ICON[verdict]} modelshield: {verdict.value}", ""]
    lines += ["| target | verdict | files | findings |", "|---|---|---|---|"]
    for t in report.targets:
        n = sum(1 for f in [*t.findings, *(f for a in t.artefacts for f in a.findings)]
                if f.active and f.kind is not Kind.INFO)
        lines.append(f"| {escape.markdown_code(t.target)} | {_ICON[t.verdict]} {t.verdict.value} | "
                     f"{len(t.artefacts)} | {n} |")
    errors = [t.error for t in report.targets if t.error]
    if errors:
        lines += ["", "**Errors**", ""] + [f"- {escape.markdown_code(e)}" for e in errors]

    flagged = [art for t in report.targets for art in t.artefacts if art.verdict is not Verdict.CLEAN]
    if flagged:
        lines += ["", "### Artefacts", "", "| verdict | file | format | size |", "|---|---|---|---|"]
        for art in flagged[:MAX_ARTEFACTS]:
            lines.append(f"| {_ICON[art.verdict]} {art.verdict.value} | {escape.markdown_code(art.path)} | "
                         f"{escape.markdown_code(art.format)} | {size(art.size)} |")
        if len(flagged) > MAX_ARTEFACTS:
            lines.append(f"\n{len(flagged) - MAX_ARTEFACTS} more not shown (see the full report).")

    rows = [(t, a, f) for t, a, f in report.all_findings()
            if verbose or f.severity > Severity.INFO or (f.active and f.kind is not Kind.INFO)]
    rows.sort(key=lambda r: (not r[2].active, -r[2].severity, r[2].rule_id))
    if rows:
        heading = "### Findings" if len(rows) <= max_findings else f"### Top {max_findings} of {len(rows)} findings"
        lines += ["", heading,
                  "", "| severity | rule | file | where | message |", "|---|---|---|---|---|"]
        for t, a, f in rows[:max_findings]:
            path = a.path if a is not None else t.target
            at = ", ".join(where(f))
            call = call_text(f)
            message = escape.markdown_text(f.message)
            if call:
                message += f" (call {escape.markdown_code(call, escaped=True)})"
            if f.suppressed:
                message += (f" — waived: {escape.markdown_text(f.suppressed.reason)} "
                            f"(until {escape.markdown_text(f.suppressed.expires)})")
            lines.append(f"| {str(f.severity)}{' (waived)' if f.suppressed else ''} | "
                         f"[{f.rule_id}]({RULES_DOC}#{f.rule_id.lower()}) | {escape.markdown_code(path)} | "
                         f"{escape.markdown_code(at, escaped=True)} | {message} |")
    lines += ["", f"{plural(s['artefacts'], 'file')} scanned, {size(s['bytes'])}."]
    lines += [f"- {line}" for line in summary_lines(report, verbose=verbose, quote=escape.markdown_code)[1:]]
    return "\n".join(lines) + "\n"
