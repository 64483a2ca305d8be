"""hf:// targets through the real huggingface_hub client against a Hub-compatible server on 127.0.0.1."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers.cli import run_cli, scan_json_process
from hub_repos import GRANTED_TOKEN, MARKER_FILE, all_repos
from hub_server import HubServer

PROVENANCE_KEYS = {"source", "endpoint", "repo_id", "repo_type", "revision", "commit", "author", "private", "gated",
                   "disabled", "pipeline_tag", "library_name", "tags", "card_data", "config", "created_at",
                   "last_modified", "security_status", "safetensors_total", "url", "files"}
FILE_KEYS = {"path", "size", "blob_id", "lfs_sha256", "downloaded", "hub_scan", "verified"}


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        for repo in all_repos():
            server.add_repo(repo)
        yield server


def hub_env(hub: HubServer, home, **extra: str) -> dict[str, str]:
    """An isolated Hub client environment: own HF_HOME, no token, online unless told."""
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
           "HF_TOKEN": "", "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.update(extra)
    return env


def scan_hub(hub: HubServer, home, *args: str, **extra: str) -> tuple[int, dict, dict]:
    code, report = scan_json_process(*args, env=hub_env(hub, home, **extra))
    return code, report, report["targets"][0]


def active(target: dict, path: str | None = None) -> list[tuple[str, str]]:
    """(rule_id, severity) of a target's findings, of one artefact or the target itself."""
    if path is None:
        return [(f["rule_id"], f["severity"]) for f in target["findings"]]
    art = next(a for a in target["artefacts"] if a["path"] == path)
    return [(f["rule_id"], f["severity"]) for f in art["findings"] if not f.get("suppressed")]


def hub_findings(target: dict) -> list[tuple[str, str, str]]:
    """Source/integrity findings above info (format findings belong to the format modules)."""
    return [(a["path"], f["rule_id"], f["severity"]) for a in target["artefacts"] for f in a["findings"]
            if f["rule_id"].startswith(("MS-HUB", "MS-GEN-007", "MS-GEN-004")) and f["severity"] != "info"]


def test_benign_repo_resolved_to_commit_verified_and_clean(hub, tmp_path):
    code, report, target = scan_hub(hub, tmp_path, "hf://org/benign")
    repo = hub.repos[("model", "org/benign")]
    assert target["error"] is None
    assert target["kind"] == "hf"
    prov = target["provenance"]
    assert set(prov) >= PROVENANCE_KEYS
    assert prov["commit"] == repo.commit and re.fullmatch(r"[0-9a-f]{40}", prov["commit"])
    assert prov["revision"] == "main" and prov["repo_type"] == "model" and prov["repo_id"] == "org/benign"
    assert prov["url"] == f"{hub.endpoint}/org/benign/tree/{repo.commit}"
    assert prov["card_data"]["license"] == "apache-2.0" and prov["card_data"]["base_model"] == "org/base"
    assert prov["pipeline_tag"] == "feature-extraction" and prov["library_name"] == "transformers"
    assert prov["gated"] is False and prov["private"] is False
    files = {f["path"]: f for f in prov["files"]}
    assert set(files) == {"README.md", "config.json", "model.safetensors"}
    for f in files.values():
        assert set(f) == FILE_KEYS
        assert f["downloaded"] is True and f["verified"] == "match", f
    assert files["model.safetensors"]["lfs_sha256"] and files["config.json"]["lfs_sha256"] is None
    arts = {a["path"]: a for a in target["artefacts"]}
    assert arts["model.safetensors"]["sha256"] == files["model.safetensors"]["lfs_sha256"]
    assert target["root"].endswith(f"models--org--benign/snapshots/{repo.commit}")
    assert not hub_findings(target)
    # benign: recognised by the safetensors module, nothing above info, exit 0
    assert arts["model.safetensors"]["format"] == "safetensors"
    assert all(f["severity"] == "info" for a in target["artefacts"] for f in a["findings"]), target["artefacts"]
    assert target["verdict"] == "clean" and code == 0


@pytest.mark.parametrize("rev", ["v1.0", "COMMIT"])
def test_pinned_revision(hub, tmp_path, rev):
    repo = hub.repos[("model", "org/benign")]
    rev = repo.commit if rev == "COMMIT" else rev
    code, _, target = scan_hub(hub, tmp_path, f"hf://org/benign@{rev}", "--include", "*.json")
    assert code == 0, target
    assert target["provenance"]["revision"] == rev and target["provenance"]["commit"] == repo.commit


def test_include_filter_lists_the_rest_as_not_scanned(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/benign", "--include", "*.json", "--include", "*.md")
    files = {f["path"]: f for f in target["provenance"]["files"]}
    assert files["model.safetensors"]["downloaded"] is False
    assert files["model.safetensors"]["verified"] == "not-downloaded"
    assert active(target, "model.safetensors") == [("MS-HUB-007", "info")]
    skipped = next(a for a in target["artefacts"] if a["path"] == "model.safetensors")
    assert skipped["status"] == "skipped"
    assert not (tmp_path / "hub" / "models--org--benign" / "snapshots" / target["provenance"]["commit"]
                / "model.safetensors").exists()
    assert code == 0


def test_size_cap_leaves_big_files_unscanned_and_inconclusive(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/benign", "--max-download", "300")
    assert ("MS-GEN-007", "medium") in active(target, "model.safetensors")
    assert {f["path"]: f["downloaded"] for f in target["provenance"]["files"]} == {
        "README.md": True, "config.json": True, "model.safetensors": False}
    assert target["verdict"] == "inconclusive" and code == 2


def test_malicious_pickle_blocked_and_hub_scan_shown_beside(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/malicious")
    files = {f["path"]: f for f in target["provenance"]["files"]}
    assert files["pytorch_model.bin"]["verified"] == "match"
    assert files["pytorch_model.bin"]["hub_scan"]["status"] == "unsafe"
    rules = dict(active(target, "pytorch_model.bin"))
    assert rules.get("MS-HUB-004") == "medium"  # the Hub's opinion, shown as info beside ours
    art = next(a for a in target["artefacts"] if a["path"] == "pytorch_model.bin")
    assert art["verdict"] != "clean" and code != 0
    assert art["format"] == "pickle"
    # our own verdict must not come from the Hub's: an unsafe one needs a threat finding of ours
    assert art["verdict"] == "unsafe" and code == 1
    assert any(f["kind"] == "threat" and not f["rule_id"].startswith("MS-HUB") for f in art["findings"])


def test_malicious_fixture_really_executes_its_marker(hub, tmp_path):
    """Loader proof (subprocess): the downloaded bytes run `echo pwned > marker` under pickle.load."""
    scan_hub(hub, tmp_path, "hf://org/malicious", "--include", "*.bin")
    repo = hub.repos[("model", "org/malicious")]
    path = tmp_path / "hub" / "models--org--malicious" / "snapshots" / repo.commit / "pytorch_model.bin"
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"],
                   cwd=work, check=True, timeout=60, capture_output=True)
    assert (work / MARKER_FILE).read_text().strip() == "pwned"


def test_tampered_same_size_file_is_critical(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/tampered")
    files = {f["path"]: f for f in target["provenance"]["files"]}
    assert files["model.safetensors"]["verified"] == "mismatch"
    assert files["config.json"]["verified"] == "mismatch"  # small file: git blob id recomputed
    assert files["README.md"]["verified"] == "match"
    assert ("MS-HUB-001", "critical") in active(target, "model.safetensors")
    assert ("MS-HUB-001", "critical") in active(target, "config.json")
    finding = next(f for a in target["artefacts"] if a["path"] == "model.safetensors" for f in a["findings"]
                   if f["rule_id"] == "MS-HUB-001")
    assert finding["evidence"]["expected"] == files["model.safetensors"]["lfs_sha256"]
    assert target["verdict"] == "unsafe" and code == 1


def test_gated_repo_friendly_error_then_token(hub, tmp_path):
    proc = run_cli("scan", "hf://org/gated", env=hub_env(hub, tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "error" in ln)
    assert "gated" in line and "HF_TOKEN" in line and "accept" in line
    _, _, target = scan_hub(hub, tmp_path / "t", "hf://org/gated", HF_TOKEN=GRANTED_TOKEN)
    assert target["error"] is None and target["provenance"]["gated"] == "manual"
    assert not hub_findings(target)
    assert all(f["verified"] == "match" for f in target["provenance"]["files"])


@pytest.mark.parametrize("target,needle", [
    ("hf://org/nothere", "not found"),
    ("hf://org/benign@nope", "revision 'nope' not found"),
    ("hf://datasets/org/benign", "dataset repo org/benign not found"),
    ("hf://", "expected hf://org/name"),
])
def test_errors_are_one_line_exit_2(hub, tmp_path, target, needle):
    proc = run_cli("scan", target, env=hub_env(hub, tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("modelshield: error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


def test_unreachable_endpoint_is_one_line(tmp_path):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_TOKEN": "", "HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    proc = run_cli("scan", "hf://org/benign", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot connect" in proc.stderr or "timed out" in proc.stderr, proc.stderr


def test_offline_uses_the_cache_and_fails_cleanly_without_it(hub, tmp_path):
    _, _, online = scan_hub(hub, tmp_path, "hf://org/benign")
    assert online["error"] is None
    _, _, target = scan_hub(hub, tmp_path, "hf://org/benign", HF_HUB_OFFLINE="1",
                               HF_ENDPOINT="http://127.0.0.1:9")
    assert target["kind"] == "hf" and target["provenance"]["commit"] == online["provenance"]["commit"]
    assert {f["path"]: f["verified"] for f in target["provenance"]["files"]} == {
        "README.md": "match", "config.json": "match", "model.safetensors": "match"}
    assert target["error"] is None and not hub_findings(target)
    proc = run_cli("scan", "hf://org/malicious", env=hub_env(hub, tmp_path, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "offline" in proc.stderr and "not in the HF cache" in proc.stderr


def test_dataset_repo_inventory_and_loading_script(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://datasets/org/data")
    repo = hub.repos[("dataset", "org/data")]
    prov = target["provenance"]
    assert prov["repo_type"] == "dataset" and prov["commit"] == repo.commit
    assert prov["url"] == f"{hub.endpoint}/datasets/org/data/tree/{repo.commit}"
    assert prov["security_status"] is None  # datasets: no security status from the API
    files = {f["path"]: f for f in prov["files"]}
    assert set(files) == {"README.md", "data.py", "data/train.parquet", "data/test.csv"}
    assert all(f["verified"] == "match" for f in files.values())
    arts = {a["path"]: a for a in target["artefacts"]}
    assert arts["data/train.parquet"]["sha256"] == files["data/train.parquet"]["lfs_sha256"]
    assert all(arts[p]["sha256"] for p in files)
    assert arts["data.py"]["status"] != "skipped"
    assert target["root"].endswith(f"datasets--org--data/snapshots/{repo.commit}")
    # the loading script runs on load_dataset: flagged, the data files beside it stay clean
    assert {f["rule_id"] for f in arts["data.py"]["findings"]} >= {"MS-PY-010", "MS-PY-020"}
    assert all(arts[p]["verdict"] == "clean" for p in files if p != "data.py")
    assert target["verdict"] == "unsafe" and code == 1


def test_custom_code_repo_is_reported(hub, tmp_path):
    _, _, target = scan_hub(hub, tmp_path, "hf://org/custom")
    assert ("MS-HUB-005", "info") in active(target)
    finding = next(f for f in target["findings"] if f["rule_id"] == "MS-HUB-005")
    assert "modeling_x.XModel" in finding["message"]
    assert target["provenance"]["config"]["auto_map"] == {"AutoModel": "modeling_x.XModel"}
    assert "custom_code" in target["provenance"]["tags"]
