"""The advisories package's contracts: what an advisory is, where advisories come from, and what
a runtime (the loader libraries a deployment will use) looks like.

Shaped after pip-audit: a database interface with one module per implementation (`shipped`,
`index`), a dependency-source interface with one module per kind of input (`requirements`,
`lockfiles`, `environment`), a matcher, and an orchestrator (`audit`).
"""
from __future__ import annotations

import abc
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from packaging.utils import canonicalize_name

from modelshield.scanner.findings import RuntimePackage


@dataclass(frozen=True)
class Event:
    """One OSV range event: kind is introduced | fixed | last_affected | limit."""

    kind: str
    version: str


@dataclass(frozen=True)
class Range:
    """An OSV range: ECOSYSTEM, SEMVER or GIT, with its events in record order."""

    type: str
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True)
class MlFields:
    """`database_specific.ml` of an affected entry: which artefacts make the advisory bite."""

    formats: tuple[str, ...] = ()  # scanner format ids; empty: the package's formats (ml_packages.toml)
    trigger: str = "load"  # load | save | inference
    detectors: tuple[str, ...] = ()  # scanner rule ids that detect the exploit inside a file
    disputed: bool = False
    note: str = ""


@dataclass(frozen=True)
class Affected:
    """One `affected[]` entry for one package."""

    ecosystem: str
    name: str  # canonical (PEP 503) name
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    ml: MlFields | None = None


@dataclass
class Advisory:
    """An OSV record, parsed. `raw` keeps the record as read (for `show` and re-export)."""

    id: str
    modified: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    published: str | None = None
    withdrawn: str | None = None
    severity: tuple[tuple[str, str], ...] = ()  # (CVSS_V3 | CVSS_V4 | ..., vector)
    affected: tuple[Affected, ...] = ()
    references: tuple[tuple[str, str], ...] = ()  # (type, url)
    cwes: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    origin: str = "shipped"  # shipped | imported | updated

    @property
    def ids(self) -> set[str]:
        """The record id and its aliases: the set used to merge the same issue across databases."""
        return {self.id, *self.aliases}

    def for_package(self, name: str) -> list[Affected]:
        """The affected entries of PyPI package `name` (any spelling)."""
        canon = canonicalize_name(name)
        return [a for a in self.affected if a.ecosystem == "PyPI" and a.name == canon]

    @property
    def cves(self) -> list[str]:
        return sorted(i for i in self.ids if i.startswith("CVE-"))

    @property
    def disputed(self) -> bool:
        return any(a.ml is not None and a.ml.disputed for a in self.affected)


@dataclass(frozen=True)
class DatabaseInfo:
    """Which advisory database is in use and how fresh it is."""

    kind: str  # shipped | imported | updated
    date: _dt.datetime  # when its content was produced (shipped: curated; imported: dump file time)
    location: str
    records: int
    source: str = ""  # the dump file or OSV API URL it came from

    def age_days(self, now: _dt.datetime | None = None) -> int:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return (now - self.date).days

    def describe(self) -> str:
        return f"{self.kind} database of {self.date.date().isoformat()} ({self.records} records, {self.location})"


class AdvisoryDatabase(abc.ABC):
    """A source of OSV advisories for PyPI packages."""

    @abc.abstractmethod
    def info(self) -> DatabaseInfo:
        """What this database is and when it was produced."""

    @abc.abstractmethod
    def advisories(self) -> Iterator[Advisory]:
        """Every advisory held (withdrawn ones included: the matcher skips them)."""

    def for_package(self, name: str) -> list[Advisory]:
        """Advisories with an affected entry for PyPI package `name`."""
        return [a for a in self.advisories() if a.for_package(name)]

    def get(self, ident: str) -> Advisory | None:
        """The advisory with this id or alias (case-insensitive), or None."""
        want = ident.strip().upper()
        for adv in self.advisories():
            if want in {i.upper() for i in adv.ids}:
                return adv
        return None


@dataclass
class Runtime:
    """The loader libraries a deployment will use, and where that list came from."""

    packages: list[RuntimePackage]
    source: str  # "environment:/usr/bin/python3", "requirements:path", "uv.lock:path"...
    notes: list[str] = field(default_factory=list)  # skipped lines, excluded markers...

    def by_name(self) -> dict[str, list[RuntimePackage]]:
        out: dict[str, list[RuntimePackage]] = {}
        for pkg in self.packages:
            out.setdefault(canonicalize_name(pkg.name), []).append(pkg)
        return out


class DependencySource(abc.ABC):
    """Where runtime packages are read from (a requirements file, a lock file, an interpreter)."""

    @abc.abstractmethod
    def collect(self) -> Runtime:
        """The packages; raise `InputError` with a one-line message on unreadable input."""


def pypi_purl(name: str, version: str | None) -> str:
    """pkg:pypi purl (name canonicalised and version percent-encoded as the purl spec asks)."""
    from packageurl import PackageURL

    return str(PackageURL(type="pypi", name=canonicalize_name(name), version=version or None).to_string())


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON/TOML table, else an empty one (tolerant reading of foreign files)."""
    return value if isinstance(value, dict) else {}


def unique(items: Iterable[str]) -> list[str]:
    """Order-preserving de-duplication."""
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
