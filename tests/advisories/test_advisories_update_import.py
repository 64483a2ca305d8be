"""`advisories import` (an OSV dump zip, offline) and `advisories update` (a real OSV-compatible
HTTP server on 127.0.0.1: paging, 5xx, timeouts, malformed JSON, offline)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from advisories_helpers import FakeOsv, build_dump, closed_port_url, invoke, osv_record
from modelshield.advisories import index
from modelshield.advisories.database import CombinedDatabase, open_database
from modelshield.advisories.dump import import_dump
from modelshield.advisories.errors import InputError
from modelshield.advisories.osv_api import update
from modelshield.advisories.errors import UpdateError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MODELSHIELD_CACHE", str(folder))
    return folder


def test_import_keeps_ml_packages_only_and_dates_the_index(tmp_path, cache):
    dump = build_dump(tmp_path / "all.zip", [
        osv_record("PYSEC-2099-1", "keras", "0", "3.99.0", modified="2026-11-20T00:00:00Z"),
        osv_record("PYSEC-2099-2", "flask", "0", "9.0", modified="2026-11-25T10:00:00Z"),
        osv_record("GHSA-aaaa-bbbb-cccc", "Llama_CPP_Python", "0", "0.3.0"),
    ], extra={"README.txt": b"not a record", "broken.json": b"{oops"})
    result = import_dump(dump)
    assert (result.kept, result.read) == (2, 3)
    assert result.malformed and "broken.json" in result.malformed[0]
    assert result.date.isoformat().startswith("2026-11-30")  # the newest `modified` in the dump
    assert result.path == cache / "advisories.sqlite"
    db = open_database()
    assert db.info().kind == "imported" and db.info().records == 2
    assert db.get("PYSEC-2099-1") is not None and db.get("PYSEC-2099-2") is None
    assert [a.id for a in db.local.for_package("llama-cpp-python")] == ["GHSA-aaaa-bbbb-cccc"]
    with sqlite3.connect(result.path) as con:
        meta = dict(con.execute("SELECT key, value FROM meta"))
    assert meta["kind"] == "imported" and meta["source"].endswith("all.zip")


def test_import_rejects_what_is_not_a_dump_and_keeps_the_old_index(tmp_path, cache):
    import_dump(build_dump(tmp_path / "good.zip", [osv_record("PYSEC-2099-1", "keras", "0", "3.99.0")]))
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="cannot read"):
        import_dump(tmp_path / "not.zip")
    with pytest.raises(InputError, match="no OSV record"):
        import_dump(build_dump(tmp_path / "empty.zip", [], extra={"x.json": b"[1, 2]"}))
    assert open_database().get("PYSEC-2099-1") is not None


def test_import_cli_one_line_errors(tmp_path, cache):
    proc = invoke("advisories", "import", str(tmp_path / "missing.zip"), env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    dump = build_dump(tmp_path / "all.zip", [osv_record("PYSEC-2099-1", "keras", "0", "3.99.0")])
    proc = invoke("advisories", "import", str(dump), env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 ML-relevant advisories" in proc.stdout
    proc = invoke("advisories", "list", "--package", "keras", "--format", "json", env={"MODELSHIELD_CACHE": str(cache)})
    data = json.loads(proc.stdout)
    assert data["database"]["kind"] == "imported"
    assert "PYSEC-2099-1" in {r["id"] for r in data["advisories"]}
    assert "GHSA-48g7-3x6r-xfhp" in {r["id"] for r in data["advisories"]}  # shipped records stay in use


def test_update_follows_pages_and_reuses_unchanged_records(cache):
    records = [osv_record(f"GHSA-test-0000-000{i}", "keras", "0", f"3.{i}.0") for i in range(5)]
    records.append(osv_record("GHSA-test-torch-0001", "torch", "0", "9.0"))
    with FakeOsv(records, page_size=2) as api:
        result = update(api.url, packages=["keras", "torch", "onnx"])
        assert result.records == 6 and result.fetched == 6
        tokens = [q.get("page_token") for call in api.batch_calls for q in call["queries"]]
        assert tokens.count(None) == 3 and "2" in tokens and "4" in tokens
        again = update(api.url, packages=["keras", "torch", "onnx"])
        assert (again.fetched, again.reused) == (0, 6)
        api.records["GHSA-test-torch-0001"]["modified"] = "2026-12-01T00:00:00Z"
        third = update(api.url, packages=["keras", "torch", "onnx"])
        assert (third.fetched, third.reused) == (1, 5)
    db = open_database()
    assert db.info().kind == "updated" and db.info().source == api.url
    assert db.get("GHSA-test-0000-0003") is not None


def test_update_retries_one_5xx_then_fails_cleanly_on_persistent_ones(cache):
    with FakeOsv([osv_record("GHSA-test-0000-0001", "keras", "0", "3.1.0")]) as api:
        api.fail_batch = 1
        assert update(api.url, packages=["keras"]).records == 1
        api.always_fail = True
        with pytest.raises(UpdateError, match="HTTP 503"):
            update(api.url, packages=["keras"])
    assert open_database().get("GHSA-test-0000-0001") is not None  # the previous index stays


def test_update_malformed_json_and_timeouts(cache):
    with FakeOsv([osv_record("GHSA-test-0000-0001", "keras", "0", "3.1.0")]) as api:
        api.malformed = True
        with pytest.raises(UpdateError, match="not JSON"):
            update(api.url, packages=["keras"])
        api.malformed = False
        api.delay = 1.5
        with pytest.raises(UpdateError, match="timed out"):
            update(api.url, packages=["keras"], timeout=(1.0, 0.5))
    assert not (cache / index.FILE_NAME).exists()


def test_update_offline_is_exit_2_with_one_line(cache):
    proc = invoke("advisories", "update", "--osv-url", closed_port_url(), env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot connect" in proc.stderr and "Traceback" not in proc.stderr
    assert not (cache / index.FILE_NAME).exists()


def test_update_cli_against_the_test_server(cache):
    with FakeOsv([osv_record("GHSA-test-0000-0001", "keras", "0", "3.1.0")]) as api:
        proc = invoke("advisories", "update", "--osv-url", api.url, env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert "updated: 1 advisories" in proc.stdout
    proc = invoke("advisories", "show", "GHSA-test-0000-0001", env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 0 and "updated database" in proc.stdout


def test_stale_database_warning_names_which_database(tmp_path, cache):
    import datetime as dt

    old = osv_record("PYSEC-2099-1", "keras", modified="2026-01-01T00:00:00Z")
    import_dump(build_dump(tmp_path / "old.zip", [old]))
    db = open_database()
    assert isinstance(db, CombinedDatabase)
    described = db.describe(30, now=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    assert "imported database of 2026-01-01" in described["warning"] and described["age_days"] == 59
    assert "warning" not in db.describe(30, now=dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc))


def test_hostile_dump_records_never_reach_the_terminal_raw(tmp_path, cache):

    evil = osv_record("PYSEC-2099-7", "keras", "0", "3.99.0", summary="ok\x1b[2J\x1b]0;pwned\x07 done")
    huge = b'{"id": "PYSEC-2099-8", "modified": "2026-01-01T00:00:00Z", "details": "' + b"A" * (5 * 1024 * 1024) + b'"}'
    latin = "{\"id\": \"\xe9\"}".encode("latin-1")
    dump = build_dump(tmp_path / "all.zip", [evil], extra={"huge.json": huge, "latin.json": latin})
    proc = invoke("advisories", "import", str(dump), env={"MODELSHIELD_CACHE": str(cache)})
    assert proc.returncode == 0 and "2 malformed" in proc.stderr
    proc = invoke("advisories", "show", "PYSEC-2099-7", env={"MODELSHIELD_CACHE": str(cache)})
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\\x1b[2J" in proc.stdout
    proc = invoke("advisories", "list", env={"MODELSHIELD_CACHE": str(cache)})
    assert "\x1b" not in proc.stdout
