"""The sqlite result store: keys, invalidation, concurrent writers, corrupt and locked files (issue 18)."""
from __future__ import annotations

import datetime as dt
import io
import json
import multiprocessing
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from modelshield.scanner.budgets import Budgets
from modelshield.scanner.policy import Policy
from modelshield.scanner.store import Entry, StoreError, StoreKey, analysis_digest, open_store
from modelshield.scanner.store import keys as store_keys
from modelshield.scanner.store import sqlite as store_sqlite


def key(i: int, engine: str = "e1", policy: str = "p1") -> StoreKey:
    return StoreKey(f"{i:064x}", "model.pkl", engine, policy)


def entry(i: int, **kw) -> Entry:
    return Entry(key(i, **kw), json.dumps({"format": "pickle", "i": i, "findings": []}).encode(), size=i)


def test_put_then_get_many_round_trip(tmp_path):
    with open_store(str(tmp_path / "sub" / "r.sqlite")) as store:
        store.put([entry(i) for i in range(1200)])  # more than one lookup chunk
        found = store.get_many([key(i) for i in range(0, 1300, 7)])
        assert set(found) == {key(i) for i in range(0, 1200, 7)}
        assert json.loads(found[key(700)].payload)["i"] == 700
        assert store.get(key(5000)) is None
        stats = store.stats()
        assert stats["entries"] == 1200 and stats["distinct_hashes"] == 1200 and stats["engines"] == 1


def test_engine_and_policy_are_part_of_the_key(tmp_path):
    with open_store(str(tmp_path / "r.sqlite")) as store:
        store.put([entry(1), entry(1, engine="e2"), entry(2, policy="p2")])
        assert store.get(key(1, engine="e3")) is None
        assert store.get(key(2)) is None and store.get(key(2, policy="p2")) is not None
        assert store.stats()["entries"] == 3


def test_policy_digest_changes_only_with_what_the_analysis_reads():
    base = Policy.default()
    same = Policy.default()
    same.fail_on = Policy.default().fail_on.__class__(0)  # reporting threshold: analysis unchanged
    same.inconclusive_ok = True
    assert analysis_digest(same) == analysis_digest(base)
    tighter = Policy.default()
    tighter.budgets = Budgets(max_opcodes=10)
    allowing = Policy.from_mapping({"allow": {"globals": {"mypkg.Thing": "ours"}}})
    assert len({analysis_digest(base), analysis_digest(tighter), analysis_digest(allowing)}) == 3


def test_engine_digest_changes_with_a_rule_table(tmp_path):
    package = Path(store_keys.__file__).resolve().parents[1]
    copy = tmp_path / "scanner"
    shutil.copytree(package / "data", copy / "data")
    (copy / "dispatch.py").write_text("x = 1\n")
    before = store_keys.tree_digest(str(copy))
    assert store_keys.tree_digest(str(copy)) == before
    rules = next((copy / "data" / "rules").glob("*.toml"))
    rules.write_text(rules.read_text() + "\n# a changed rule set\n")
    assert store_keys.tree_digest(str(copy)) != before
    (copy / "output").mkdir()
    (copy / "output" / "text.py").write_text("# reports only\n")  # not analysis: same digest
    after = store_keys.tree_digest(str(copy))
    (copy / "output" / "text.py").write_text("# reports only, changed\n")
    assert store_keys.tree_digest(str(copy)) == after


def _writer(path: str, worker: int, n: int) -> None:
    with open_store(path) as store:
        for start in range(0, n, 10):
            store.put([entry(worker * 100_000 + i) for i in range(start, start + 10)])
            store.get_many([key(worker * 100_000 + i) for i in range(start)])


def test_concurrent_writers_in_several_processes(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(6)]  # all create the file at once
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with open_store(path) as store:
        assert store.stats()["entries"] == 900
        assert len(store.get_many([key(w * 100_000 + i) for w in range(6) for i in range(150)])) == 900


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "r.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="corrupt"):
        open_store(str(bad))
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not a modelshield result store"):
        open_store(str(other))


def test_a_store_damaged_after_creation_fails_on_use_not_with_a_result(tmp_path):
    path = tmp_path / "r.sqlite"
    with open_store(str(path)) as store:
        store.put([entry(i) for i in range(300)])
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        with open_store(str(path)) as store:
            store.get_many([key(i) for i in range(300)])


def test_a_locked_store_is_a_clear_error(tmp_path, monkeypatch):
    path = str(tmp_path / "r.sqlite")
    open_store(path).close()
    monkeypatch.setattr(store_sqlite, "TIMEOUT", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            with open_store(path) as store:
                store.put([entry(1)])
        assert time.monotonic() - t0 < 10
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_gc_and_export(tmp_path):
    with open_store(str(tmp_path / "r.sqlite")) as store:
        store.put([entry(i) for i in range(10)])
        store.put([entry(i, engine="old") for i in range(10, 13)])
        assert isinstance(store, store_sqlite.SqliteStore)
        store.db.execute("UPDATE results SET used = ? WHERE sha256 < ?", (time.time() - 100 * 86400, f"{3:064x}"))
        out = io.StringIO()
        assert store.export(out) == 13
        first = json.loads(out.getvalue().splitlines()[0])
        assert set(first) == {"sha256", "name", "engine", "policy", "size", "created", "used", "analysis"}
        assert store.gc(dt.timedelta(days=90)) == 3
        assert store.gc(dt.timedelta(days=90), engine="e1") == 3  # entries of another engine
        assert store.stats()["entries"] == 7
