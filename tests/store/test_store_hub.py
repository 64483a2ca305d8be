"""Hub targets and the result store: a file whose published SHA-256 has a stored analysis is not
downloaded at all (issue 18), against the Hub-compatible server on 127.0.0.1."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))

from hub_repos import benign_files, evil_pickle  # noqa: E402
from hub_server import HubServer, Repo  # noqa: E402


def scan(hub: HubServer, home: Path, store: Path) -> tuple[int, dict, str]:
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
           "HF_TOKEN": "", "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "MODELSHIELD_STORE": ""}
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", "hf://org/registry", "--format", "json",
                           "--store", str(store)], capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["targets"][0], proc.stderr


def downloads(hub: HubServer) -> set[str]:
    got = {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in hub.requests
           if method == "GET" and "/resolve/" in path}
    hub.requests.clear()
    return got


def test_a_new_revision_downloads_only_the_changed_file(tmp_path):
    files = {**benign_files(), "features.pkl": pickle.dumps([{"id": i} for i in range(200)], protocol=4),
             "pytorch_model.bin": evil_pickle()}
    store = tmp_path / "results.sqlite"
    with HubServer() as hub:
        hub.add_repo(Repo("org/registry", "model", dict(files)))
        code1, first, _ = scan(hub, tmp_path / "home1", store)
        assert downloads(hub) >= {"model.safetensors", "features.pkl", "pytorch_model.bin"}
        changed = dict(files, **{"features.pkl": pickle.dumps(list(range(300)), protocol=4)})
        hub.add_repo(Repo("org/registry", "model", changed))  # a new commit on main
        code2, second, err = scan(hub, tmp_path / "home2", store)  # a fresh HF cache: nothing local
        fetched = downloads(hub)
    lfs = {"model.safetensors", "features.pkl", "pytorch_model.bin"}
    assert fetched & lfs == {"features.pkl"}, fetched
    assert code1 == code2 == 1 and second["error"] is None
    arts = {a["path"]: a for a in second["artefacts"]}
    assert arts["pytorch_model.bin"]["verdict"] == "unsafe" and arts["pytorch_model.bin"].get("from_store")
    assert "not downloaded" in arts["model.safetensors"]["from_store"]["verified"]
    assert "from_store" not in arts["features.pkl"]
    records = {r["path"]: r for r in second["provenance"]["files"]}
    assert records["model.safetensors"]["verified"] == "store-sha256"
    assert records["model.safetensors"]["downloaded"] is False and records["model.safetensors"]["from_store"] is True
    assert records["features.pkl"]["downloaded"] is True and "from_store" not in records["features.pkl"]
    assert records["features.pkl"]["verified"] == "match"
    before = {a["path"]: sorted(f["rule_id"] for f in a["findings"]) for a in first["artefacts"]}
    after = {a["path"]: sorted(f["rule_id"] for f in a["findings"]) for a in second["artefacts"]}
    assert after["pytorch_model.bin"] == before["pytorch_model.bin"]
    assert after["model.safetensors"] == before["model.safetensors"]
