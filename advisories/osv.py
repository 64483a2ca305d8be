"""OSV records (schema 1.7) <-> `Advisory`: tolerant reading of what databases publish.

A record that lacks `id`/`modified` or whose shapes are wrong raises `RecordError`; unknown fields
are kept in `raw` and otherwise ignored, as the OSV spec asks of consumers.
"""
from __future__ import annotations

import json
from typing import Any

from packaging.utils import canonicalize_name

from .interface import Advisory, Affected, Event, MlFields, Range, as_dict
from .errors import RecordError

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
TRIGGERS = ("load", "save", "inference")
MAX_RECORD_BYTES = 4 * 1024 * 1024  # the largest real OSV records are a few hundred KB


def loads(text: str | bytes, origin: str = "shipped") -> Advisory:
    """Parse one OSV JSON document."""
    if len(text) > MAX_RECORD_BYTES:
        raise RecordError(f"record larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"not JSON: {exc}") from None
    return parse(data, origin)


def parse(data: Any, origin: str = "shipped") -> Advisory:
    """An `Advisory` from a decoded OSV record."""
    if not isinstance(data, dict):
        raise RecordError("an OSV record is a JSON object")
    ident, modified = data.get("id"), data.get("modified")
    if not isinstance(ident, str) or not ident.strip():
        raise RecordError("record without an id")
    if not isinstance(modified, str):
        raise RecordError(f"{ident}: record without `modified`")
    affected = tuple(_affected(ident, entry) for entry in _list(data.get("affected")) if isinstance(entry, dict))
    severity = tuple((str(s.get("type", "")), str(s.get("score", ""))) for s in _list(data.get("severity"))
                     if isinstance(s, dict) and s.get("score"))
    # Package-level severities (GHSA puts none there; some databases do) count too.
    for entry in _list(data.get("affected")):
        if isinstance(entry, dict):
            severity += tuple((str(s.get("type", "")), str(s.get("score", ""))) for s in _list(entry.get("severity"))
                              if isinstance(s, dict) and s.get("score"))
    refs = tuple((str(r.get("type", "WEB")), str(r["url"])) for r in _list(data.get("references"))
                 if isinstance(r, dict) and isinstance(r.get("url"), str))
    specific = as_dict(data.get("database_specific"))
    cwes = tuple(str(c) for c in _list(specific.get("cwe_ids")) if isinstance(c, str))
    return Advisory(
        id=ident.strip(), modified=modified,
        aliases=tuple(str(a) for a in _list(data.get("aliases")) if isinstance(a, str)),
        summary=str(data.get("summary") or ""), details=str(data.get("details") or ""),
        published=data.get("published") if isinstance(data.get("published"), str) else None,
        withdrawn=data.get("withdrawn") if isinstance(data.get("withdrawn"), str) else None,
        severity=severity, affected=affected, references=refs, cwes=cwes, raw=data, origin=origin)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _affected(ident: str, entry: dict[str, Any]) -> Affected:
    package = as_dict(entry.get("package"))
    ecosystem = str(package.get("ecosystem") or "")
    name = str(package.get("name") or "")
    ranges = []
    for raw in _list(entry.get("ranges")):
        if not isinstance(raw, dict):
            continue
        events = []
        for event in _list(raw.get("events")):
            if not isinstance(event, dict) or len(event) != 1:
                raise RecordError(f"{ident}: a range event has exactly one key")
            kind, version = next(iter(event.items()))
            if kind not in EVENT_KINDS or not isinstance(version, str):
                raise RecordError(f"{ident}: unknown range event {kind!r}")
            events.append(Event(kind, version))
        ranges.append(Range(type=str(raw.get("type", "")), events=tuple(events),
                            repo=raw.get("repo") if isinstance(raw.get("repo"), str) else None))
    versions = tuple(str(v) for v in _list(entry.get("versions")) if isinstance(v, (str, int, float)))
    specific = as_dict(entry.get("database_specific"))
    return Affected(ecosystem=ecosystem.split(":", 1)[0], name=canonicalize_name(name) if name else "",
                    ranges=tuple(ranges), versions=versions, ml=ml_fields(specific.get("ml")))


def ml_fields(raw: Any) -> MlFields | None:
    """`database_specific.ml` (our extension), or None when absent or malformed."""
    if not isinstance(raw, dict):
        return None
    trigger = raw.get("trigger", "load")
    return MlFields(formats=tuple(str(f) for f in _list(raw.get("formats"))),
                    trigger=trigger if trigger in TRIGGERS else "load",
                    detectors=tuple(str(d) for d in _list(raw.get("detectors"))),
                    disputed=bool(raw.get("disputed", False)), note=str(raw.get("note") or ""))


def fixed_versions(affected: Affected) -> list[str]:
    """The `fixed` events of an affected entry's ECOSYSTEM ranges, in record order."""
    return [e.version for r in affected.ranges if r.type == "ECOSYSTEM" for e in r.events if e.kind == "fixed"]
