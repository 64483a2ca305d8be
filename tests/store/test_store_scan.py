"""The result store in scans, end to end from the CLI and the API (issue 18)."""
from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


from modelshield import Policy, scan
from modelshield.scanner.budgets import Budgets
from modelshield.scanner.store import keys as store_keys
from modelshield.scanner.store import open_store

EVIL = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def repo(path: Path, rows: int = 300) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "features.pkl").write_bytes(pickle.dumps([{"id": i, "name": f"n{i}"} for i in range(rows)], protocol=4))
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (path / "evil.pkl").write_bytes(EVIL)
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, "MODELSHIELD_STORE": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelshield", *args], capture_output=True, text=True, env=full,
                          timeout=300)


def files(report: dict) -> dict[str, tuple]:
    return {a["path"]: (a["verdict"], a["sha256"], sorted((f["rule_id"], f["location"]["path"]) for f in a["findings"]),
                        a.get("from_store") is not None)
            for t in report["targets"] for a in t["artefacts"]}


def test_second_scan_reads_the_store_with_the_same_findings(tmp_path):
    target = repo(tmp_path / "r")
    store = str(tmp_path / "s.sqlite")
    first = cli("scan", str(target), "--format", "json", "--store", store)
    second = cli("scan", str(target), "--format", "json", "--store", store)
    assert first.returncode == second.returncode == 1, first.stderr + second.stderr
    a, b = files(json.loads(first.stdout)), files(json.loads(second.stdout))
    assert {k: v[:3] for k, v in a.items()} == {k: v[:3] for k, v in b.items()}
    assert not any(v[3] for v in a.values()) and all(v[3] for v in b.values())
    assert b["evil.pkl"][0] == "unsafe"  # a stored threat stays a threat


def test_a_changed_file_alone_is_analysed_again(tmp_path):
    target = repo(tmp_path / "r")
    store = str(tmp_path / "s.sqlite")
    assert cli("scan", str(target), "--store", store, "-q").returncode == 1
    (target / "features.pkl").write_bytes(pickle.dumps(list(range(50)), protocol=4))
    again = files(json.loads(cli("scan", str(target), "--format", "json", "--store", store).stdout))
    assert {k for k, v in again.items() if not v[3]} == {"features.pkl"}


def test_no_store_and_environment_off(tmp_path):
    target = repo(tmp_path / "r")
    store = tmp_path / "s.sqlite"
    cli("scan", str(target), "--store", str(store), "--no-store", "-q")
    assert not store.exists()
    cli("scan", str(target), "-q", env={"MODELSHIELD_STORE": "off", "MODELSHIELD_CACHE": str(tmp_path / "c")})
    assert not (tmp_path / "c").exists()


def test_default_store_lives_in_the_cache_dir(tmp_path):
    target = repo(tmp_path / "r")
    env = {"MODELSHIELD_CACHE": str(tmp_path / "cache")}
    cli("scan", str(target), "-q", env=env)
    second = json.loads(cli("scan", str(target), "--format", "json", env=env).stdout)
    assert (tmp_path / "cache" / "results.sqlite").exists()
    assert all(v[3] for v in files(second).values())


def test_a_corrupt_store_is_said_once_and_the_scan_goes_on(tmp_path):
    target = repo(tmp_path / "r")
    bad = tmp_path / "s.sqlite"
    bad.write_bytes(b"garbage" * 500)
    proc = cli("scan", str(target), "--format", "json", "--store", str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("result store") == 1 and "corrupt" in proc.stderr
    assert files(json.loads(proc.stdout))["evil.pkl"][0] == "unsafe"


def test_unreachable_postgres_is_exit_2_with_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("scan", str(repo(tmp_path / "r")), "--store", f"postgresql://scanner:pw@127.0.0.1:{port}/x")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "pw" not in proc.stderr


def _api(target: Path, store_path: Path, policy: Policy | None = None) -> dict[str, bool]:
    with open_store(str(store_path)) as store:
        report = scan(str(target), policy=policy, store=store, workers=0)
    return {a.path: a.from_store is not None for a in report.artefacts}


def test_policy_and_engine_changes_invalidate_exactly(tmp_path, monkeypatch):
    target = repo(tmp_path / "r")
    path = tmp_path / "s.sqlite"
    assert not any(_api(target, path).values())
    assert all(_api(target, path).values())
    looser = Policy.default()
    looser.fail_on = looser.fail_on.__class__(0)  # acts on the report only: entries still valid
    assert all(_api(target, path, looser).values())
    tighter = Policy.default()
    tighter.budgets = Budgets(max_opcodes=100)
    assert not any(_api(target, path, tighter).values())
    monkeypatch.setattr(store_keys, "tree_digest", lambda root: "a changed rule table")
    store_keys.engine_digest.cache_clear()
    try:
        assert not any(_api(target, path).values())
    finally:
        store_keys.engine_digest.cache_clear()


def test_same_bytes_under_another_path_are_not_reused(tmp_path):
    target = repo(tmp_path / "r")
    path = tmp_path / "s.sqlite"
    _api(target, path)
    other = tmp_path / "o"
    other.mkdir()
    (other / "other.json").write_bytes((target / "config.json").read_bytes())
    (other / "renamed.pkl").write_bytes(EVIL)
    got = _api(other, path)
    assert got == {"other.json": False, "renamed.pkl": False}  # the path is part of the key
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "evil.pkl").write_bytes(EVIL)  # same bytes, same path in another target: reused
    assert _api(twin, path) == {"evil.pkl": True}


def test_a_damaged_entry_is_a_miss_not_a_result(tmp_path):
    target = repo(tmp_path / "r")
    path = tmp_path / "s.sqlite"
    _api(target, path)
    import zlib

    with sqlite3.connect(path) as db:
        db.execute("UPDATE results SET payload = ?", (zlib.compress(b"{not json"),))
    assert not any(_api(target, path).values())


def test_suppressions_apply_to_the_path_of_the_hit(tmp_path):
    first, second = repo(tmp_path / "a"), repo(tmp_path / "b")
    path = tmp_path / "s.sqlite"
    _api(first, path)
    policy = Policy.from_mapping({"suppress": [{"rule": "MS-PKL-*", "path": "evil.pkl", "reason": "test fixture",
                                                "expires": "2099-01-01"}]})
    with open_store(str(path)) as store:
        report = scan(str(second), policy=policy, store=store, workers=0)
    evil = next(a for a in report.artefacts if a.path == "evil.pkl")
    assert evil.from_store is not None and evil.findings and all(f.suppressed for f in evil.findings
                                                                 if f.rule_id.startswith("MS-PKL"))


def test_unchanged_files_are_not_read_again_and_a_same_size_rewrite_is(tmp_path):
    """The second pass finds each file's SHA-256 by its stat identity (no read); a file rewritten in
    place with a threat of the same size and its old mtime put back is read and analysed again
    (the change time moved). A file changed within QUIET_NS of its hashing is never recorded."""
    from modelshield.scanner import reuse

    target = tmp_path / "r"
    target.mkdir()
    benign = b"\x80\x02X" + (len(EVIL) - 8).to_bytes(4, "little") + b"a" * (len(EVIL) - 8) + b"."
    assert len(benign) == len(EVIL)
    (target / "weights.pkl").write_bytes(benign)
    (target / "config.json").write_text(json.dumps({"model_type": "bert"}))
    path = str(tmp_path / "s.sqlite")

    def run() -> dict:
        with open_store(path) as store:
            report = scan(str(target), store=store, workers=1)
        return {a.path: a for a in report.artefacts}

    def recorded() -> int:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM file_digests").fetchone()[0]

    first = run()
    assert not any(a.from_store for a in first.values()) and recorded() == 0  # just written: not quiet
    time.sleep(reuse.QUIET_NS / 1e9 + 0.2)
    second = run()
    assert all(a.from_store["verified"] == reuse.READ for a in second.values()) and recorded() == 2
    third = run()
    assert all(a.from_store["verified"] == reuse.UNREAD for a in third.values())
    assert third["weights.pkl"].verdict.value == "clean"
    st = os.stat(target / "weights.pkl")
    with open(target / "weights.pkl", "r+b") as f:  # same inode, same size
        f.write(EVIL)
    os.utime(target / "weights.pkl", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(target / "weights.pkl").st_mtime_ns == st.st_mtime_ns
    fourth = run()
    assert fourth["weights.pkl"].from_store is None and fourth["weights.pkl"].verdict.value == "unsafe"
    assert fourth["config.json"].from_store["verified"] == reuse.UNREAD
