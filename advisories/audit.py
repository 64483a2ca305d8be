"""The orchestrator: a scan report + a runtime + an advisory database -> advisory findings.

A finding fires only when a loader version is affected (OSV ranges, `matching`) **and** the target
holds a file of a format that loader opens for that advisory (`database_specific.ml.formats`, else
the package's formats in data/ml_packages.toml). A vulnerable loader with no such file is
informational (MS-ADV-002); a loader whose version is unknown, while files it would open are
present, is inconclusive (MS-ADV-003): reported, never guessed. Records that share an id or alias
(a GHSA and its CVE, a PYSEC twin) become one finding. Known-bad artefact hashes are checked
against every file's SHA-256 from the scan pass (MS-ADV-005, critical).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from packaging.utils import canonicalize_name
from packaging.version import Version

from modelshield.scanner.findings import Artefact, Finding, Location, Report, Suppression, TargetResult
from modelshield.scanner.rules import load_rules
from . import known_bad, severity as sev, tables
from .database import CombinedDatabase
from .interface import AdvisoryDatabase, Runtime, unique
from .matching import Match, match, parse_version
from .policy import AdvisoryPolicy

RULE_AFFECTED, RULE_INFO, RULE_UNKNOWN, RULE_DISPUTED, RULE_KNOWN_BAD = (
    "MS-ADV-001", "MS-ADV-002", "MS-ADV-003", "MS-ADV-004", "MS-ADV-005")
ADVISORY_RULES = (RULE_AFFECTED, RULE_INFO, RULE_UNKNOWN, RULE_DISPUTED)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_TRIGGER_TEXT = {"load": "load", "save": "save", "inference": "run inference on"}


@dataclass
class Group:
    """Matches of one package against records that are the same issue (shared ids/aliases)."""

    package: str
    version: str | None
    source: str
    matches: list[Match] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return set().union(*(m.advisory.ids for m in self.matches))

    @property
    def primary(self) -> str:
        """CVE id when there is one (what users search for), else the first record's id."""
        cves = sorted(i for i in self.ids if i.startswith("CVE-"))
        return cves[0] if cves else self.matches[0].advisory.id

    @property
    def fix(self) -> str | None:
        fixes = [(parse_version(m.fix), m.fix) for m in self.matches if m.fix]
        valid = [(v, t) for v, t in fixes if v is not None]
        return max(valid)[1] if valid else None

    def formats(self) -> list[str]:
        out: list[str] = []
        for m in self.matches:
            for entry in m.entries:
                out += list(entry.ml.formats) if entry.ml and entry.ml.formats else \
                    list(tables.ml_packages().get(self.package, ()))
        return unique(out)

    @property
    def trigger(self) -> str:
        triggers = [e.ml.trigger for m in self.matches for e in m.entries if e.ml]
        return triggers[0] if triggers else "load"

    @property
    def disputed(self) -> bool:
        return any(m.advisory.disputed for m in self.matches)

    @property
    def detectors(self) -> list[str]:
        return unique(d for m in self.matches for e in m.entries if e.ml for d in e.ml.detectors)


@dataclass
class AuditResult:
    findings: int = 0
    informational: int = 0
    unknown: int = 0
    known_bad: int = 0
    warning: str | None = None


def check_report(report: Report, runtime: Runtime, db: AdvisoryDatabase, *, policy: AdvisoryPolicy | None = None,
                 ignore: list[str] | tuple[str, ...] = (),
                 apply_suppressions: Callable[[list[Finding], str], None] | None = None,
                 today: Any = None, record_runtime: bool = True) -> AuditResult:
    """Attach the database description and the advisory findings to `report`.

    `record_runtime`: the runtime is the deployment's (a requirements/lock file, `--python`), so it
    becomes `Report.runtime` (which the deployment BOM lists). False for the scanning process's own
    environment, which says nothing about where the model runs: it is only described under
    `advisory_database["checked_runtime"]`.
    """
    import datetime as _dt

    policy = policy or AdvisoryPolicy()
    today = today or _dt.datetime.now(_dt.timezone.utc).date()
    if isinstance(db, CombinedDatabase):
        report.advisory_database = db.describe(policy.max_age_days)
    else:
        info = db.info()
        report.advisory_database = {"kind": info.kind, "date": info.date.date().isoformat(), "records": info.records}
    if record_runtime:
        report.runtime = list(runtime.packages)
        report.runtime_source = runtime.source
    else:
        report.advisory_database["checked_runtime"] = {
            "source": runtime.source, "packages": [{"name": p.name, "version": p.version} for p in runtime.packages]}
    if runtime.notes:
        report.advisory_database["runtime_notes"] = list(runtime.notes)
    result = AuditResult(warning=report.advisory_database.get("warning"))
    groups, unknown = collect(runtime, db)
    bad = known_bad.table(policy.known_bad)
    for target in report.targets:
        if target.error:
            continue
        new = target_findings(target, groups, unknown)
        _waive(new, policy, ignore, today)
        if apply_suppressions is not None:
            for finding in new:
                apply_suppressions([finding], finding.location.path)
        target.findings.extend(new)
        result.findings += sum(f.rule_id in (RULE_AFFECTED, RULE_DISPUTED) for f in new)
        result.informational += sum(f.rule_id == RULE_INFO for f in new)
        result.unknown += sum(f.rule_id == RULE_UNKNOWN for f in new)
        for artefact in target.artefacts:
            hit = known_bad.check(artefact, bad)
            if hit is not None:
                if apply_suppressions is not None:
                    apply_suppressions([hit], artefact.path)
                artefact.findings.append(hit)
                result.known_bad += 1
    return result


def collect(runtime: Runtime, db: AdvisoryDatabase) -> tuple[list[Group], dict[str, tuple[str, str, list[Match]]]]:
    """Affected groups (merged by alias) and, per package of unknown version, its candidate records."""
    groups: list[Group] = []
    unknown: dict[str, tuple[str, str, list[Match]]] = {}
    seen: set[tuple[str, str | None]] = set()
    for pkg in runtime.packages:
        name = canonicalize_name(pkg.name)
        if (name, pkg.version) in seen:
            continue
        seen.add((name, pkg.version))
        for adv in db.for_package(name):
            m = match(adv, name, pkg.version)
            if m is None:
                continue
            if m.status == "unknown":
                if adv.disputed:  # a disputed record never makes a scan inconclusive
                    continue
                entry = unknown.setdefault(name, (m.reason, pkg.source, []))
                entry[2].append(m)
                continue
            group = next((g for g in groups if g.package == name and g.version == pkg.version and g.ids & adv.ids),
                         None)
            if group is None:
                group = Group(package=name, version=pkg.version, source=pkg.source)
                groups.append(group)
            group.matches.append(m)
    return groups, unknown


def present_formats(artefact: Artefact) -> set[str]:
    return tables.artefact_formats(artefact.format, artefact.properties)


def files_for(target: TargetResult, formats: list[str]) -> list[str]:
    return [a.path for a in sorted(target.artefacts, key=lambda a: a.path)
            if tables.format_matches(formats, present_formats(a), a.path)]


def target_findings(target: TargetResult, groups: list[Group],
                    unknown: dict[str, tuple[str, str, list[Match]]]) -> list[Finding]:
    rules = load_rules()
    out: list[Finding] = []
    for group in groups:
        formats = group.formats()
        files = files_for(target, formats)
        rule = (RULE_DISPUTED if group.disputed else RULE_AFFECTED) if files else RULE_INFO
        advisories = [m.advisory for m in group.matches]
        level = max(sev.rate(a.severity, a.raw.get("database_specific")) for a in advisories)
        scored = [s for a in advisories for s in sev.scores(a.severity)]
        fix = group.fix
        evidence: dict[str, Any] = {
            "advisory": group.primary, "ids": sorted(group.ids), "aliases": sorted(group.ids - {group.primary}),
            "records": [a.id for a in advisories], "package": group.package, "version": group.version,
            "source": group.source, "fix": fix, "files": files, "file_count": len(files),
            "formats": formats, "trigger": group.trigger, "detectors": group.detectors,
            "disputed": group.disputed, "database": sorted({a.origin for a in advisories}),
            "cwes": unique(c for a in advisories for c in a.cwes),
            "published": min((a.published for a in advisories if a.published), default=None),
            "summary": _one_line(next((a.summary for a in advisories if a.summary), group.primary)),
            "cvss": [{"method": s.method, "vector": s.vector, "score": s.score} for s in scored],
            "files_text": _listing(files), "formats_text": ", ".join(formats) or "none known",
            "fix_text": f"{fix} or later" if fix
            else "a fixed release (none is published yet: do not let it load untrusted files)",
        }
        evidence["trigger"] = group.trigger
        finding = rules.finding(rule, Location(path=files[0] if files else "."),
                                severity=level if rule == RULE_AFFECTED else None,
                                cve=[i for i in group.ids if i.startswith("CVE-")], **evidence)
        finding.message = finding.message.replace(f"would {group.trigger} ",
                                                  f"would {_TRIGGER_TEXT.get(group.trigger, group.trigger)} ")
        finding.references = unique([f"https://osv.dev/vulnerability/{a.id}" for a in advisories] +
                                    [url for a in advisories for kind, url in a.references if kind == "ADVISORY"])[:8]
        out.append(finding)
    for package, (reason, source, matches) in sorted(unknown.items()):
        concerned: list[str] = []
        unknown_files: list[str] = []
        for m in matches:
            wanted = unique(f for e in m.entries for f in (e.ml.formats if e.ml and e.ml.formats
                                                           else tables.ml_packages().get(package, ())))
            hit = files_for(target, wanted)
            if hit:
                concerned.append(m.advisory.id)
                unknown_files = unique(unknown_files + hit)
        if not concerned:
            continue
        out.append(rules.finding(RULE_UNKNOWN, Location(path=unknown_files[0]), package=package, reason=reason,
                                 source=source, count=len(concerned), advisories=concerned, files=unknown_files,
                                 file_count=len(unknown_files), advisories_text=_listing(concerned),
                                 files_text=_listing(unknown_files)))
    return out


def _waive(findings: list[Finding], policy: AdvisoryPolicy, ignore: list[str] | tuple[str, ...], today: Any) -> None:
    wanted = {i.strip().upper() for i in ignore if i.strip()}
    for finding in findings:
        ids = set(finding.evidence.get("ids") or finding.evidence.get("advisories") or [])
        if {i.upper() for i in ids} & wanted:
            finding.suppressed = Suppression(reason="--ignore-vuln on the command line")
            continue
        waiver = policy.waiver_for(ids)
        if waiver is None or waiver.expires is None:
            continue
        if waiver.expires < today:
            finding.message += f" (waiver of {waiver.id} expired on {waiver.expires.isoformat()}: {waiver.reason})"
            finding.evidence["expired_suppression"] = waiver.expires.isoformat()
            continue
        finding.suppressed = Suppression(reason=waiver.reason, expires=waiver.expires.isoformat(),
                                         vex_state=waiver.vex_state, vex_justification=waiver.vex_justification)


def _one_line(text: str, limit: int = 200) -> str:
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _listing(items: list[str], shown: int = 5) -> str:
    head = ", ".join(items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")


def version_key(text: str | None) -> Version:
    return parse_version(text or "") or Version("0")
