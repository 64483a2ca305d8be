"""Helpers shared by the safetensors/GGUF/template tests (in-process analysis of one blob)."""
from __future__ import annotations

from modelshield.scanner.blob import Blob, BytesBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.analysis.jinja_template import analyse_template
from modelshield.scanner.policy import Policy


def analyse_bytes(data: bytes | Blob, name: str = "model.bin") -> Artefact:
    """Run the engine's identify + analyse on bytes (or a blob) and return the artefact."""
    blob = data if isinstance(data, Blob) else BytesBlob(data, name)
    artefact = Artefact(path=name, size=blob.size)
    ctx = ScanContext(artefact=artefact, policy=Policy.default())
    artefact.format = analyse_blob(blob, ctx, name)
    return artefact


def template_findings(source: str) -> list:
    """Findings of analyse_template on one template string."""
    ctx = ScanContext(artefact=Artefact(path="t"), policy=Policy.default())
    analyse_template(source, ctx, field="chat_template")
    return ctx.artefact.findings


def rule_ids(findings) -> set[str]:
    return {f.rule_id for f in findings}
