"""Scanning an existing Hugging Face cache folder, offline: provenance, symlinks and integrity."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from helpers.cli import scan_json_process
from hub_repos import all_repos
from hub_server import HubServer, git_blob_id
from test_hub_remote import hub_env


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An HF cache filled by the real client (through modelshield) from the test Hub: (home, commit)."""
    home = tmp_path_factory.mktemp("hfhome")
    with HubServer() as hub:
        for repo in all_repos():
            hub.add_repo(repo)
        code, report = scan_json_process("hf://org/benign", env=hub_env(hub, home))
        assert report["targets"][0]["error"] is None
        commit = hub.repos[("model", "org/benign")].commit
    return home, commit


def copy_repo(cache, tmp_path):
    home, commit = cache
    dest = tmp_path / "models--org--benign"
    shutil.copytree(home / "hub" / "models--org--benign", dest, symlinks=True)
    return dest, commit


def offline_env(tmp_path):
    return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "none"), "HF_ENDPOINT": "http://127.0.0.1:9"}


def integrity(target: dict) -> dict[str, list[str]]:
    return {a["path"]: [f["rule_id"] for f in a["findings"] if f["rule_id"].startswith(("MS-HUB", "MS-GEN-004"))]
            for a in target["artefacts"]}


@pytest.mark.parametrize("which", ["repo", "snapshot"])
def test_cache_folder_provenance_and_verification(cache, tmp_path, which):
    home, commit = cache
    repo_dir = home / "hub" / "models--org--benign"
    target_path = repo_dir if which == "repo" else repo_dir / "snapshots" / commit
    code, report = scan_json_process(str(target_path), env=offline_env(tmp_path))
    target = report["targets"][0]
    assert target["kind"] == "hf-cache" and target["error"] is None
    prov = target["provenance"]
    assert prov["source"] == "huggingface" and prov["repo_id"] == "org/benign" and prov["repo_type"] == "model"
    assert prov["commit"] == commit and prov["revision"] == "main"
    assert prov["card_data"] is None and prov["endpoint"] is None  # the cache does not tell
    assert target["root"] == str(repo_dir / "snapshots" / commit)
    assert {f["path"]: f["verified"] for f in prov["files"]} == {
        "README.md": "match", "config.json": "match", "model.safetensors": "match"}
    assert {a["path"] for a in target["artefacts"]} == {"README.md", "config.json", "model.safetensors"}
    assert integrity(target) == {"README.md": [], "config.json": [], "model.safetensors": []}


def test_tampered_blob_in_cache_is_critical(cache, tmp_path):
    repo_dir, commit = copy_repo(cache, tmp_path)
    blobs = {p.name: p for p in (repo_dir / "blobs").iterdir()}
    big = next(p for n, p in blobs.items() if len(n) == 64)  # the LFS blob is named by its sha256
    data = bytearray(big.read_bytes())
    data[-1] ^= 1
    big.write_bytes(bytes(data))
    small = os.path.realpath(repo_dir / "snapshots" / commit / "config.json")
    with open(small, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(b" " if first != b" " else b"\t")
    code, report = scan_json_process(str(repo_dir), env=offline_env(tmp_path))
    target = report["targets"][0]
    found = integrity(target)
    assert found["model.safetensors"] == ["MS-HUB-001"] and found["config.json"] == ["MS-HUB-001"]
    assert found["README.md"] == []
    sev = {f["rule_id"]: f["severity"] for a in target["artefacts"] for f in a["findings"]}
    assert sev["MS-HUB-001"] == "critical"
    fix = next(f["recommendation"] for a in target["artefacts"] for f in a["findings"] if f["rule_id"] == "MS-HUB-001")
    assert "`hf cache rm model/" in fix or "`hf cache delete`" in fix  # the installed client's command
    assert "huggingface-cli" not in fix
    assert target["verdict"] == "unsafe" and code == 1


def test_link_leaving_the_repo_folder_is_not_followed(cache, tmp_path):
    repo_dir, commit = copy_repo(cache, tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not scanned")
    os.symlink(outside, repo_dir / "snapshots" / commit / "extra.bin")
    code, report = scan_json_process(str(repo_dir), env=offline_env(tmp_path))
    target = report["targets"][0]
    extra = next(a for a in target["artefacts"] if a["path"] == "extra.bin")
    assert extra["status"] == "skipped" and [f["rule_id"] for f in extra["findings"]] == ["MS-GEN-004"]
    assert code == 1


def test_hand_built_cache_with_tree_listing(tmp_path):
    """A 2.x-style cache: trees/<commit>.json is the published listing; extras and gaps are reported."""
    commit = "a" * 40
    repo_dir = tmp_path / "datasets--org--set"
    snap = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True)
    (snap / "data").mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "v2").write_text(commit)
    csv = b"a,b\n1,2\n"
    parquet_like = b"PAR1" + b"\0" * 60 + b"PAR1"
    lfs = hashlib.sha256(parquet_like).hexdigest()
    (repo_dir / "blobs" / git_blob_id(csv)).write_bytes(csv)
    (repo_dir / "blobs" / lfs).write_bytes(parquet_like)
    os.symlink(f"../../../blobs/{git_blob_id(csv)}", snap / "data" / "a.csv")
    os.symlink(f"../../blobs/{lfs}", snap / "train.bin")
    (snap / "copied.txt").write_bytes(b"copied, not a link\n")  # listed: verified through the listing
    (snap / "added.txt").write_bytes(b"added locally\n")  # not listed: MS-HUB-006
    listing = {"format_version": 1, "files": {
        "data/a.csv": {"size": len(csv), "blob_id": git_blob_id(csv)},
        "train.bin": {"size": len(parquet_like), "blob_id": "0" * 40, "lfs_sha256": lfs,
                      "lfs_size": len(parquet_like)},
        "copied.txt": {"size": 19, "blob_id": git_blob_id(b"copied, not a link\n")},
        "missing.bin": {"size": 10, "blob_id": "1" * 40, "lfs_sha256": "2" * 64, "lfs_size": 10}}}
    (repo_dir / "trees").mkdir()
    (repo_dir / "trees" / f"{commit}.json").write_text(json.dumps(listing))
    code, report = scan_json_process(str(repo_dir), env=offline_env(tmp_path))
    target = report["targets"][0]
    prov = target["provenance"]
    assert prov["repo_id"] == "org/set" and prov["repo_type"] == "dataset" and prov["revision"] == "v2"
    verified = {f["path"]: f["verified"] for f in prov["files"]}
    assert verified == {"data/a.csv": "match", "train.bin": "match", "copied.txt": "match",
                        "added.txt": "unverifiable", "missing.bin": "not-downloaded"}
    found = integrity(target)
    assert found["added.txt"] == ["MS-HUB-003", "MS-HUB-006"]
    assert found["missing.bin"] == ["MS-HUB-007"]
    assert found["data/a.csv"] == [] and found["train.bin"] == []
    assert target["verdict"] != "clean"  # a file not from the Hub makes the folder inconclusive


def test_not_a_cache_folder_goes_to_the_local_walker(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("hi")
    code, report = scan_json_process(str(tmp_path / "plain"))
    assert report["targets"][0]["kind"] == "local"
