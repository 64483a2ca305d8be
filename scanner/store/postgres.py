"""The shared store: a Postgres table (psycopg 3), for many scanning machines and Ray workers.

Install with `pip install "modelshield[postgres]"`. Concurrent writers are safe (INSERT ... ON
CONFLICT); an unreachable server or a missing package is a StoreError (the CLI exits 2: a store
someone configured as shared is not silently dropped).
"""
from __future__ import annotations

import datetime as _dt
import importlib
import re
import time
import zlib
from typing import Any, Iterator

from ..errors import StoreError
from .interface import Entry, ResultStore, by_engine_and_policy, unchanged
from .keys import FileId, StoreKey

CONNECT_TIMEOUT = 10  # seconds
TOUCH_AFTER = 86400.0
_CREATE = """
CREATE TABLE IF NOT EXISTS modelshield_results (
    sha256 TEXT NOT NULL, name TEXT NOT NULL, engine TEXT NOT NULL, policy TEXT NOT NULL,
    size BIGINT NOT NULL, payload BYTEA NOT NULL, created DOUBLE PRECISION NOT NULL,
    used DOUBLE PRECISION NOT NULL, PRIMARY KEY (sha256, name, engine, policy));
CREATE INDEX IF NOT EXISTS modelshield_results_used ON modelshield_results (used);
CREATE TABLE IF NOT EXISTS modelshield_file_digests (
    host TEXT NOT NULL, path TEXT NOT NULL, dev BIGINT NOT NULL, ino NUMERIC NOT NULL, size BIGINT NOT NULL,
    mtime_ns NUMERIC NOT NULL, ctime_ns NUMERIC NOT NULL, sha256 TEXT NOT NULL, seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host, path));
"""


class PostgresStore(ResultStore):
    """A result store in the table `modelshield_results` of the database at `url`."""

    def __init__(self, url: str) -> None:
        self.location = re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", url)  # never print a password
        try:
            psycopg: Any = importlib.import_module("psycopg")
        except ImportError:
            raise StoreError(f"result store {self.location}: needs psycopg (pip install \"modelshield[postgres]\")"
                             ) from None
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, zlib.error)
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            with self.db.transaction():
                # one creator at a time (CREATE TABLE IF NOT EXISTS races on the type's name)
                self.db.execute("SELECT pg_advisory_xact_lock(7318723)")
                for statement in filter(str.strip, _CREATE.split(";")):
                    self.db.execute(statement)
        except psycopg.Error as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None

    def get_many(self, keys: list[StoreKey]) -> dict[StoreKey, Entry]:
        found: dict[StoreKey, Entry] = {}
        wanted = set(keys)
        try:
            for (engine, policy), hashes in by_engine_and_policy(keys).items():
                rows = self.db.execute(
                    "SELECT sha256, name, size, payload, created, used FROM modelshield_results "
                    "WHERE engine = %s AND policy = %s AND sha256 = ANY(%s)", (engine, policy, hashes)).fetchall()
                for sha, name, size, payload, created, used in rows:
                    key = StoreKey(sha, name, engine, policy)
                    if key in wanted:
                        found[key] = Entry(key, zlib.decompress(bytes(payload)), size, created, used)
            stale = [e for e in found.values() if e.used < time.time() - TOUCH_AFTER]
            if stale:
                with self.db.cursor() as cur:
                    cur.executemany("UPDATE modelshield_results SET used = %s WHERE sha256 = %s AND name = %s "
                                    "AND engine = %s AND policy = %s", [(time.time(), *e.key) for e in stale])
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        return found

    def put(self, entries: list[Entry]) -> None:
        if not entries:
            return
        now = time.time()
        rows = [(*e.key, e.size, zlib.compress(e.payload, 6), e.created or now, now) for e in entries]
        try:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO modelshield_results (sha256, name, engine, policy, size, payload, created, used) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (sha256, name, engine, policy) DO UPDATE SET "
                    "size = EXCLUDED.size, payload = EXCLUDED.payload, created = EXCLUDED.created, "
                    "used = EXCLUDED.used", rows)
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: cannot write: {_reason(exc)}") from None

    def known_digests(self, host: str, files: list[FileId]) -> dict[FileId, str]:
        try:
            rows = self.db.execute(
                "SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256 FROM modelshield_file_digests "
                "WHERE host = %s AND path = ANY(%s)", (host, sorted({f.path for f in files}))).fetchall()
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        return unchanged(files, [(p, int(d), int(i), int(s), int(m), int(c), h) for p, d, i, s, m, c, h in rows])

    def remember_digests(self, host: str, digests: list[tuple[FileId, str]]) -> None:
        if not digests:
            return
        now = time.time()
        try:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO modelshield_file_digests VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (host, path) DO UPDATE SET dev = EXCLUDED.dev, ino = EXCLUDED.ino, "
                    "size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, ctime_ns = EXCLUDED.ctime_ns, "
                    "sha256 = EXCLUDED.sha256, seen = EXCLUDED.seen",
                    [(host, *fid, sha256, now) for fid, sha256 in digests])
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: cannot write: {_reason(exc)}") from None

    def stats(self) -> dict[str, Any]:
        try:
            row = self.db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT sha256), COUNT(DISTINCT engine), COUNT(DISTINCT policy), "
                "COALESCE(SUM(LENGTH(payload)), 0), COALESCE(SUM(size), 0), MIN(created), MAX(used) "
                "FROM modelshield_results").fetchone()
            files = self.db.execute("SELECT COUNT(*) FROM modelshield_file_digests").fetchone()[0]
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None
        n, hashes, engines, policies, payload, analysed, oldest, newest = row
        return {"store": self.location, "backend": "postgres", "entries": n, "distinct_hashes": hashes,
                "engines": engines, "policies": policies, "analysed_bytes": int(analysed),
                "stored_bytes": int(payload), "file_digests": files, "oldest": oldest, "last_used": newest}

    def entries(self) -> Iterator[Entry]:
        try:
            with self.db.transaction(), self.db.cursor(name="modelshield_export") as cur:  # server-side: streamed
                cur.execute("SELECT sha256, name, engine, policy, size, payload, created, used "
                            "FROM modelshield_results ORDER BY created")
                for sha, name, engine, policy, size, payload, created, used in cur:
                    key = StoreKey(sha, name, engine, policy)
                    yield Entry(key, zlib.decompress(bytes(payload)), size, created, used)
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: {_reason(exc)}") from None

    def gc(self, older_than: _dt.timedelta, engine: str | None = None) -> int:
        cutoff = time.time() - older_than.total_seconds()
        try:
            cur = self.db.execute("DELETE FROM modelshield_results WHERE used < %s" +
                                  (" OR engine != %s" if engine else ""), (cutoff, engine) if engine else (cutoff,))
            deleted = cur.rowcount
            self.db.execute("DELETE FROM modelshield_file_digests WHERE seen < %s", (cutoff,))
            return deleted
        except self._errors as exc:
            raise StoreError(f"result store {self.location}: cannot delete: {_reason(exc)}") from None

    def close(self) -> None:
        self.db.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
