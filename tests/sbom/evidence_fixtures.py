"""Reports built through the public result model for the evidence-report tests: a clean signed model,
an unsigned one, a malicious one, one without card or data provenance, waivers, a vulnerable loader
pinned by a lock file, an inconclusive artefact."""
from __future__ import annotations

import hashlib
from typing import Any

from modelshield.scanner.findings import (Artefact, Finding, Kind, Location, Report, RuntimePackage, Severity,
                                          SignatureOutcome, SignatureResult, Suppression, TargetResult)
from modelshield.scanner.rules import load_rules

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CARD = {"license": "apache-2.0", "pipeline_tag": "text-classification", "datasets": ["acme/corpus"],
        "language": ["en"]}


def _hashes(name: str) -> tuple[str, str]:
    return hashlib.sha256(name.encode()).hexdigest(), hashlib.sha512(name.encode()).hexdigest()


def artefact(path: str, fmt: str, **kw: Any) -> Artefact:
    sha256, sha512 = _hashes(path)
    return Artefact(path=path, size=100, sha256=sha256, sha512=sha512, format=fmt, **kw)


def signature(outcome: str, signer: str | None = "release@acme.example") -> SignatureResult:
    """A signature check outcome as the signatures package records it on TargetResult.signature."""
    return SignatureResult(outcome=SignatureOutcome(outcome), signer=signer if outcome != "unsigned" else None,
                           reason=f"test: {outcome}", method="key", bundle="model.sig",
                           covered=["model.safetensors", "config.json", "README.md"])


def model(*, card: dict | None = CARD, sig: str = "valid", extra: list[Artefact] | None = None,
          findings: list[Finding] | None = None, runtime: list[RuntimePackage] | None = None,
          target_findings: list[Finding] | None = None) -> Report:
    """A Hub model at a pinned commit (supplier known) with weights, config and (optionally) a card."""
    arts = [artefact("model.safetensors", "safetensors", properties={"safetensors": {"parameters": 1000}}),
            artefact("config.json", "hf_config", properties={"hf_config": {"model_type": "bert",
                                                                          "architectures": ["BertModel"]}})]
    if card is not None:
        arts.append(artefact("README.md", "model_card", properties={"model_card": {
            "card_data": card, "sections": {"Tiny": "A tiny model.", "Limitations": "Toy only."}, "title": "Tiny"}}))
    arts += extra or []
    if findings:
        arts[0].findings.extend(findings)
    prov = {"source": "huggingface", "endpoint": "https://huggingface.co", "repo_id": "acme/tiny", "repo_type": "model",
            "revision": "main", "commit": COMMIT, "author": "acme", "files": []}
    target = TargetResult(target="hf://acme/tiny", kind="hf", artefacts=arts, provenance=prov,
                          findings=list(target_findings or []))
    target.signature = signature(sig)
    return Report(targets=[target], tool_version="test", runtime=list(runtime or []),
                  runtime_source="uv.lock" if runtime else None)


def threat(rule: str = "MS-PKL-001", waiver: Suppression | None = None, path: str = "model.safetensors") -> Finding:
    return Finding(rule_id=rule, severity=Severity.CRITICAL, kind=Kind.THREAT, message="calls os.system on load",
                   title="Dangerous callable", location=Location(path=path), callable="os.system",
                   cwe=["CWE-502"], atlas=["AML.T0011.000"], suppressed=waiver)


def inconclusive(path: str = "extra.bin") -> Artefact:
    art = artefact(path, "unknown")
    art.findings.append(Finding(rule_id="MS-GEN-002", severity=Severity.MEDIUM, kind=Kind.INCONCLUSIVE,
                                message="unrecognised content where a loader would open it",
                                location=Location(path=path)))
    return art


def torch_runtime() -> list[RuntimePackage]:
    return [RuntimePackage(name="torch", version="2.5.1", source="uv.lock", purl="pkg:pypi/torch@2.5.1",
                           hashes=["sha256:" + "ab" * 32], license="BSD-3-Clause"),
            RuntimePackage(name="safetensors", version="0.4.5", source="uv.lock", purl="pkg:pypi/safetensors@0.4.5")]


def advisory(package: str = "torch", version: str = "2.5.1", ident: str = "GHSA-53q9-r3pm-6pq6") -> Finding:
    """An advisory match as the advisories package records it (rule MS-ADV-001, target level)."""
    return load_rules().finding(
        "MS-ADV-001", Location(path="model.safetensors"), advisory=ident, ids=[ident, "CVE-2025-32434"],
        aliases=["CVE-2025-32434"], records=[ident], package=package, version=version, source="uv.lock", fix="2.6.0",
        files=["model.safetensors"], file_count=1, formats=["torch-zip"], trigger="load", detectors=[],
        disputed=False, database=["shipped"], cwes=["CWE-502"], published=None, summary="torch.load RCE",
        cvss=[], files_text="model.safetensors", formats_text="torch-zip", fix_text="2.6.0 or later")
