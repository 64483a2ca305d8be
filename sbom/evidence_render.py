"""Render an `EvidenceReport` as JSON, GitHub-flavoured Markdown or one self-contained HTML file.

HTML: one file, no external fetches (a Content-Security-Policy forbids them), inline CSS and a
small inline script for the role/phase/status filters (without it every row stays visible); every
artefact-derived string is escaped by Jinja2's autoescaping. Markdown: GFM tables with `|` and
line breaks escaped. JSON: `EvidenceReport.to_dict`, valid against
`schemas/evidence-report.schema.json`.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from . import evidence
from .evidence_model import STATUSES, EvidenceReport


def render(report: EvidenceReport, fmt: str) -> str:
    """`fmt`: json | md | html."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return markdown(report)
    if fmt == "html":
        return html(report)
    raise ValueError(f"unknown report format {fmt!r} (json, md, html)")


def schema() -> dict[str, Any]:
    """The JSON Schema of the JSON report (shipped in the package)."""
    text = (resources.files(__package__) / "schemas" / "evidence-report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _labels() -> dict[str, str]:
    return dict(evidence.table()["roles"]["labels"])


def html(report: EvidenceReport) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    labels = _labels()
    env.filters["role_label"] = lambda key: labels.get(key, key)
    env.filters["css"] = lambda status: "na" if status == "n/a" else status
    source = (resources.files(__package__) / "data" / "templates" / "evidence.html.j2").read_text(encoding="utf-8")
    return env.from_string(source).render(r=report, summary=report.summary(), roles=labels,
                                          phases=evidence.table()["phases"]["names"])


def _cell(text: Any) -> str:
    return " ".join(str(text if text is not None else "").split()).replace("\\", "\\\\").replace("|", "\\|") \
        .replace("<", "&lt;").replace(">", "&gt;")


def markdown(report: EvidenceReport) -> str:
    labels = _labels()
    r = report
    out = [f"# {r.standard['name']} V{r.standard['version']}: evidence report", "",
           f"> **Claim boundary.** {_cell(r.claim_boundary)}", "",
           f"{_cell(r.standard['source_note'])}", "",
           f"- Subject: {_cell(r.subject['name'])} (BOM `{_cell(r.subject['serial'])}`, CycloneDX "
           f"{_cell(r.subject['spec_version'])}, {_cell(r.subject['bom_timestamp'] or 'no timestamp')})",
           f"- BOM phase: {_cell(r.bom_phase or 'not stated')}; "
           f"scan verdict: {_cell(r.subject['verdict'] or 'not stated')}",
           f"- Generated {_cell(r.generated)} by {r.tool['name']} {r.tool['version']}",
           f"- Selection: roles {', '.join(labels[x] for x in r.selection['roles']) or 'all'}; "
           f"phase {r.selection['phase'] or 'all'}", "", "## Summary", "",
           "| " + " | ".join(STATUSES) + " |", "|" + "---|" * len(STATUSES),
           "| " + " | ".join(str(n) for n in r.summary().values()) + " |", "", "## Provisions", "",
           "| Provision | Our short title | Modal | Roles | Phase | Status | Why |", "|---|---|---|---|---|---|---|"]
    for row in r.rows:
        out.append(f"| [{row.id}](#{_anchor(row.id)}) (UK {row.uk}) | {_cell(row.title)} | {row.modal} | "
                   f"{', '.join(labels[x] for x in row.roles)} | {row.phase} | **{row.status}** | "
                   f"{_cell(row.reasoning)} |")
    out += ["", "## Evidence per provision", ""]
    for row in r.rows:
        out += _row_markdown(row)
    out += ["## Artefacts", "", "| File | Model | Format | Verdict | SHA-256 |", "|---|---|---|---|---|"]
    out += [f"| {_cell(a.name)} | {_cell(a.owner or '')} | {_cell(a.format or '')} | "
            f"{_cell(a.verdict or a.status or '')} | `{a.sha256 or 'not computed'}` |" for a in r.artefacts]
    if r.notes:
        out += ["", "## Not known from the files", ""] + [f"- {_cell(n)}" for n in r.notes]
    return "\n".join(out) + "\n"


def _anchor(provision: str) -> str:
    return "ev-" + provision.replace(".", "").replace(" ", "-")


def _row_markdown(row: Any) -> list[str]:
    out = [f'<a id="{_anchor(row.id)}"></a>', f"### {row.id} {_cell(row.title)}: {row.status}", "",
           _cell(row.reasoning), ""]
    for ev in row.evidence:
        against = " (against)" if ev.counter else ""
        where = f" `{_cell(ev.pointer)}`" if ev.pointer else ""
        out.append(f"- **{ev.kind}**{against}: {_cell(ev.text)}{where}")
    if row.justification:
        j = row.justification
        state = f"expired {j.expires}, not applied" if j.expired else f"expires {j.expires}"
        out.append(f"- **justification recorded in the policy** ({state}): {_cell(j.reason)}; "
                   f"mitigation: {_cell(j.mitigation)}")
    for a in row.attestations:
        out.append(f"- **attested by a person, not by the tool**: {_cell(a.name)} ({_cell(a.role)}), {a.date}: "
                   f"“{_cell(a.statement)}”")
    out += ["", f"*Limitation:* {_cell(row.limitation)}", ""]
    return out
