"""Build a CycloneDX ML-BOM (1.6 or 1.7, JSON) from a scan `Report`; never re-opens artefacts.

The BOM is assembled by a list of evidence providers, each a function `(BomContext) -> None`
that adds components, properties, vulnerabilities or JSON patches. Signature and advisory results
slot in as more providers (`register_provider`) without touching the rest. The library model is
serialised with cyclonedx-python-lib, `merge.apply` adds what the library does not model, and
the result is strictly validated before anyone may write it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6, JsonV1Dot7

from modelshield.scanner import __version__ as SCANNER_VERSION
from modelshield.scanner.env import source_date_epoch
from modelshield.scanner.findings import Report
from . import (ancestry, authorship, etsi, inventory, lineage, merge, modelcard, phases, provenance, runtime, training,
               validate, vex)
from .context import PHASES, SPEC_VERSIONS, Attribution, BomContext

Provider = Callable[[BomContext], None]

# Order matters: identity and files first, lineage before the modelCard (dataset refs), the
# runtime before the findings (advisories affect its libraries). The ETSI declarations are
# derived afterwards from the serialised BOM (`etsi.declare`), as the evidence report does.
PROVIDERS: list[Provider] = [
    inventory.provider,
    lineage.datasets_provider,
    training.provider,
    ancestry.provider,
    modelcard.provider,
    runtime.provider,
    provenance.signature_provider,
    vex.provider,
    provenance.drift_provider,
    provenance.compositions_provider,
    authorship.provider,
]

_NAMESPACE = uuid.UUID("8f5a3c2e-1f0b-4c53-9a57-6d6f64656c73")  # fixed: reproducible serial numbers


def register_provider(provider: Provider) -> None:
    """Add an evidence provider (e.g. signatures, advisories) that runs before the ETSI mapping."""
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)


def bom_timestamp(reproducible: bool) -> _dt.datetime | None:
    """SOURCE_DATE_EPOCH if set; else now, or None in reproducible mode (the BOM then has no
    timestamp rather than a made-up one, and says so in its notes)."""
    epoch = source_date_epoch()
    if epoch is not None:
        return epoch
    if reproducible:
        return None
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class BuiltBom:
    """A validated BOM and the notes its build leaves for the user (what it could not record)."""

    document: dict[str, Any]
    notes: list[str]


def build_bom(report: Report, **options: Any) -> dict[str, Any]:
    """The BOM as a JSON dict, strictly validated (raises BomInvalid otherwise); options as `build`."""
    return build(report, **options).document


def build(report: Report, *, phase: str = "development", spec_version: str = "1.6",
          from_bom: dict[str, Any] | None = None, reproducible: bool = False,
          author: str | None = None, attribution: Attribution | None = None,
          decision: str | None = None, declarations: bool = False,
          etsi_policy: dict[str, Any] | None = None) -> BuiltBom:
    """The BOM, strictly validated (raises BomInvalid otherwise), with the build's notes.

    `author` ("Name <email>") is shorthand for `attribution.author_*`; `decision` is the
    decommissioning decision of an end-of-life BOM; `declarations` adds the ETSI EN 304 223
    evidence (`definitions.standards` and `declarations`), derived from this BOM as the evidence
    report derives it, with the policy's `[etsi]` justifications and attestations (`etsi_policy`).
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} ({', '.join(PHASES)})")
    if spec_version not in SPEC_VERSIONS:
        raise ValueError(f"unsupported CycloneDX version {spec_version!r} (1.6 or 1.7)")
    who = attribution or Attribution()
    if author and not (who.author_name or who.author_email):
        who.author_name, who.author_email = Attribution.parse_author(author)
    reproducible = reproducible or source_date_epoch() is not None
    ctx = BomContext(report=report, phase=phase, spec_version=spec_version, timestamp=bom_timestamp(reproducible),
                     from_bom=from_bom, attribution=who, decision=decision)
    if ctx.timestamp is None:
        ctx.notes.append("--reproducible without SOURCE_DATE_EPOCH: the BOM has no timestamp "
                         "(set SOURCE_DATE_EPOCH to record one)")
        ctx.gap("timestamp: not recorded (reproducible build without SOURCE_DATE_EPOCH)")
    if phase == "end-of-life" and not (decision or "").strip():
        raise ValueError("an end-of-life BOM records a decommissioning decision: pass decision=...")
    for provider in PROVIDERS:
        provider(ctx)
    doc = _serialise(ctx)
    merge.apply(doc, ctx)
    if declarations:
        etsi.declare(doc, etsi_policy, ctx.timestamp_text())
    doc["serialNumber"] = _serial(doc, reproducible)
    ordered = _ordered(doc)
    validate.check(ordered, spec_version)
    ctx.facts["notes"] = ctx.notes
    return BuiltBom(document=ordered, notes=list(ctx.notes))


def dumps(doc: dict[str, Any]) -> str:
    """Canonical text of a BOM dict (stable across runs: reproducible mode relies on it)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _tool_component() -> Component:
    return Component(type=ComponentType.APPLICATION, name="modelshield", version=SCANNER_VERSION,
                     bom_ref="tool:modelshield", group=None)


def _serialise(ctx: BomContext) -> dict[str, Any]:
    metadata = BomMetaData(
        tools=ToolRepository(components=[_tool_component()]),
        lifecycles=phases.lifecycles(ctx.phase),
        timestamp=ctx.timestamp,
        component=ctx.tops[0] if len(ctx.tops) == 1 else None,
        authors=authorship.bom_authors(ctx),
        properties=_metadata_properties(ctx),
    )
    components = ctx.components + (ctx.tops if len(ctx.tops) != 1 else [])
    bom = Bom(components=components, metadata=metadata, vulnerabilities=ctx.vulnerabilities,
              external_references=ctx.external_references,
              serial_number=uuid.UUID(int=0))
    for ref, on in sorted(ctx.dependencies.items()):
        bom.dependencies.add(Dependency(ref=BomRef(ref), dependencies=[Dependency(ref=BomRef(r)) for r in sorted(on)]))
    writer = JsonV1Dot6 if ctx.spec_version == "1.6" else JsonV1Dot7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about refs it cannot see in merged JSON
        text = writer(bom).output_as_string()
    doc = json.loads(text)
    if ctx.timestamp is None:  # the library stamps "now" when given none: a reproducible BOM has none
        doc.get("metadata", {}).pop("timestamp", None)
    return doc


def _metadata_properties(ctx: BomContext) -> list[Property]:
    report = ctx.report
    props = [Property(name="modelshield:phase", value=ctx.phase),
             Property(name="modelshield:verdict", value=inventory.verdict_word(
                 report.artefacts, [f for t in report.targets for f in t.findings])),
             Property(name="modelshield:exit-code", value=str(report.exit_code())),
             Property(name="modelshield:fail-on", value=str(report.fail_on)),
             Property(name="modelshield:report-schema", value=report.schema_version)]
    summary = report.summary()
    for key in ("artefacts", "analysed", "inventoried", "skipped", "suppressed"):
        props.append(Property(name=f"modelshield:summary:{key}", value=str(summary[key])))
    for key, value in sorted((report.policy or {}).items()):
        if isinstance(value, (str, int, float, bool)) and value is not None:
            if key == "source" and ("/" in str(value) or "\\" in str(value)):
                value = os.path.basename(str(value))  # no local paths: the digest identifies the file
            props.append(Property(name=f"modelshield:policy:{key}", value=str(value)))
    statuses = sorted(set(ctx.facts.get("signature_statuses", []))) or ["not-checked"]
    props.append(Property(name="modelshield:signature:status", value=",".join(statuses)))
    if ctx.decision:
        props.append(Property(name="modelshield:decommission:decision", value=ctx.decision.strip()))
    gaps = list(ctx.gaps)
    if ctx.unseen_datasets:
        many = len(ctx.unseen_datasets) > 1
        gaps.append(f"BSI flags of {len(ctx.unseen_datasets)} dataset{'s' if many else ''} named by a model card only: "
                    f"{'their' if many else 'its'} files were not seen ({'; '.join(ctx.unseen_datasets)})")
    props += [Property(name="modelshield:note", value=gap) for gap in gaps]
    return props + ctx.properties


def _serial(doc: dict[str, Any], reproducible: bool) -> str:
    if not reproducible:
        return uuid.uuid4().urn
    body = {k: v for k, v in doc.items() if k != "serialNumber"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return uuid.uuid5(_NAMESPACE, digest).urn


_TOP_ORDER = ("$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata", "components",
              "services", "externalReferences", "dependencies", "compositions", "vulnerabilities",
              "formulation", "declarations", "definitions", "citations", "properties")


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in _TOP_ORDER if k in doc}
    out.update({k: v for k, v in doc.items() if k not in out})
    return out
