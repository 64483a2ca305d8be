"""Human-readable views of the database: the `list` table and the `show` page."""
from __future__ import annotations

import re
from typing import Any

from packaging.utils import canonicalize_name

from . import severity as sev, tables
from .interface import Advisory, AdvisoryDatabase, Affected
from .osv import fixed_versions


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Record text (from dumps or APIs) with control characters shown as escapes, never emitted."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def ranges_text(entry: Affected) -> str:
    parts = []
    for rng in entry.ranges:
        if rng.type == "GIT":
            continue
        lo, bits = None, []
        for event in rng.events:
            if event.kind == "introduced":
                lo = event.version
            elif event.kind in ("fixed", "last_affected", "limit"):
                op = {"fixed": "<", "last_affected": "<=", "limit": "<"}[event.kind]
                bits.append((f">={lo}, " if lo not in (None, "0") else "") + f"{op}{event.version}")
                lo = None
        if lo is not None:
            bits.append(f">={lo}" if lo != "0" else "all versions")
        parts += bits
    if entry.versions:
        parts.append("==" + ", ==".join(entry.versions[:5]) + (" ..." if len(entry.versions) > 5 else ""))
    return "; ".join(parts) or "(no PyPI version range)"


def formats_of(entry: Affected) -> list[str]:
    if entry.ml is not None and entry.ml.formats:
        return list(entry.ml.formats)
    return list(tables.ml_packages().get(entry.name, ()))


def rows(db: AdvisoryDatabase, package: str | None = None) -> list[dict[str, Any]]:
    want = canonicalize_name(package) if package else None
    out = []
    for adv in sorted(db.advisories(), key=lambda a: a.id):
        if adv.withdrawn:
            continue
        for entry in adv.affected:
            if entry.ecosystem != "PyPI" or (want and entry.name != want):
                continue
            out.append({"id": adv.id, "aliases": list(adv.aliases), "package": entry.name,
                        "affected": ranges_text(entry), "fix": ", ".join(fixed_versions(entry)) or "none",
                        "formats": formats_of(entry), "trigger": entry.ml.trigger if entry.ml else "load",
                        "disputed": bool(entry.ml and entry.ml.disputed),
                        "severity": str(sev.rate(adv.severity, adv.raw.get("database_specific"))),
                        "origin": adv.origin, "summary": adv.summary})
    return sorted(out, key=lambda r: (r["package"], r["id"]))


def table(items: list[dict[str, Any]]) -> str:
    head = ("Package", "Affected", "ID", "Aliases", "Fix", "Severity", "Formats")
    body = [(r["package"], r["affected"], r["id"], ", ".join(a for a in r["aliases"] if a.startswith("CVE-")),
             r["fix"], r["severity"] + (" (disputed)" if r["disputed"] else ""), ", ".join(r["formats"]) or "-")
            for r in items]
    widths = [min(40, max(len(str(row[i])) for row in [head, *body])) for i in range(len(head))]
    lines = ["  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return printable("\n".join(lines))


def describe(adv: Advisory) -> str:
    lines = [f"{adv.id}" + (f"  (aliases: {', '.join(adv.aliases)})" if adv.aliases else ""),
             f"  {adv.summary}" if adv.summary else "",
             f"  published {adv.published or '?'}, modified {adv.modified}, from the {adv.origin} database"]
    if adv.withdrawn:
        lines.append(f"  WITHDRAWN {adv.withdrawn}: never matched")
    scored = sev.scores(adv.severity)
    for s in scored:
        lines.append(f"  {s.method} {s.score} {s.severity}: {s.vector}")
    if not scored:
        lines.append(f"  severity {sev.rate(adv.severity, adv.raw.get('database_specific'))} (no CVSS vector)")
    for entry in adv.affected:
        lines.append(f"  package {entry.ecosystem}/{entry.name}: affected {ranges_text(entry)}; "
                     f"fixed in {', '.join(fixed_versions(entry)) or 'no release yet'}")
        if entry.ml is not None:
            lines.append(f"    formats {', '.join(formats_of(entry)) or 'none (informational only)'}; "
                         f"trigger {entry.ml.trigger}"
                         + (f"; detected by {', '.join(entry.ml.detectors)}" if entry.ml.detectors else "")
                         + ("; DISPUTED" if entry.ml.disputed else ""))
            if entry.ml.note:
                lines.append(f"    note: {entry.ml.note}")
        else:
            lines.append(f"    formats (package default) {', '.join(formats_of(entry)) or 'none'}")
    if adv.details:
        lines += ["", *["  " + line for line in adv.details.strip().splitlines()[:40]]]
    if adv.references:
        lines.append("")
        lines += [f"  {kind.lower()}: {url}" for kind, url in adv.references[:12]]
    return printable("\n".join(line for line in lines if line))
