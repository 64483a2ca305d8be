"""`--executor ray` on a real local Ray cluster started here: the same verdicts and findings as the
local scan, per-node throughput, and a failed task reported inconclusive (issue 18)."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is the `ray` extra (a test dependency)")

from ray_cluster import Cluster  # noqa: E402

EVIL = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    c.start()
    yield c
    c.stop()


def targets(root: Path) -> Path:
    for r in range(3):
        repo = root / f"repo{r}"
        repo.mkdir(parents=True)
        (repo / "rows.pkl").write_bytes(pickle.dumps([{"id": i, "r": r} for i in range(200 * (r + 1))], protocol=4))
        (repo / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8 + r}))
        if r == 1:
            (repo / "pytorch_model.bin").write_bytes(EVIL)
            (repo / "broken.pkl").write_bytes(pickle.dumps(list(range(50)))[:-7])
    listing = root / "targets.txt"
    listing.write_text("# the registry\n" + "\n".join(str(root / f"repo{r}") for r in range(3)) + "\n")
    return listing


def scan(listing: Path, env: dict[str, str], *extra: str) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", "--from", str(listing), "--format", "json",
                           "--no-store", *extra], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def outcome(report: dict) -> list:
    return sorted((t["target"], a["path"], a["verdict"], a["sha256"],
                   sorted((f["rule_id"], f["location"].get("offset")) for f in a["findings"]))
                  for t in report["targets"] for a in t["artefacts"])


def test_ray_gives_the_local_verdicts_and_findings(cluster, tmp_path):
    listing = targets(tmp_path)
    code_local, local, _ = scan(listing, cluster.env, "--jobs", "1")
    code_ray, remote, err = scan(listing, cluster.env, "--executor", "ray")
    assert code_local == code_ray == 1
    assert outcome(remote) == outcome(local)
    assert "ray node" in err and "files/s" in err  # per-node throughput


def test_unreachable_cluster_is_exit_2_with_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**Cluster().env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", str(targets(tmp_path).parent / "repo0"),
                           "--executor", "ray", "--no-store"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"modelshield: error: Ray cluster 127.0.0.1:{port}: Connection refused"]


def _task_processes() -> set[int]:
    """Ray worker processes running our task now (Ray titles them `ray::<function>`)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(b"ray::_analyse_batch"):
                        pids.add(int(entry))
            except OSError:
                continue
    return pids


def test_a_task_lost_on_every_try_is_retried_then_inconclusive_never_dropped(cluster, tmp_path):
    """The Ray worker running the task is SIGKILLed on each try (a lost worker, as on a lost node):
    Ray runs it again twice, then every file of the batch is inconclusive (MS-GEN-006), exit 2."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "rows.pkl").write_bytes(pickle.dumps([{"id": i, "name": f"n{i}"} for i in range(400_000)], protocol=4))
    (repo / "config.json").write_text(json.dumps({"model_type": "bert"}))
    killed: list[int] = []
    done = threading.Event()

    def killer() -> None:
        while not done.is_set() and len(killed) < 3:
            for pid in _task_processes() - set(killed):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", str(repo), "--format", "json",
                               "--no-store", "--executor", "ray"], capture_output=True, text=True, env=cluster.env,
                              timeout=600)
    finally:
        done.set()
        thread.join(5)
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr, proc.stderr[-3000:]
    assert len(killed) == 3, killed  # the first try and both retries each ran (in a new process)
    report = json.loads(proc.stdout)
    arts = {a["path"]: a for t in report["targets"] for a in t["artefacts"]}
    assert set(arts) == {"rows.pkl", "config.json"}  # never dropped
    for artefact in arts.values():
        assert artefact["verdict"] == "inconclusive", artefact
        [finding] = artefact["findings"]
        assert finding["rule_id"] == "MS-GEN-006" and "after 3 tries" in finding["message"], finding
    assert proc.returncode == 2
