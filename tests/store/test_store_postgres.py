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


def test_file_digests_match_only_an_unchanged_identity_on_both_backends(server, tmp_path):
    from modelshield.scanner.store.keys import FileId

    a = FileId("/data/model.pkl", 2049, 2**40 + 7, 123, 1_700_000_000_123_456_789, 1_700_000_000_987_654_321)
    b = FileId("/data/config.json", 2049, 12, 9, 1, 2)
    for spec in (server.url, str(tmp_path / "s.sqlite")):
        with open_store(spec) as store:
            store.remember_digests("h1", [(a, "aa" * 32), (b, "bb" * 32)])
            assert store.known_digests("h1", [a, b]) == {a: "aa" * 32, b: "bb" * 32}
            assert store.known_digests("h2", [a]) == {}  # another machine's paths are not ours
            assert store.known_digests("h1", [a._replace(ctime_ns=a.ctime_ns + 1)]) == {}  # written since
            assert store.known_digests("h1", [b._replace(ino=13)]) == {}  # replaced by another file
            store.remember_digests("h1", [(a._replace(size=124), "cc" * 32)])  # the path's new identity
            assert store.known_digests("h1", [a]) == {}
            assert store.stats()["file_digests"] == 2
