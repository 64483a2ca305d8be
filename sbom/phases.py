"""BOM phase -> `metadata.lifecycles`: one standard CycloneDX phase plus a named ETSI phase.

development -> `design` + `etsi-en-304-223:development`: the development BOM inventories a
    third-party artefact proposed for adoption (model intake): CycloneDX defines `design` as an
    inventory of what is proposed or planned, before anything is built from it.
deployment  -> `post-build` + `etsi-en-304-223:deployment`: the deployment BOM describes the
    released files as they ship, analysed after they were produced; `operations` would claim a
    running inventory, which a static scan of a release folder does not observe.
end-of-life -> `decommission` + `etsi-en-304-223:end-of-life`: what is being retired.
"""
from __future__ import annotations

from cyclonedx.model.lifecycle import LifecyclePhase, NamedLifecycle, PredefinedLifecycle

MAPPING = {
    "development": (LifecyclePhase.DESIGN, "etsi-en-304-223:development",
                    "ETSI EN 304 223 development phase (clause 5.2): a third-party model or dataset "
                    "as adopted, with findings, provenance, licences and signature status."),
    "deployment": (LifecyclePhase.POST_BUILD, "etsi-en-304-223:deployment",
                   "ETSI EN 304 223 deployment phase (clause 5.3): exactly the files that ship, with "
                   "hashes, signature status, resolved VEX and runtime loader libraries."),
    "end-of-life": (LifecyclePhase.DECOMMISSION, "etsi-en-304-223:end-of-life",
                    "ETSI EN 304 223 end-of-life phase (clause 5.5): the model and data being retired, "
                    "with the decommissioning decision and the hashes of what was retired."),
}


def lifecycles(phase: str) -> list[PredefinedLifecycle | NamedLifecycle]:
    """The two lifecycle entries for `phase` (development | deployment | end-of-life)."""
    standard, name, description = MAPPING[phase]
    return [PredefinedLifecycle(standard), NamedLifecycle(name=name, description=description)]
