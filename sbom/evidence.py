"""ETSI EN 304 223 evidence report: one row per provision the tool can speak to, from a BOM.

    from modelshield.sbom import evidence
    report = evidence.derive(bom_dict, roles=["system-operator"], phase="deployment", etsi=policy.etsi)

The rows come from `data/etsi_en_304_223.toml`; each status from `checks` (evidence in the BOM
only), downgraded from `evidenced` to `partial` when any artefact is inconclusive. Rows outside
the selected roles and phase are `n/a` with the reason. People's attestations and justifications
come from the policy's `[etsi]` table and are shown as theirs, never as the tool's.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
from typing import Any

from modelshield.scanner import __version__ as TOOL_VERSION
from modelshield.scanner.env import source_date_epoch

from . import tables
from .bomfacts import BomFacts, prop, read
from .checks import CHECKS, CheckContext
from .errors import EvidenceInputError
from .evidence_model import Artefact, Attestation, Evidence, EvidenceReport, Justification, Outcome, Row


def table() -> dict[str, Any]:
    return tables.load("etsi_en_304_223")


def normalise_phase(phase: str | None) -> str | None:
    """The standard's phase name for `phase` ("operation" is an alias of maintenance)."""
    if phase is None:
        return None
    t = table()["phases"]
    key = phase.strip().lower()
    key = t["aliases"].get(key, key)
    if key not in t["names"]:
        raise EvidenceInputError(f"unknown phase {phase!r} ({', '.join(t['names'])}; 'operation' = maintenance)")
    return key


def normalise_roles(roles: list[str] | None) -> list[str]:
    names = table()["roles"]["names"]
    out = []
    for role in roles or []:
        key = role.strip().lower().replace("_", "-").replace(" ", "-")
        if key not in names:
            raise EvidenceInputError(f"unknown role {role!r} ({', '.join(names)})")
        out.append(key)
    return out


def _date(value: Any, where: str) -> str:
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise EvidenceInputError(f"{where} must be a date (YYYY-MM-DD), not {value!r}") from None


def _need(item: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    if not isinstance(item, dict):
        raise EvidenceInputError(f"{where} must be a table")
    for key in keys:
        if not str(item.get(key) or "").strip():
            raise EvidenceInputError(f"{where} needs {key!r}")


def people(etsi: dict[str, Any] | None, today: _dt.date) -> tuple[list[Attestation], list[Justification]]:
    """Attestations and justifications of the policy's `[etsi]` table, validated."""
    etsi = etsi or {}
    known = {p["id"] for p in table()["provision"]}
    attestations, justifications = [], []
    for i, item in enumerate(etsi.get("attestation") or []):
        where = f"etsi.attestation[{i}]"
        _need(item, ("provision", "name", "role", "date", "statement"), where)
        if item["provision"] not in known:
            raise EvidenceInputError(f"{where}.provision {item['provision']!r} is not a provision this report covers")
        attestations.append(Attestation(str(item["provision"]), str(item["name"]), str(item["role"]),
                                        _date(item["date"], f"{where}.date"), str(item["statement"])))
    for i, item in enumerate(etsi.get("justification") or []):
        where = f"etsi.justification[{i}]"
        _need(item, ("provision", "reason", "mitigation", "expires"), where)
        expires = _date(item["expires"], f"{where}.expires")
        justifications.append(Justification(str(item["provision"]), str(item["reason"]), str(item["mitigation"]),
                                            expires, str(item.get("component") or "*"),
                                            str(item["risk_assessment"]) if item.get("risk_assessment") else None,
                                            expired=_dt.date.fromisoformat(expires) < today))
    return attestations, justifications


def _now() -> _dt.datetime:
    return source_date_epoch() or _dt.datetime.now(_dt.timezone.utc)


def _today() -> _dt.date:
    return _now().date()


def _generated() -> str:
    return _now().replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(provision: dict[str, Any], ctx: CheckContext, facts: BomFacts, roles: list[str], phase: str | None) -> Row:
    outcome: Outcome = CHECKS[provision["check"]](ctx)
    inconclusive = facts.inconclusive()
    if outcome.status == "evidenced" and inconclusive:
        outcome.status = "partial"
        outcome.reasoning += (f" {len(inconclusive)} artefact(s) were not fully analysed ("
                              + ", ".join(inconclusive[:5]) + ("..." if len(inconclusive) > 5 else "")
                              + "), so the evidence cannot be complete.")
        outcome.evidence.append(Evidence("scan", "not fully analysed: " + ", ".join(inconclusive[:20]), None,
                                         inconclusive[:50], counter=True))
    row = Row(id=provision["id"], uk=provision["uk"], title=provision["title"], modal=provision["modal"],
              roles=list(provision["roles"]), phase=provision["phase"], applies=list(provision["applies"]),
              status=outcome.status, reasoning=outcome.reasoning, limitation=provision["limitation"],
              evidence=outcome.evidence)
    labels = table()["roles"]["labels"]
    if roles and not set(roles) & set(row.roles):
        row.selected = False
        row.status, row.reasoning = "n/a", (f"Falls on {', '.join(labels[r] for r in row.roles)}, not on "
                                            f"{', '.join(labels[r] for r in roles)}. " + row.reasoning)
    elif phase and phase not in row.applies:
        row.selected = False
        row.status, row.reasoning = "n/a", (f"Not needed in the {phase} phase (applies in "
                                            f"{', '.join(row.applies)}). " + row.reasoning)
    return row


def derive(bom: dict[str, Any], *, roles: list[str] | None = None, phase: str | None = None,
           etsi: dict[str, Any] | None = None) -> EvidenceReport:
    """The evidence report for `bom` (a CycloneDX dict), optionally for some roles and one phase."""
    roles, phase = normalise_roles(roles), normalise_phase(phase)
    facts = read(bom)
    bom = facts.bom  # read as well-typed
    attestations, justifications = people(etsi, _today())
    ctx = CheckContext(facts=facts, justifications=[j for j in justifications if _matches(j, facts)])
    rows = []
    for provision in table()["provision"]:
        row = _row(provision, ctx, facts, roles, phase)
        row.attestations = [a for a in attestations if a.provision == row.id]
        if row.id in ("5.2.3-2", "5.2.3-2.1"):
            row.justification = ctx.justification("5.2.3-2") or next(iter(ctx.expired("5.2.3-2")), None)
        rows.append(row)
    std = table()["standard"]
    bom_tool = facts.tool
    subject = facts.subject
    return EvidenceReport(
        standard={"id": std["id"], "name": std["name"], "version": std["version"], "owner": std["owner"],
                  "source_note": std["source_note"], "reference": std["url"]},
        claim_boundary=std["claim_boundary"],
        tool={"name": "modelshield", "version": TOOL_VERSION, "bom_tool": f"{bom_tool[0]} {bom_tool[1]}".strip()},
        generated=_generated(),
        subject={"name": str(subject.get("name")), "bom_ref": subject.get("bom-ref"), "type": subject.get("type"),
                 "serial": bom.get("serialNumber"), "bom_timestamp": facts.timestamp,
                 "spec_version": bom.get("specVersion"), "verdict": facts.verdict()},
        bom_phase=facts.phase,
        selection={"roles": roles, "phase": phase},
        rows=rows, artefacts=_artefacts(facts), notes=facts.notes())


def _matches(justification: Justification, facts: BomFacts) -> bool:
    return justification.component == "*" or any(fnmatch.fnmatchcase(m.name, justification.component)
                                                  for m in facts.models)


def _artefacts(facts: BomFacts) -> list[Artefact]:
    out = []
    for x in facts.files:
        hashes = {h.get("alg"): h.get("content") for h in x.item.get("hashes") or [] if isinstance(h, dict)}
        out.append(Artefact(name=x.name, owner=x.owner, sha256=hashes.get("SHA-256"), sha512=hashes.get("SHA-512"),
                            verdict=prop(x.item, "modelshield:verdict"), format=prop(x.item, "modelshield:format"),
                            status=prop(x.item, "modelshield:status"), pointer=x.pointer))
    return out
