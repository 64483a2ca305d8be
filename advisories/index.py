"""The local advisory index: a SQLite file in the user cache dir, written by `import` and `update`.

`MODELSHIELD_CACHE` moves the cache folder. Writes build a new file beside the old one and
replace it atomically, so a failed import or update leaves the previous index intact.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from packaging.utils import canonicalize_name

from modelshield.scanner import env

from . import osv
from .interface import Advisory, AdvisoryDatabase, DatabaseInfo

FILE_NAME = "advisories.sqlite"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (id TEXT PRIMARY KEY, modified TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE packages (name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (name, id));
"""


def cache_dir() -> Path:
    """$MODELSHIELD_CACHE, else the platform's user cache folder for modelshield."""
    override = env.cache_dir()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelshield", appauthor=False))


def index_path() -> Path:
    return cache_dir() / FILE_NAME


class LocalIndex(AdvisoryDatabase):
    """Reads an index file; `LocalIndex.write` creates one."""

    def __init__(self, path: Path):
        self.path = path
        self._cache: list[Advisory] | None = None
        self._meta = self._read_meta()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def _read_meta(self) -> dict[str, str]:
        try:
            with self._connect() as con:
                return dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise OSError(f"{self.path} is not a modelshield advisory index ({exc})") from None

    def info(self) -> DatabaseInfo:
        date = _dt.datetime.fromisoformat(self._meta["date"].replace("Z", "+00:00"))
        return DatabaseInfo(kind=self._meta.get("kind", "imported"), date=date, location=str(self.path),
                            records=int(self._meta.get("records", "0")), source=self._meta.get("source", ""))

    @property
    def written(self) -> str:
        """When the index was written (the database date is when its content was produced)."""
        return self._meta.get("written", "")

    def advisories(self) -> Iterator[Advisory]:
        if self._cache is None:
            kind = self._meta.get("kind", "imported")
            with self._connect() as con:
                rows = con.execute("SELECT body FROM records ORDER BY id").fetchall()
            self._cache = [osv.loads(body, origin=kind) for (body,) in rows]
        return iter(self._cache)

    def for_package(self, name: str) -> list[Advisory]:
        with self._connect() as con:
            ids = {i for (i,) in con.execute("SELECT id FROM packages WHERE name = ?", (canonicalize_name(name),))}
        return [a for a in self.advisories() if a.id in ids]

    @staticmethod
    def write(path: Path, records: Iterable[tuple[Advisory, str]], *, kind: str, date: _dt.datetime,
              source: str) -> int:
        """Replace the index at `path` with `records` ((advisory, JSON text) pairs); returns the count."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        count = 0
        try:
            con = sqlite3.connect(tmp)
            try:
                con.executescript(SCHEMA)
                for adv, body in records:
                    con.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (adv.id, adv.modified, body))
                    for entry in adv.affected:
                        if entry.ecosystem == "PyPI" and entry.name:
                            con.execute("INSERT OR IGNORE INTO packages VALUES (?, ?)", (entry.name, adv.id))
                count = con.execute("SELECT count(*) FROM records").fetchone()[0]
                now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
                meta = {"kind": kind, "date": date.astimezone(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                        "source": source, "records": str(count), "written": now.isoformat(), "format": "1"}
                con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
                con.commit()
            finally:
                con.close()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return count


def open_index(path: Path | None = None) -> LocalIndex | None:
    """The index if one exists (OSError when the file is there but unreadable)."""
    path = path or index_path()
    return LocalIndex(path) if path.is_file() else None


def record_text(adv: Advisory) -> str:
    return json.dumps(adv.raw, sort_keys=True, ensure_ascii=False)
