"""The embedded store: one sqlite file (WAL mode), safe for several scanning processes at once.

Writers take the database lock for one short transaction per batch; readers never block writers
(WAL). A busy database is waited for (`TIMEOUT`), then reported as a StoreError, like a corrupt
file or one that is not a result store: the caller goes on without the store, never with a guess.
"""
from __future__ import annotations

import datetime as _dt
import os
import random
import sqlite3
import time
import zlib
from typing import Any, Iterator

from ..errors import StoreError
from .interface import Entry, ResultStore, by_engine_and_policy, unchanged
from .keys import FileId, StoreKey

TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
SCHEMA = "modelshield-results/1"
TOUCH_AFTER = 86400.0  # a hit updates `used` at most once a day (lookups stay read-only)
_CHUNK = 500  # keys per lookup query (sqlite's bound-parameter limit is 999 on old builds)

_CREATE = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL, name TEXT NOT NULL, engine TEXT NOT NULL, policy TEXT NOT NULL,
    size INTEGER NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL, used REAL NOT NULL,
    PRIMARY KEY (sha256, name, engine, policy)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_used ON results (used);
"""
_CREATE_DIGESTS = """
CREATE TABLE IF NOT EXISTS file_digests (
    host TEXT NOT NULL, path TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (host, path)) WITHOUT ROWID
"""


class SqliteStore(ResultStore):
    """A result store in the sqlite file at `path` (created with its folder when missing)."""

    def __init__(self, path: str) -> None:
        self.location = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = sqlite3.connect(path, timeout=TIMEOUT, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"result store {path}: cannot open: {_reason(exc)}") from None
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self._init()
                break
            except sqlite3.OperationalError as exc:
                # switching a new file to WAL needs every other connection out for a moment, and
                # sqlite answers "locked" at once there instead of waiting: wait here
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.01, 0.1))
                    continue
                self.db.close()
                raise StoreError(f"result store {path}: {_reason(exc)}") from None
            except sqlite3.Error as exc:
                self.db.close()
                raise StoreError(f"result store {path}: {_reason(exc)}") from None

    def _init(self) -> None:
        db = self.db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "results" not in tables:
            raise sqlite3.DatabaseError("not a modelshield result store (it holds other tables)")
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        if "results" not in tables:
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _CREATE.split(";")):
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            raise sqlite3.DatabaseError(f"not a {SCHEMA} store (schema {row[0] if row else 'missing'})")
        if "file_digests" not in tables:
            db.execute(_CREATE_DIGESTS)

    # ------------------------------------------------------------------ lookups
    def get_many(self, keys: list[StoreKey]) -> dict[StoreKey, Entry]:
        found: dict[StoreKey, Entry] = {}
        wanted = set(keys)
        try:
            for (engine, policy), hashes in by_engine_and_policy(keys).items():
                for i in range(0, len(hashes), _CHUNK):
                    part = hashes[i:i + _CHUNK]
                    rows = self.db.execute(
                        "SELECT sha256, name, size, payload, created, used FROM results "
                        f"WHERE engine = ? AND policy = ? AND sha256 IN ({','.join('?' * len(part))})",
                        (engine, policy, *part)).fetchall()
                    for sha, name, size, payload, created, used in rows:
                        key = StoreKey(sha, name, engine, policy)
                        if key in wanted:
                            found[key] = Entry(key, zlib.decompress(payload), size, created, used)
        except (sqlite3.Error, zlib.error) as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        self._touch([e for e in found.values() if e.used < time.time() - TOUCH_AFTER])
        return found

    def _touch(self, entries: list[Entry]) -> None:
        if not entries:
            return
        now = time.time()
        try:
            self.db.executemany("UPDATE results SET used = ? "
                                "WHERE sha256 = ? AND name = ? AND engine = ? AND policy = ?",
                                [(now, *e.key) for e in entries])
        except sqlite3.OperationalError:
            pass  # best effort: a busy store only delays when `gc` sees the entry as used

    # ------------------------------------------------------------------ writes
    def put(self, entries: list[Entry]) -> None:
        if not entries:
            return
        now = time.time()
        rows = [(*e.key, e.size, zlib.compress(e.payload, 6), e.created or now, now) for e in entries]
        self._write("INSERT INTO results (sha256, name, engine, policy, size, payload, created, used) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256, name, engine, policy) DO UPDATE SET "
                    "size = excluded.size, payload = excluded.payload, created = excluded.created, "
                    "used = excluded.used", rows)

    def _write(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """`statement` for every row in one write transaction (taken at once: no upgrade deadlock)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(statement, rows)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"result store {self.location}: cannot write: {_reason(exc)}") from None

    def known_digests(self, host: str, files: list[FileId]) -> dict[FileId, str]:
        rows: list[tuple[Any, ...]] = []
        paths = sorted({f.path for f in files})
        try:
            for i in range(0, len(paths), _CHUNK):
                part = paths[i:i + _CHUNK]
                rows += self.db.execute(
                    "SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256 FROM file_digests "
                    f"WHERE host = ? AND path IN ({','.join('?' * len(part))})", (host, *part)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        return unchanged(files, rows)

    def remember_digests(self, host: str, digests: list[tuple[FileId, str]]) -> None:
        if not digests:
            return
        now = time.time()
        self._write("INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(host, *fid, sha256, now) for fid, sha256 in digests])

    # ------------------------------------------------------------------ maintenance
    def stats(self) -> dict[str, Any]:
        try:
            n, hashes, engines, policies, payload, oldest, newest = self.db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT sha256), COUNT(DISTINCT engine), COUNT(DISTINCT policy), "
                "COALESCE(SUM(LENGTH(payload)), 0), MIN(created), MAX(used) FROM results").fetchone()
            analysed = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()[0]
            files = self.db.execute("SELECT COUNT(*) FROM file_digests").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        return {"store": self.location, "backend": "sqlite", "entries": n, "distinct_hashes": hashes,
                "engines": engines, "policies": policies, "analysed_bytes": analysed,
                "stored_bytes": payload, "file_digests": files, "file_bytes": _file_size(self.location),
                "oldest": oldest, "last_used": newest}

    def entries(self) -> Iterator[Entry]:
        try:
            cursor = self.db.execute("SELECT sha256, name, engine, policy, size, payload, created, used FROM results "
                                     "ORDER BY created")
            for sha, name, engine, policy, size, payload, created, used in cursor:
                yield Entry(StoreKey(sha, name, engine, policy), zlib.decompress(payload), size, created, used)
        except (sqlite3.Error, zlib.error) as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None

    def gc(self, older_than: _dt.timedelta, engine: str | None = None) -> int:
        cutoff = time.time() - older_than.total_seconds()
        try:
            cur = self.db.execute("DELETE FROM results WHERE used < ?" + (" OR engine != ?" if engine else ""),
                                  (cutoff, engine) if engine else (cutoff,))
            deleted = cur.rowcount
            self.db.execute("DELETE FROM file_digests WHERE seen < ?", (cutoff,))
            return deleted
        except sqlite3.Error as exc:
            raise StoreError(f"result store {self.location}: cannot delete: {_reason(exc)}") from None

    def close(self) -> None:
        self.db.close()


def _file_size(path: str) -> int:
    try:
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    except OSError:
        return 0


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "file is not a database" in text:
        return "corrupt or not an sqlite file (file is not a database)"
    if "locked" in text:
        return f"{text} (another process held it for {TIMEOUT:.0f} s)"
    return text
