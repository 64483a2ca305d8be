"""The state one BOM build passes through its evidence providers."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from cyclonedx.model import ExternalReference, Property
from cyclonedx.model.component import Component
from cyclonedx.model.vulnerability import Vulnerability

from modelshield.scanner.findings import Artefact, Report, TargetResult

PHASES = ("development", "deployment")
SPEC_VERSIONS = ("1.6", "1.7")


@dataclass
class Citation:
    """Where one BOM field came from: `component_ref` + `field` (a JSON Pointer inside it)."""

    component_ref: str
    field: str  # e.g. "/modelCard/modelParameters/task"
    source_ref: str | None  # bom-ref of the file component or tool that supplied it
    note: str


@dataclass
class ModelEntry:
    """One scanned target, described as a model (or dataset) component with its files."""

    target: TargetResult
    ref: str
    name: str
    component: Component
    files: dict[str, Component] = field(default_factory=dict)  # artefact path -> file component
    artefacts: dict[str, Artefact] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)  # card data (front matter or Hub API)
    card_source: str | None = None  # bom-ref of what supplied `card`
    card_note: str = ""
    sections: dict[str, str] = field(default_factory=dict)
    card_title: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # config.json facts
    config_source: str | None = None
    config_note: str = ""
    is_dataset: bool = False


@dataclass
class JsonPatches:
    """What cyclonedx-python-lib does not model; merged into its JSON output by `merge.apply`."""

    model_cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # component ref -> modelCard
    component_data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ref -> data[]
    citations: list[Citation] = field(default_factory=list)
    compositions: list[dict[str, Any]] = field(default_factory=list)
    declarations: dict[str, Any] | None = None
    tool_services: list[dict[str, Any]] = field(default_factory=list)
    # Edges to components the library cannot see (pedigree ancestors): ref -> refs.
    dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BomContext:
    """Inputs and the BOM under construction; providers add to it, `builder` serialises it."""

    report: Report
    phase: str
    spec_version: str
    timestamp: _dt.datetime
    from_bom: dict[str, Any] | None = None
    author: str | None = None
    models: list[ModelEntry] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)  # top-level besides the models
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    properties: list[Property] = field(default_factory=list)  # metadata.properties
    external_references: list[ExternalReference] = field(default_factory=list)  # BOM level
    patches: JsonPatches = field(default_factory=JsonPatches)
    facts: dict[str, Any] = field(default_factory=dict)  # provider results the ETSI mapping reads
    notes: list[str] = field(default_factory=list)  # one-line remarks for the CLI (e.g. drift)

    @property
    def cite_in_properties(self) -> bool:
        """1.6 has no `citations`: field sources become namespaced properties instead."""
        return self.spec_version == "1.6"

    def depend(self, ref: str, *on: str) -> None:
        """Record `ref` -> `on` edges of the dependency graph."""
        self.dependencies.setdefault(ref, set()).update(on)
        for other in on:
            self.dependencies.setdefault(other, set())

    def timestamp_text(self) -> str:
        return self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
