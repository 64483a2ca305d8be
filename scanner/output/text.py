"""Human-readable report: a verdict line per artefact, findings grouped by file, then a summary.

Two layouts: `lines` (default; each finding with its call, position, fix and references) and
`columns` (one row per finding, fitted to the terminal width). Every artefact-derived string goes
through `escape.text`; colour (ANSI, our own words only) is the caller's choice.
"""
from __future__ import annotations

from typing import Callable

from ..findings import Location, Artefact, Finding, Kind, Report, Severity, Status, TargetResult, Verdict, to_dict
from . import escape
from .words import plural, size

_COLOURS = {"critical": "1;31", "high": "31", "medium": "33", "low": "36", "info": "2",
            Verdict.UNSAFE.value: "1;31", Verdict.INCONCLUSIVE.value: "33", Verdict.WAIVED.value: "35",
            Verdict.CLEAN.value: "32"}


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, word: str, key: str | None = None) -> str:
        code = _COLOURS.get(key or word.strip().lower())
        return f"\x1b[{code}m{word}\x1b[0m" if self.color and code else word


def render(report: Report, quiet: bool = False, verbose: bool = False, color: bool = False,
           layout: str = "lines", width: int = 100, errors: bool = True) -> str:
    """The report as text. `quiet`: only blocking findings and the summary; `verbose`: info too;
    `errors`: include target errors (the CLI prints them on stderr instead when this goes to stdout)."""
    style = _Style(color)
    lines: list[str] = []
    for target in report.targets:
        if target.error and errors:
            lines.append(f"{style('error', 'critical')}  {escape.text(target.error)}")
        if not quiet and (target.artefacts or not target.error):
            lines.append(f"{escape.text(target.target)}  [{style(target.verdict.value)}]" + _provenance(target))
            for a in target.artefacts:
                lines.append(f"  {style(f'{a.verdict.value:<12}', a.verdict.value)} {escape.text(a.path)}  "
                             f"({escape.text(a.format)}, {size(a.size)}){_status(a)}")
            if target.signature.outcome.value != "not-checked":
                lines.append("  " + signature_line(to_dict(target.signature)))
    groups = [(target, path, shown) for target, path, shown in _groups(report, quiet, verbose)]
    if layout == "columns":
        lines += _columns(groups, style, width)
    else:
        for _target, path, shown in groups:
            lines.append("")
            lines.append(f"{escape.text(path)}:")
            for f in shown:
                lines.append("  " + _finding(f, style))
    lines.append("")
    lines += summary_lines(report, style, verbose)
    return "\n".join(lines) + "\n"


def _groups(report: Report, quiet: bool, verbose: bool) -> list[tuple[TargetResult, str, list[Finding]]]:
    out = []
    for target in report.targets:
        groups: list[tuple[str, list[Finding]]] = []
        if target.findings:
            groups.append((target.target, target.findings))
        groups += [(a.path, a.findings) for a in target.artefacts if a.findings]
        for path, findings in groups:
            shown = [f for f in findings if (f.active and f.severity >= report.fail_on and f.kind is not Kind.INFO) or
                     (not quiet and (f.severity > Severity.INFO or verbose))]
            if shown:
                out.append((target, path, sorted(shown, key=lambda f: (-f.severity, f.rule_id))))
    return out


def summary_lines(report: Report, style: _Style | None = None, verbose: bool = False,
                  quote: Callable[[object], str] = escape.text) -> list[str]:
    """Files, findings, the policy in force and what it waived, notes, and the verdict; `quote`
    renders the strings that do not come from modelshield itself (paths, reasons, notes)."""
    style = style or _Style(False)
    s = report.summary()
    lines = []
    reasons = "; ".join(f"{quote(k)}: {n}" for k, n in s["skip_reasons"].items())
    lines.append(f"{plural(s['artefacts'], 'file')}: {s['analysed']} analysed, {s['inventoried']} inventoried, "
                 f"{s['skipped']} skipped" + (f" ({reasons})" if reasons else "") + ".")
    sev = ", ".join(f"{n} {style(k)}" for k, n in s["findings"].items() if n and k != "info")
    info = s["findings"]["info"]
    parts = [f"findings: {sev or 'none above info'}"]
    if s["suppressed"]:
        parts.append(f"{s['suppressed']} waived")
    if info:
        parts.append(f"{info} info" + ("" if verbose else " (shown with --verbose, or in --format json)"))
    lines.append("; ".join(parts))
    policy = report.policy or {}
    source = policy.get("source") or "built-in defaults"
    waived = policy.get("waived")
    lines.append(f"policy: {quote(source)}" +
                 (f" ({plural(waived, 'finding')} waived)" if waived is not None and source != "built-in defaults"
                  else ""))
    for note in policy.get("notes") or ():
        lines.append(f"policy note: {quote(note)}")
    blocking = len(report.blocking())
    verdict = report.verdict
    lines.append(f"verdict: {style(verdict.value)}" +
                 (f" ({plural(blocking, 'finding')} at or above --fail-on {report.fail_on})" if blocking else "") +
                 (" (nothing blocks, but a waiver hid findings)" if verdict is Verdict.WAIVED else ""))
    return lines


def signature_line(sig: dict) -> str:
    """`signature: valid by ... (key): reason`: one line for a signature result (as plain data);
    signer names and file names come from the artefact, so the line goes through the escape helper."""
    text = f"signature: {sig['outcome']}"
    if sig.get("signer"):
        text += f" by {sig['signer']}"
    if sig.get("method"):
        text += f" ({sig['method']}{', legacy format' if sig.get('legacy') else ''})"
    if sig.get("reason"):
        text += f": {sig['reason']}"
    return escape.text(text)


def where(f: Finding, loc: Location | None = None) -> list[str]:
    """The finding's position (or `loc`, one of its aggregated sites) as short phrases (member,
    offset, opcode, stream, line)."""
    loc = loc or f.location
    return [p for p in (loc.member and f"member {escape.text(loc.member)}",
                        loc.offset is not None and f"offset {loc.offset}",
                        loc.position is not None and f"opcode {loc.position}",
                        loc.stream is not None and loc.stream > 0 and f"stream {loc.stream}",
                        loc.line is not None and f"line {loc.line}") if p]


def call_text(f: Finding) -> str | None:
    """`callable(args...)` with artefact-derived parts escaped, or None."""
    if not f.callable:
        return None
    args = "" if f.args is None else "(" + ", ".join(_short(a) for a in f.args) + ")"
    return escape.text(f.callable) + args


def _finding(f: Finding, style: _Style) -> str:
    refs = ", ".join([*f.cwe, *f.cve, *f.atlas])
    severity = str(f.severity)
    text = f"{style(f'{severity.upper():<8}', severity)} {f.rule_id} {escape.text(f.message)}"
    call = call_text(f)
    if call:
        text += f"\n           call: {call}"
    at = where(f)
    if at:
        text += f"\n           at: {', '.join(at)}"
    if f.occurrences > 1:
        sites = ", ".join(" ".join(where(f, site)) or "the file" for site in f.sites[:5])
        text += f"\n           occurrences: {f.occurrences} in this file" + (f" (next at {sites}...)" if sites else "")
    if f.recommendation:
        text += f"\n           fix: {escape.text(f.recommendation)}"
    if refs:
        text += f"\n           refs: {escape.text(refs)}"
    if f.suppressed:
        text += f"\n           waived: {escape.text(f.suppressed.reason)} (until {escape.text(f.suppressed.expires)})"
    return text


def _columns(groups: list[tuple[TargetResult, str, list[Finding]]], style: _Style, width: int) -> list[str]:
    rows = [(str(f.severity).upper() + ("*" if f.suppressed else ""), f.rule_id,
             escape.text(path) + (f"!/{escape.text(f.location.member)}" if f.location.member else ""),
             escape.text(f.message)) for _t, path, shown in groups for f in shown]
    if not rows:
        return []
    head = ("SEVERITY", "RULE", "FILE", "MESSAGE")
    w0 = max(len(r[0]) for r in [head, *rows])
    w1 = max(len(r[1]) for r in [head, *rows])
    w2 = min(max(len(r[2]) for r in [head, *rows]), max(width // 3, 12))
    room = max(width - w0 - w1 - w2 - 6, 20)
    out = ["", f"{head[0]:<{w0}}  {head[1]:<{w1}}  {head[2]:<{w2}}  {head[3]}"]
    for sev, rule, path, message in rows:
        key = sev.rstrip("*").lower()
        out.append(f"{style(f'{sev:<{w0}}', key)}  {rule:<{w1}}  {_fit(path, w2):<{w2}}  {_fit(message, room)}")
    if any(r[0].endswith("*") for r in rows):
        out.append("(* waived by the policy)")
    return out


def _fit(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 3, 1)] + "..."


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)  # Python's repr already escapes what is not printable in builtin values
    text = text if text.isprintable() else escape.text(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status(a: Artefact) -> str:
    if a.status is Status.ANALYSED:
        return ""
    return f" {a.status.value}" + (f": {escape.text(a.reason)}" if a.reason else "")


def _provenance(target: TargetResult) -> str:
    p = target.provenance or {}
    if p.get("commit"):
        return f"  {escape.text(p.get('repo_id', ''))}@{escape.text(p['commit'])}"
    return ""
