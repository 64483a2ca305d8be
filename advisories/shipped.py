"""The curated OSV records shipped inside the package (data/osv/*.json) and their metadata."""
from __future__ import annotations

import datetime as _dt
import functools
from typing import Iterator

from . import osv, tables
from .interface import Advisory, AdvisoryDatabase, DatabaseInfo


class ShippedDatabase(AdvisoryDatabase):
    """Read-only: one JSON file per record, validated against the OSV schema by the tests."""

    def info(self) -> DatabaseInfo:
        meta = tables.load_toml("osv_meta.toml")
        curated = _dt.datetime.fromisoformat(str(meta["curated"])).replace(tzinfo=_dt.timezone.utc)
        return DatabaseInfo(kind="shipped", date=curated, location="modelshield.advisories/data/osv",
                            records=len(_records()), source=str(meta.get("source", "")))

    def advisories(self) -> Iterator[Advisory]:
        return iter(_records())


@functools.lru_cache(maxsize=1)
def _records() -> tuple[Advisory, ...]:
    folder = tables.path("osv")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out.append(osv.loads(entry.read_text(encoding="utf-8"), origin="shipped"))
    return tuple(out)
