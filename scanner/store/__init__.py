"""The content-addressed result store: an artefact's analysis, keyed by what determines it.

A scan that meets bytes it has analysed before (same SHA-256, same analysers, same analysis
policy) reads the result instead of analysing again. The key (`keys.StoreKey`):

- `sha256`: of the file's bytes (computed here, or published by the Hub for LFS files);
- `engine`: the modelshield version plus a digest of the scanner package's code and data tables
  (rules, allow/deny lists), so any change of an analyser or a rule set misses every old entry;
- `policy`: a digest of the policy parts an analysis reads (budgets, extra allow entries,
  reviewed code), so a changed policy misses exactly the entries made under the old one
  (`fail_on` or suppressions, applied after the analysis, do not invalidate anything).

An entry holds the analysis as JSON (format, status, findings, members, properties, size,
SHA-512), never file contents. Results that depend on the moment rather than on the bytes (a
wall-clock or memory limit, a read error) are never stored (`keys.storable`).

Backends (one module each, behind `interface.ResultStore`): `sqlite` (embedded, the default, in
the user cache dir) and `postgres` (psycopg 3, shared by many workers). `open_store(spec)`
picks one from a path or a `postgresql://` URL.
"""
from __future__ import annotations

import os

from .interface import Entry, ResultStore, StoreError
from .keys import StoreKey, analysis_digest, engine_digest, storable

__all__ = ["Entry", "ResultStore", "StoreError", "StoreKey", "analysis_digest", "default_path", "engine_digest",
           "open_store", "storable"]


def default_path() -> str:
    """The default store: results.sqlite in the user cache dir (or in MODELSHIELD_CACHE)."""
    from .. import env

    base = env.cache_dir()
    if not base:
        import platformdirs

        base = platformdirs.user_cache_dir("modelshield", appauthor=False)
    return os.path.join(base, "results.sqlite")


def open_store(spec: str | None = None) -> ResultStore:
    """The store at `spec`: a `postgresql://` URL, else a sqlite file path (None: `default_path()`).

    Raises StoreError (one line) when it cannot be opened: the caller decides between exit 2 and
    going on without a store.
    """
    if spec and spec.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(spec)
    from .sqlite import SqliteStore

    return SqliteStore(os.path.expanduser(spec) if spec else default_path())
