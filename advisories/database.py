"""The database in use: the shipped records, overlaid by the local index when one exists.

An index record that shares an id or alias with a shipped record replaces it only when it is
newer (`modified`), and then inherits the shipped record's ML fields (formats, trigger,
detectors, disputed), which no upstream database carries.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, Iterator

from .index import LocalIndex, open_index
from .interface import Advisory, AdvisoryDatabase, DatabaseInfo
from .shipped import ShippedDatabase

MAX_AGE_DAYS = 30


class CombinedDatabase(AdvisoryDatabase):
    def __init__(self, shipped: AdvisoryDatabase, local: LocalIndex | None):
        self.shipped = shipped
        self.local = local
        self._merged: list[Advisory] | None = None

    def info(self) -> DatabaseInfo:
        """The database in use: the index when there is one, else the shipped records."""
        return self.local.info() if self.local is not None else self.shipped.info()

    def parts(self) -> list[DatabaseInfo]:
        return [self.shipped.info()] + ([self.local.info()] if self.local is not None else [])

    def advisories(self) -> Iterator[Advisory]:
        if self._merged is None:
            self._merged = merge(list(self.shipped.advisories()),
                                 list(self.local.advisories()) if self.local is not None else [])
        return iter(self._merged)

    def describe(self, max_age_days: int = MAX_AGE_DAYS, now: _dt.datetime | None = None) -> dict[str, Any]:
        """What the report records about the database, with a warning when it is stale."""
        info = self.info()
        age = info.age_days(now)
        out: dict[str, Any] = {
            "kind": info.kind, "date": info.date.date().isoformat(), "records": info.records,
            "location": info.location, "source": info.source, "age_days": age,
            "parts": [{"kind": p.kind, "date": p.date.date().isoformat(), "records": p.records} for p in self.parts()],
        }
        if age > max_age_days:
            out["warning"] = stale_warning(info, age, max_age_days)
        return out


def stale_warning(info: DatabaseInfo, age: int, max_age_days: int) -> str:
    hint = "run `modelshield advisories update` or import a newer dump" if info.kind != "shipped" else \
        "upgrade modelshield, run `modelshield advisories update`, or `modelshield advisories import` a recent OSV dump"
    return (f"the advisory database in use is {age} days old (over {max_age_days}): {info.kind} database of "
            f"{info.date.date().isoformat()}; {hint}")


def merge(shipped: list[Advisory], local: list[Advisory]) -> list[Advisory]:
    out = list(shipped)
    for adv in local:
        twin = next((i for i, s in enumerate(out) if s.ids & adv.ids and s.origin == "shipped"), None)
        if twin is None:
            out.append(adv)
        elif adv.modified > out[twin].modified:
            out[twin] = graft_ml(adv, out[twin])
    return out


def graft_ml(newer: Advisory, curated: Advisory) -> Advisory:
    """`newer` with the ML fields of `curated`'s entries for the same packages."""
    ml = {e.name: e.ml for e in curated.affected if e.ml is not None}
    entries = tuple(dataclasses.replace(e, ml=e.ml or ml.get(e.name)) for e in newer.affected)
    return dataclasses.replace(newer, affected=entries, aliases=tuple(sorted((newer.ids | curated.ids) - {newer.id})))


def open_database() -> CombinedDatabase:
    """Shipped records plus the local index (OSError when an index exists but is unreadable)."""
    return CombinedDatabase(ShippedDatabase(), open_index())
