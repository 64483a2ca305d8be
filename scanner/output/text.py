"""Human-readable report: a verdict line per artefact, findings grouped by file, then a summary."""
from __future__ import annotations

from ..findings import Artefact, Finding, Report, Severity, Status, to_dict


def render(report: Report, quiet: bool = False) -> str:
    lines: list[str] = []
    for target in report.targets:
        if target.error:
            lines.append(f"error  {target.error}")
            continue
        if not quiet:
            lines.append(f"{target.target}  [{target.verdict.value}]" + _provenance(target.provenance))
            for a in target.artefacts:
                lines.append(f"  {a.verdict.value:<12} {a.path}  ({a.format}, {_size(a.size)}){_status(a)}")
            if target.signature.outcome.value != "not-checked":
                lines.append("  " + signature_line(to_dict(target.signature)))
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
            lines.append(f"{path}:")
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


def signature_line(sig: dict) -> str:
    """`signature: valid by ... (key) - reason`: one line for a signature result (as plain data)."""
    text = f"signature: {sig['outcome']}"
    if sig.get("signer"):
        text += f" by {sig['signer']}"
    if sig.get("method"):
        text += f" ({sig['method']}{', legacy format' if sig.get('legacy') else ''})"
    if sig.get("reason"):
        text += f": {sig['reason']}"
    # signer names and file names come from the artefact: no control character reaches a terminal
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _finding(f: Finding) -> str:
    loc = f.location
    where = [p for p in (loc.member and f"member {loc.member}", loc.offset is not None and f"offset {loc.offset}",
                         loc.position is not None and f"opcode {loc.position}",
                         loc.stream is not None and loc.stream > 0 and f"stream {loc.stream}",
                         loc.line is not None and f"line {loc.line}") if p]
    refs = ", ".join([*f.cwe, *f.cve, *f.atlas])
    text = f"{str(f.severity).upper():<8} {f.rule_id} {f.message}"
    if f.callable:
        args = "" if f.args is None else "(" + ", ".join(_short(a) for a in f.args) + ")"
        text += f"\n           call: {f.callable}{args}"
    if where:
        text += f"\n           at: {', '.join(where)}"
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


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _provenance(p: dict) -> str:
    if p.get("commit"):
        return f"  {p.get('repo_id', '')}@{p['commit']}"
    return ""
