"""Is version V of package P affected by advisory A? OSV range semantics over PEP 440 ordering.

Follows the evaluation pseudocode of the OSV schema (docs/schema.md, "Evaluation"): events of an
ECOSYSTEM (or SEMVER) range are sorted by version and walked; `introduced` at or below V switches
"affected" on, `fixed` at or below V switches it off, `last_affected` below V switches it off;
when `limit` events exist V must be below one of them. `versions[]` entries match exactly.
Ranges and affected entries combine with OR. Versions are compared with `packaging.version`
(full PEP 440: epochs, pre/post/dev releases), never with `SpecifierSet` (which drops
pre-releases by default).

One deliberate refinement: a local version label names a build of the same upstream release
(`2.5.1+cu121` is torch 2.5.1 built for CUDA 12.1). When an event or listed version has no local
label, V is compared by its public part, so `last_affected: 2.5.1` and `versions: [2.5.1]` both
cover `2.5.1+cu121`, which plain PEP 440 ordering (local sorts after public) would miss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from .interface import Advisory, Affected, Range
from .osv import fixed_versions

ZERO = Version("0")


@dataclass
class Match:
    """The outcome for one advisory and one installed package."""

    advisory: Advisory
    package: str
    version: str | None
    status: str  # affected | unknown
    entries: list[Affected] = field(default_factory=list)
    fix: str | None = None  # the first fixed version above the installed one, if any
    reason: str = ""  # why unknown


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or None when it is not one."""
    try:
        return Version(text.strip())
    except (InvalidVersion, AttributeError):
        return None


def _event_version(text: str) -> Version:
    if text == "0":
        return ZERO
    version = parse_version(text)
    if version is None:
        raise InvalidVersion(text)
    return version


def _comparable(v: Version, bound: Version) -> Version:
    """V as compared against `bound`: by public part when the bound carries no local label."""
    return Version(v.public) if v.local is not None and bound.local is None else v


def in_range(v: Version, rng: Range) -> bool:
    """OSV `IsAffected` for one ECOSYSTEM/SEMVER range (raises InvalidVersion on a bad event)."""
    limits = [e for e in rng.events if e.kind == "limit"]
    if limits and not any(e.version == "*" or _comparable(v, _event_version(e.version)) < _event_version(e.version)
                          for e in limits):
        return False
    events = sorted((e for e in rng.events if e.kind != "limit"), key=lambda e: _event_version(e.version))
    affected = False
    for event in events:
        bound = _event_version(event.version)
        cv = _comparable(v, bound)
        if event.kind == "introduced" and cv >= bound:
            affected = True
        elif event.kind == "fixed" and cv >= bound:
            affected = False
        elif event.kind == "last_affected" and cv > bound:
            affected = False
    return affected


def entry_status(v: Version, entry: Affected) -> tuple[bool | None, str]:
    """(True affected | False not | None unknown, reason) for one affected entry."""
    for listed in entry.versions:
        lv = parse_version(listed)
        if lv is not None and _comparable(v, lv) == lv:
            return True, ""
    unknown = ""
    for rng in entry.ranges:
        if rng.type == "GIT":
            unknown = unknown or "only GIT commit ranges, which an installed version cannot be matched against"
            continue
        try:
            if in_range(v, rng):
                return True, ""
        except InvalidVersion as exc:
            unknown = f"range event {exc} is not a PEP 440 version"
    has_versioned = bool(entry.versions) or any(r.type != "GIT" for r in entry.ranges)
    if unknown and not has_versioned:
        return None, unknown
    if "PEP 440" in unknown:
        return None, unknown
    return False, ""


def match(advisory: Advisory, package: str, version: str | None) -> Match | None:
    """The match of `advisory` against installed `package` at `version` (None: not affected).

    Withdrawn advisories never match. An unknown or non-PEP 440 version gives an `unknown` match
    when the advisory names the package at all: reported, never guessed.
    """
    if advisory.withdrawn:
        return None
    entries = advisory.for_package(package)
    if not entries:
        return None
    if version is None:
        return Match(advisory, package, None, "unknown", entries, reason="version not pinned")
    v = parse_version(version)
    if v is None:
        return Match(advisory, package, version, "unknown", entries, reason=f"{version!r} is not a PEP 440 version")
    hits, reasons = [], []
    for entry in entries:
        status, reason = entry_status(v, entry)
        if status:
            hits.append(entry)
        elif status is None:
            reasons.append(reason)
    if hits:
        return Match(advisory, package, version, "affected", hits, fix=first_fix(v, hits))
    if reasons:
        return Match(advisory, package, version, "unknown", entries, reason=reasons[0])
    return None


def first_fix(v: Version, entries: list[Affected]) -> str | None:
    """The lowest `fixed` version above V among the entries (None: no fix published)."""
    candidates = []
    for entry in entries:
        for text in fixed_versions(entry):
            fv = parse_version(text)
            if fv is not None and fv > v:
                candidates.append((fv, text))
    return min(candidates)[1] if candidates else None
