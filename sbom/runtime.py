"""The runtime a deployment uses: `Report.runtime`, as the user named it, as `library` components.

The packages come from what the user points at (a requirements or lock file, or the deployment's
interpreter via `--python PATH`), parsed by the advisories package and attached to the report by
the CLI/API layer; this module only reads `Report.runtime` (never this process's environment:
modelshield's own installation says nothing about where the model runs). Packages that load one
of a model's files (`data/loaders.toml`) are its `loader` dependencies; the rest are the
deployment's `runtime`. Without runtime input nothing is listed and the BOM's notes say so.
"""
from __future__ import annotations

import re
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseAcknowledgement
from packageurl import PackageURL

from . import tables
from .context import BomContext, ModelEntry, ref_of
from .inventory import bsi_flags

_ALGS = {"sha256": HashAlgorithm.SHA_256, "sha384": HashAlgorithm.SHA_384, "sha512": HashAlgorithm.SHA_512}
_HEX = re.compile(r"^[0-9a-f]{32,128}$")


def normalise(name: str) -> str:
    """PEP 503 name normalisation (`Scikit_Learn` -> `scikit-learn`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def provider(ctx: BomContext) -> None:
    """One `library` component per runtime package; model -> loader edges; notes when absent."""
    packages = list(getattr(ctx.report, "runtime", None) or [])
    source = getattr(ctx.report, "runtime_source", None)
    if not packages:
        if ctx.phase == "deployment":
            ctx.gap("runtime loader libraries: not listed; no requirements/lock file or --python interpreter was given")
        return
    comps: dict[str, tuple[str, Component]] = {}
    for package in packages:
        comp = component(package, source)
        if comp is not None and ref_of(comp) not in comps:
            comps[ref_of(comp)] = (normalise(str(package.name)), comp)
    loaders_of_any: set[str] = set()
    for entry in ctx.models:
        wanted = {normalise(d) for d in _loader_names(entry)}
        for ref, (name, _comp) in comps.items():
            if name in wanted:
                ctx.depend(entry.ref, ref)
                loaders_of_any.add(ref)
    for ref, (_name, comp) in sorted(comps.items()):
        comp.properties.add(Property(name="modelshield:role", value="loader" if ref in loaders_of_any else "runtime"))
        ctx.components.append(comp)
        if ref not in loaders_of_any:
            for top in ctx.tops:
                ctx.depend(ref_of(top), ref)
    ctx.facts["libraries"] = sorted(comps)
    ctx.facts["runtime_source"] = source


def _loader_names(entry: ModelEntry) -> list[str]:
    wanted: list[str] = []
    for path, artefact in sorted(entry.artefacts.items()):
        wanted += tables.loader_distributions(artefact.format, path)
    library = entry.card.get("library_name") or (entry.target.provenance or {}).get("library_name")
    if isinstance(library, str):
        wanted += tables.library_distributions(library)
    return wanted


def component(package: Any, source: str | None) -> Component | None:
    """The `library` component of one RuntimePackage (None without a name)."""
    name = str(getattr(package, "name", "") or "").strip()
    if not name:
        return None
    version = getattr(package, "version", None) or None
    purl = _purl(package, name, version)
    comp = Component(type=ComponentType.LIBRARY, name=name, version=version, purl=purl,
                     bom_ref=purl.to_string() if purl else f"urn:modelshield:runtime:{normalise(name)}")
    for text in getattr(package, "hashes", None) or []:
        alg, _, digest = str(text).partition(":")
        if alg.lower() in _ALGS and _HEX.match(digest.lower()):
            comp.hashes.add(HashType(alg=_ALGS[alg.lower()], content=digest.lower()))
    licence = getattr(package, "license", None)
    if isinstance(licence, str) and licence.strip():
        comp.licenses.add(_licence(licence.strip()))
    where = getattr(package, "source", None) or source
    if where:
        comp.properties.add(Property(name="modelshield:runtime:source", value=str(where)))
    if version is None:
        comp.properties.add(Property(name="modelshield:runtime:version", value="not pinned (unknown)"))
    # An installed distribution: Python code with its metadata, not an archive once installed.
    comp.properties.update(bsi_flags({"executable": True, "archive": False, "structured": True}))
    return comp


def _purl(package: Any, name: str, version: str | None) -> PackageURL | None:
    text = getattr(package, "purl", None)
    if isinstance(text, str) and text.startswith("pkg:"):
        try:
            return PackageURL.from_string(text)
        except ValueError:
            pass
    return PackageURL("pypi", None, normalise(name), version)


def _licence(text: str) -> Any:
    from .licenses import factory

    licence = factory().make_from_string(text)
    licence.acknowledgement = LicenseAcknowledgement.DECLARED
    return licence
