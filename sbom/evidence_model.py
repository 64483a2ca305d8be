"""The evidence report's data model: rows per provision, their evidence, the report around them.

Plain dataclasses; `to_dict` gives the JSON report (schema: `schemas/evidence-report.schema.json`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("evidenced", "partial", "gap", "needs-human-attestation", "n/a")
SCHEMA_ID = "https://modelshield.invalid/schemas/evidence-report-1.json"


@dataclass
class Evidence:
    """One piece of evidence: what it is and where it is in the BOM (JSON Pointer)."""

    kind: str  # hash | scan | finding | waiver | signature | advisory | inventory | card | dataset |
    #           runtime | drift | decision | justification | attestation | bom
    text: str
    pointer: str | None = None  # JSON Pointer into the BOM
    ids: list[str] = field(default_factory=list)  # rule ids, advisory ids, file names...
    counter: bool = False  # evidence against the provision (a gap's cause)


@dataclass
class Outcome:
    """What a check derived from the evidence."""

    status: str
    reasoning: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Attestation:
    """A person's statement about a provision, from the policy file; never the tool's."""

    provision: str
    name: str
    role: str
    date: str
    statement: str


@dataclass
class Justification:
    """A recorded justification (with mitigation and expiry) for using a poorly documented component."""

    provision: str
    reason: str
    mitigation: str
    expires: str
    component: str = "*"
    risk_assessment: str | None = None
    expired: bool = False


@dataclass
class Row:
    id: str
    uk: str
    title: str
    modal: str
    roles: list[str]
    phase: str
    applies: list[str]
    status: str
    reasoning: str
    limitation: str
    evidence: list[Evidence] = field(default_factory=list)
    attestations: list[Attestation] = field(default_factory=list)
    justification: Justification | None = None
    selected: bool = True


@dataclass
class Artefact:
    name: str
    owner: str | None
    sha256: str | None
    sha512: str | None
    verdict: str | None
    format: str | None
    status: str | None
    pointer: str


@dataclass
class EvidenceReport:
    standard: dict[str, str]
    claim_boundary: str
    tool: dict[str, str]
    generated: str | None
    subject: dict[str, Any]
    bom_phase: str | None
    selection: dict[str, Any]
    rows: list[Row]
    artefacts: list[Artefact]
    notes: list[str]
    schema: str = SCHEMA_ID

    def summary(self) -> dict[str, int]:
        return {status: sum(1 for r in self.rows if r.status == status) for status in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data
