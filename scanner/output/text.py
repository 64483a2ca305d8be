"""Human-readable report: a verdict line per artefact, findings grouped by file, then a summary."""
from __future__ import annotations

from ..findings import Artefact, Finding, Location, Report, Severity, Status
from .names import printable_name


def render(report: Report, quiet: bool = False) -> str:
    lines: list[str] = []
    for target in report.targets:
        if target.error:
            lines.append(f"error  {printable_name(target.error)}")
            continue
        if not quiet:
            lines.append(f"{printable_name(target.target)}  [{target.verdict.value}]" + _provenance(target.provenance))
            for a in target.artefacts:
                lines.append(f"  {a.verdict.value:<12} {printable_name(a.path)}  ({a.format}, {_size(a.size)}){_status(a)}")
        groups: list[tuple[str, list[Finding]]] = []
        if target.findings:
            groups.append((target.target, target.findings))
        groups += [(a.path, a.findings) for a in target.artefacts if a.findings]
        for path, findings in groups:
            # Info-severity observations (inventory notes) stay in JSON/SARIF; the summary counts them.
            shown = [f for f in findings if (f.active and f.severity >= report.fail_on) or
                     (not quiet and f.severity > Severity.INFO)]
            if not shown:
                continue
            lines.append("")
            lines.append(f"{printable_name(path)}:")
            for f in sorted(shown, key=lambda f: (-f.severity, f.rule_id)):
                lines.append("  " + _finding(f))
    s = report.summary()
    lines.append("")
    sev = ", ".join(f"{n} {k}" for k, n in s["findings"].items() if n and k != "info")
    reasons = "; ".join(f"{k}: {n}" for k, n in s["skip_reasons"].items())
    lines.append(f"{s['artefacts']} files: {s['analysed']} analysed, {s['inventoried']} inventoried, "
                 f"{s['skipped']} skipped" + (f" ({reasons})" if reasons else "") + ".")
    info = s["findings"]["info"]
    lines.append(f"findings: {sev or 'none above info'}" +
                 (f"; {s['suppressed']} suppressed" if s["suppressed"] else "") +
                 (f"; {info} info observation(s) in --format json" if info else ""))
    blocking = len(report.blocking())
    lines.append(f"verdict: {report.verdict.value}" +
                 (f" ({blocking} finding(s) at or above --fail-on {report.fail_on})" if blocking else ""))
    return "\n".join(lines) + "\n"


def _parts(loc: Location) -> list[str]:
    return [p for p in (loc.member and f"member {printable_name(loc.member)}", loc.offset is not None and f"offset {loc.offset}",
                        loc.position is not None and f"opcode {loc.position}",
                        loc.stream is not None and loc.stream > 0 and f"stream {loc.stream}",
                        loc.line is not None and f"line {loc.line}") if p]


def _where(loc: Location) -> str:
    return " ".join(_parts(loc)) or "the file"


def _finding(f: Finding) -> str:
    where = _parts(f.location)
    refs = ", ".join([*f.cwe, *f.cve, *f.atlas])
    text = f"{str(f.severity).upper():<8} {f.rule_id} {f.message}"
    if f.callable:
        args = "" if f.args is None else "(" + ", ".join(_short(a) for a in f.args) + ")"
        text += f"\n           call: {f.callable}{args}"
    if where:
        text += f"\n           at: {', '.join(where)}"
    if f.occurrences > 1:
        first = ", ".join(_where(site) for site in f.sites[:5])
        text += f"\n           occurrences: {f.occurrences} in this file" + (f" (next at {first}...)" if first else "")
    if f.recommendation:
        text += f"\n           fix: {f.recommendation}"
    if refs:
        text += f"\n           refs: {refs}"
    if f.suppressed:
        text += f"\n           suppressed: {f.suppressed.reason} (until {f.suppressed.expires})"
    return text


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status(a: Artefact) -> str:
    if a.status is Status.ANALYSED:
        return ""
    return f" {a.status.value}" + (f": {a.reason}" if a.reason else "")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _provenance(p: dict) -> str:
    if p.get("commit"):
        return f"  {p.get('repo_id', '')}@{p['commit']}"
    return ""
