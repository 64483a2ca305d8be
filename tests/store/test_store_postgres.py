"""The Postgres result store against a real server started here (issue 18)."""
from __future__ import annotations

import datetime as dt
import io
import json
import multiprocessing

import pytest
from pg_server import Server, free_port, pg_bin

from modelshield.scanner.store import Entry, StoreError, StoreKey, open_store

pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is a test dependency")
if pg_bin("initdb") is None:
    pytest.skip("initdb not found (.ci/run installs Debian's postgresql package)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    srv = Server()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def key(i: int, engine: str = "e1") -> StoreKey:
    return StoreKey(f"{i:064x}", "model.pkl", engine, "p1")


def entry(i: int, engine: str = "e1") -> Entry:
    return Entry(key(i, engine), json.dumps({"i": i}).encode(), size=i)


def _writer(url: str, worker: int) -> None:
    with open_store(url) as store:
        for start in range(0, 100, 10):
            store.put([entry(worker * 1000 + i) for i in range(start, start + 10)])
            store.put([entry(i) for i in range(5)])  # the same keys from every worker: upserts


def test_round_trip_concurrent_writers_gc_export(server):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(server.url, w)) for w in range(1, 4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with open_store(server.url) as store:
        wanted = [key(w * 1000 + i) for w in range(1, 4) for i in range(100)] + [key(i) for i in range(5)]
        found = store.get_many(wanted)
        assert len(found) == 305 and json.loads(found[key(2050)].payload) == {"i": 2050}
        assert store.get(key(2050, engine="e2")) is None
        assert store.stats()["entries"] == 305
        store.put([entry(9, engine="old")])
        assert store.gc(dt.timedelta(days=1), engine="e1") == 1
        out = io.StringIO()
        assert store.export(out) == 305


def test_unreachable_server_is_one_line(tmp_path):
    with pytest.raises(StoreError) as err:
        open_store(f"postgresql://scanner:secret@127.0.0.1:{free_port()}/postgres")
    assert "\n" not in str(err.value) and "secret" not in str(err.value)
