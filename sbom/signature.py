"""BOM evidence of the signature check: read from `TargetResult.signature` (scanner's result model).

Each model component gets `modelshield:signature:*` properties (status = the outcome, signer,
method, bundle digest, legacy flag, counts of covered/uncovered files) and, when a signature file
was read, an external reference of type `digital-signature` to `model.sig` carrying its SHA-256.
A deployment BOM built after `modelshield sign` thus references the signature it ships with.
"""
from __future__ import annotations

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri

from .context import BomContext, ModelEntry


def provider(ctx: BomContext) -> None:
    """Properties and the `model.sig` reference per model; `ctx.facts["signature_statuses"]`."""
    statuses = []
    for entry in ctx.models:
        statuses.append(annotate(entry))
    ctx.facts["signature_statuses"] = statuses


def annotate(entry: ModelEntry) -> str:
    """Add the signature facts of one model entry; returns its outcome."""
    sig = entry.target.signature
    outcome = sig.outcome.value
    props = {"modelshield:signature:status": outcome}
    if sig.reason:
        props["modelshield:signature:reason"] = sig.reason
    for name, value in (("signer", sig.signer), ("method", sig.method), ("bundle-sha256", sig.bundle_sha256),
                        ("model-name", sig.model_name), ("root-digest", sig.root_digest)):
        if value:
            props[f"modelshield:signature:{name}"] = str(value)
    if sig.bundle_sha256:
        props["modelshield:signature:covered-files"] = str(len(sig.covered))
        props["modelshield:signature:uncovered-files"] = str(len(sig.uncovered))
        props["modelshield:signature:legacy"] = "true" if sig.legacy else "false"
    for name, value in props.items():
        entry.component.properties.add(Property(name=name, value=value))
    url = bundle_url(entry)
    if url and sig.bundle_sha256:
        entry.component.external_references.add(ExternalReference(
            type=ExternalReferenceType.DIGITAL_SIGNATURE, url=XsUri(url),
            comment=f"OpenSSF model signature (OMS), outcome {outcome}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sig.bundle_sha256)]))
    return outcome


def bundle_url(entry: ModelEntry) -> str | None:
    """Where the signature file is: the Hub's resolve URL for Hub repos, else its relative path."""
    sig = entry.target.signature
    if not sig.bundle:
        return None
    prov = entry.target.provenance or {}
    if prov.get("endpoint") and prov.get("repo_id") and prov.get("commit"):
        prefix = "datasets/" if prov.get("repo_type") == "dataset" else ""
        return f"{prov['endpoint']}/{prefix}{prov['repo_id']}/resolve/{prov['commit']}/{sig.bundle}"
    return sig.bundle
