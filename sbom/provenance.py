"""Evidence providers about where the artefact came from and how it changed: signature status,
drift against the development BOM (`--from-bom`), and `compositions` (what is known complete)."""
from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import quote

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri

from .context import BomContext


def signature_outcome(target: Any) -> dict[str, Any]:
    """The signature check of a target as plain data: `TargetResult.signature` (outcome valid |
    invalid | untrusted | unverifiable | unsigned | not-checked, signer, bundle, covered files);
    `not-checked` when the scan made no check."""
    sig = getattr(target, "signature", None)
    if sig is None:
        return {"outcome": "not-checked", "reason": "no signature check was made"}
    outcome = getattr(sig, "outcome", None)
    out: dict[str, Any] = {"outcome": str(getattr(outcome, "value", outcome) or "not-checked")}
    for key in ("reason", "method", "signer", "bundle", "bundle_sha256", "trust"):
        value = getattr(sig, key, None)
        if value:
            out[key] = str(value)
    for key in ("covered", "uncovered", "unchecked"):
        out[key] = list(getattr(sig, key, None) or [])
    return out


def bundle_url(target: Any) -> str | None:
    """Where the signature file is: the Hub's resolve URL for Hub repos, else its path in the target
    (a deployment BOM made after `modelshield sign` thus references the model.sig it ships with)."""
    bundle = getattr(getattr(target, "signature", None), "bundle", None)
    if not bundle:
        return None
    prov = target.provenance or {}
    if prov.get("endpoint") and prov.get("repo_id") and prov.get("commit"):
        prefix = "datasets/" if prov.get("repo_type") == "dataset" else ""
        return f"{prov['endpoint']}/{prefix}{prov['repo_id']}/resolve/{prov['commit']}/{bundle}"
    return str(bundle)


def signature_provider(ctx: BomContext) -> None:
    """`modelshield:signature:*` per model: the outcome of the OpenSSF model-signing check."""
    statuses = []
    for entry in ctx.entries:
        sig = signature_outcome(entry.target)
        comp = entry.component
        comp.properties.add(Property(name="modelshield:signature:status", value=sig["outcome"]))
        for key in ("signer", "method", "reason", "bundle_sha256"):
            if sig.get(key):
                comp.properties.add(Property(name=f"modelshield:signature:{key}", value=sig[key]))
        bundle = sig.get("bundle")
        url = bundle_url(entry.target) if entry.root == "" else None
        if url and sig.get("bundle_sha256"):
            comp.external_references.add(ExternalReference(
                type=ExternalReferenceType.DIGITAL_SIGNATURE, url=XsUri(url),
                comment=f"OpenSSF model signature (OMS), outcome {sig['outcome']}",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sig["bundle_sha256"])]))
        if bundle and entry.root == "" and bundle in entry.files:
            comp.properties.add(Property(name="modelshield:signature:bundle", value=bundle))
        if entry.kind != "folder" or not ctx.models:
            statuses.append(sig["outcome"])
        covered = set(sig.get("covered") or [])
        for path, file_comp in entry.files.items():
            if sig["outcome"] != "not-checked" and sig["outcome"] != "unsigned":
                file_comp.properties.add(Property(name="modelshield:signature:covered",
                                                  value="true" if path in covered else "false"))
    ctx.facts["signature_statuses"] = statuses
    ctx.facts["signatures"] = {e.ref: signature_outcome(e.target) for e in ctx.models}


def dev_bom_files(doc: dict[str, Any]) -> dict[str, dict[Any, Any]]:
    """file name -> {alg: digest} of every `file` component of a BOM dict (nested included)."""
    out: dict[str, dict[Any, Any]] = {}

    def walk(items: list[Any]) -> Iterator[dict[str, Any]]:
        for comp in items:
            if isinstance(comp, dict):
                yield comp
                yield from walk(comp.get("components") or [])

    for comp in walk(list(doc.get("components") or []) + [doc.get("metadata", {}).get("component") or {}]):
        if comp.get("type") == "file" and isinstance(comp.get("name"), str):
            out[comp["name"]] = {h.get("alg"): h.get("content") for h in comp.get("hashes") or []
                                 if isinstance(h, dict)}
    return out


def bom_link(doc: dict[str, Any]) -> str | None:
    """BOM-Link URN of a BOM document (`urn:cdx:<uuid>/<version>`), if it has a serial number."""
    serial = str(doc.get("serialNumber") or "")
    if not serial.startswith("urn:uuid:"):
        return None
    return f"urn:cdx:{serial[len('urn:uuid:'):]}/{int(doc.get('version') or 1)}"


def drift_provider(ctx: BomContext) -> None:
    """Deployment with `--from-bom`: link the development BOM and call out changed files."""
    if ctx.from_bom is None:
        return
    link = bom_link(ctx.from_bom)
    if link:
        ctx.external_references.append(ExternalReference(
            type=ExternalReferenceType.BOM, url=XsUri(link),
            comment=f"{_phase_of(ctx.from_bom) or 'previous'} BOM this one was derived from"))
        ctx.properties.append(Property(name="modelshield:from-bom", value=link))
    _inherit_identity(ctx, link)
    before = dev_bom_files(ctx.from_bom)
    changed, added, removed = [], [], []
    for entry in ctx.entries:
        for path, comp in sorted(entry.files.items()):
            ours = {h.alg.value: h.content for h in comp.hashes}
            if path not in before:
                added.append(path)
                comp.properties.add(Property(name="modelshield:drift", value="added since the development BOM"))
                continue
            old = before[path]
            differs = [alg for alg in ("SHA-256", "SHA-512") if alg in ours and alg in old and ours[alg] != old[alg]]
            if differs:
                changed.append(path)
                comp.properties.add(Property(name="modelshield:drift",
                                             value=f"{', '.join(differs)} differs from the development BOM: "
                                                   f"was {old.get('SHA-256', '?')}"))
    mine = {p for e in ctx.entries for p in e.files}
    removed = sorted(set(before) - mine)
    for kind, paths in (("changed", changed), ("added", added), ("removed", removed)):
        for path in paths:
            ctx.properties.append(Property(name=f"modelshield:drift:{kind}", value=path))
        if paths:
            ctx.notes.append(f"{len(paths)} file(s) {kind} since the development BOM: {', '.join(paths[:5])}"
                             + (" ..." if len(paths) > 5 else ""))
    ctx.facts["drift"] = {"changed": changed, "added": added, "removed": removed, "linked": bool(link)}


def _dev_model(doc: dict[str, Any]) -> dict[str, Any] | None:
    meta = doc.get("metadata", {}).get("component")
    if isinstance(meta, dict) and meta.get("type") in ("machine-learning-model", "data"):
        return meta
    models = [c for c in doc.get("components") or [] if isinstance(c, dict)
              and c.get("type") in ("machine-learning-model", "data") and c.get("components")]
    return models[0] if len(models) == 1 else None


def _inherit_identity(ctx: BomContext, link: str | None) -> None:
    """A release folder is the adopted model: it keeps the development BOM's name and group and
    links that model component by BOM-Link. Version and purl are not copied: they name the
    adopted commit, and the files that ship may differ from it (the drift says which)."""
    dev = _dev_model(ctx.from_bom or {})
    local = [e for e in ctx.models if (e.target.provenance or {}).get("source") != "huggingface"]
    if dev is None or len(ctx.models) != 1 or not local:
        return
    entry = local[0]
    if isinstance(dev.get("name"), str) and dev["name"]:
        entry.component.name = dev["name"]
    if isinstance(dev.get("group"), str) and dev["group"]:
        entry.component.group = dev["group"]
    if link and dev.get("bom-ref"):
        entry.component.external_references.add(ExternalReference(
            type=ExternalReferenceType.BOM, url=XsUri(f"{link}#{quote(str(dev['bom-ref']), safe='')}"),
            comment="the model component of the development BOM (as adopted)"))
    for key, name in (("purl", "modelshield:development:purl"), ("version", "modelshield:development:version")):
        if isinstance(dev.get(key), str) and dev[key]:
            entry.component.properties.add(Property(name=name, value=dev[key]))


def _phase_of(doc: dict[str, Any]) -> str | None:
    for item in doc.get("metadata", {}).get("lifecycles") or []:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name.startswith("etsi-en-304-223:"):
            return name.split(":", 1)[1]
    return None


def _locked(ctx: BomContext) -> bool:
    source = str(ctx.facts.get("runtime_source") or "").lower()
    return source.endswith(".lock") or "lock" in source.rsplit("/", 1)[-1] or source.startswith("environment")


def compositions_provider(ctx: BomContext) -> None:
    """State per model what is complete (files) and what is unknown (datasets, libraries...)."""
    comps: list[dict[str, Any]] = []
    for entry in ctx.entries:
        not_read = [p for p, c in entry.files.items()
                    if any(pr.name == "modelshield:status" and pr.value in ("not-downloaded", "skipped")
                           for pr in c.properties)]
        comps.append({"bom-ref": f"composition:files:{entry.ref}",
                      "aggregate": "incomplete" if not_read or entry.target.error else "complete",
                      "assemblies": [entry.ref]})
    model_refs = [e.ref for e in ctx.entries]
    # Runtime packages as the user listed them; without a lock file their own dependencies are
    # not known to be complete. Without runtime input nothing is claimed.
    libraries = ctx.facts.get("libraries") or []
    aggregate = "unknown" if not libraries else "complete" if _locked(ctx) else "incomplete"
    comps.append({"bom-ref": "composition:dependencies", "aggregate": aggregate, "dependencies": model_refs})
    if ctx.facts.get("datasets") or ctx.facts.get("base_models"):
        comps.append({"bom-ref": "composition:lineage", "aggregate": "unknown",
                      "assemblies": sorted(set(ctx.facts.get("datasets", []) + ctx.facts.get("base_models", [])))})
    ctx.patches.compositions = comps
