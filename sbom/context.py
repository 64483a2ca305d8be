"""The state one BOM build passes through its evidence providers."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from cyclonedx.model import ExternalReference, Property
from cyclonedx.model.component import Component
from cyclonedx.model.vulnerability import Vulnerability

from modelshield.scanner.findings import Artefact, Finding, Report, TargetResult


def ref_of(component: Component) -> str:
    """The bom-ref of a component we built (every one gets a value)."""
    value = component.bom_ref.value
    if value is None:
        raise ValueError(f"component {component.name!r} has no bom-ref")
    return value


PHASES = ("development", "deployment", "end-of-life")
SPEC_VERSIONS = ("1.6", "1.7")


@dataclass
class Attribution:
    """Who supplied, made and documented what a local folder holds: stated by the user, never
    guessed (`--supplier`, `--manufacturer URL`, `--author "Name <email>"`)."""

    supplier: str | None = None
    manufacturer: str | None = None  # URL
    author_name: str | None = None
    author_email: str | None = None

    @classmethod
    def parse_author(cls, text: str | None) -> tuple[str | None, str | None]:
        """`"Jane Doe <jane@example.org>"` -> ("Jane Doe", "jane@example.org"); a bare address or
        a bare name fills one side only."""
        if not text or not text.strip():
            return None, None
        text = text.strip()
        if text.endswith(">") and "<" in text:
            name, _, email = text[:-1].rpartition("<")
            return (name.strip() or None), (email.strip() or None)
        if "@" in text and " " not in text:
            return None, text
        return text, None


@dataclass
class Citation:
    """Where one BOM field came from: `component_ref` + `field` (a JSON Pointer inside it)."""

    component_ref: str
    field: str  # e.g. "/modelCard/modelParameters/task"
    source_ref: str | None  # bom-ref of the file component or tool that supplied it
    note: str


@dataclass
class ModelEntry:
    """One model root of a scanned target (or a dataset repository, or the folder holding
    several models and stray files), described as a component with its files."""

    target: TargetResult
    ref: str
    name: str
    component: Component
    root: str = ""  # folder relative to the target ("" = the target itself)
    kind: str = "model"  # model | dataset | folder
    findings: list[Finding] = field(default_factory=list)  # target-level findings attributed here
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
    stated: dict[str, dict[str, Any]] = field(default_factory=dict)  # file path -> hf_config facts

    @property
    def is_dataset(self) -> bool:
        return self.kind == "dataset"

    def root_path(self, name: str) -> str:
        """Target-relative path of `name` inside this root."""
        return f"{self.root}/{name}" if self.root else name


@dataclass
class JsonPatches:
    """What cyclonedx-python-lib does not model; merged into its JSON output by `merge.apply`."""

    model_cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # component ref -> modelCard
    component_data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ref -> data[]
    citations: list[Citation] = field(default_factory=list)
    compositions: list[dict[str, Any]] = field(default_factory=list)
    tool_services: list[dict[str, Any]] = field(default_factory=list)
    # Edges to components the library cannot see (pedigree ancestors): ref -> refs.
    dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BomContext:
    """Inputs and the BOM under construction; providers add to it, `builder` serialises it."""

    report: Report
    phase: str
    spec_version: str
    timestamp: _dt.datetime | None
    from_bom: dict[str, Any] | None = None
    attribution: Attribution = field(default_factory=Attribution)
    decision: str | None = None  # end of life: the decommissioning decision
    models: list[ModelEntry] = field(default_factory=list)  # models and datasets
    folders: list[ModelEntry] = field(default_factory=list)  # targets holding several models or strays
    tops: list[Component] = field(default_factory=list)  # one per target: the BOM subject(s)
    components: list[Component] = field(default_factory=list)  # top-level besides the models
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    properties: list[Property] = field(default_factory=list)  # metadata.properties
    external_references: list[ExternalReference] = field(default_factory=list)  # BOM level
    patches: JsonPatches = field(default_factory=JsonPatches)
    facts: dict[str, Any] = field(default_factory=dict)  # provider results the ETSI mapping reads
    notes: list[str] = field(default_factory=list)  # one-line remarks for the CLI (e.g. drift)
    gaps: list[str] = field(default_factory=list)  # what cannot be known: `modelshield:note` in the BOM
    unseen_datasets: list[str] = field(default_factory=list)  # named by a card only: one note for all

    @property
    def entries(self) -> list[ModelEntry]:
        """Everything that owns files: models, datasets and folders."""
        return self.models + self.folders

    @property
    def cite_in_properties(self) -> bool:
        """1.6 has no `citations` (and a 1.7 citation needs a timestamp): field sources become
        namespaced properties instead."""
        return self.spec_version == "1.6" or self.timestamp is None

    def depend(self, ref: str, *on: str) -> None:
        """Record `ref` -> `on` edges of the dependency graph."""
        self.dependencies.setdefault(ref, set()).update(on)
        for other in on:
            self.dependencies.setdefault(other, set())

    def timestamp_text(self) -> str | None:
        """ISO 8601 UTC, or None when the BOM has no timestamp (reproducible without SOURCE_DATE_EPOCH)."""
        return self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if self.timestamp else None

    def gap(self, text: str) -> None:
        """Record something the evidence cannot give (listed in the BOM's notes, never invented)."""
        if text not in self.gaps:
            self.gaps.append(text)

    def unseen_dataset(self, name: str) -> None:
        """A dataset named by a card whose files were not seen: its BSI flags cannot be known."""
        if name not in self.unseen_datasets:
            self.unseen_datasets.append(name)
