"""Hostile Hub endpoints, tampered HF caches and hostile URLs: no write outside the cache, no hang,
no unbounded download, no link followed out of the repo, never `clean` for unverified bytes.

Every server runs on 127.0.0.1; every wait is bounded (timeouts of 1-2 s, subprocess timeouts).
"""
from __future__ import annotations

import gzip
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers.cli import run_cli, scan_json_process
from hub_repos import benign_files
from hub_server import HubServer, Repo, git_blob_id
from test_hub_remote import hub_env

FAST = {"HF_HUB_DOWNLOAD_TIMEOUT": "1", "HF_HUB_ETAG_TIMEOUT": "1"}


@pytest.fixture
def hub():
    with HubServer() as server:
        server.add_repo(Repo("org/x", "model", benign_files()))
        yield server


def repo_of(hub: HubServer) -> Repo:
    return hub.repos[("model", "org/x")]


def scan(hub: HubServer, tmp_path, *args: str, timeout: float = 60, **extra: str) -> tuple[int, dict]:
    code, report = scan_json_process("hf://org/x", *args, env=hub_env(hub, tmp_path / "home", **extra), timeout=timeout)
    return code, report["targets"][0]


def rules_of(target: dict, path: str) -> list[str]:
    art = next(a for a in target["artefacts"] if a["path"] == path)
    return [f["rule_id"] for f in art["findings"]]


def written_outside_cache(tmp_path) -> list[str]:
    """Every path under tmp_path that is not the HF home (where the cache lives)."""
    home = str(tmp_path / "home")
    out = []
    for folder, dirs, names in os.walk(tmp_path):
        for name in dirs + names:
            full = os.path.join(folder, name)
            if full != home and not full.startswith(home + os.sep):
                out.append(full)
    return out


# -- hostile Hub endpoint ----------------------------------------------------------------------

def _etag_escape(tmp_path):
    def hook(path, head, status, headers, body):
        if path == "config.json":
            headers["ETag"] = f'"../../../../../../../../../../{tmp_path}/ESCAPED"'
        return status, headers, body
    return hook


def _missing_with_escaping_commit(tmp_path):
    def hook(path, head, status, headers, body):
        if path == "config.json":
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": f"{tmp_path}/NOEXIST"}, b"{}"
        return status, headers, body
    return hook


def _commit(value):
    def factory(_tmp_path):
        def hook(path, head, status, headers, body):
            if path == "config.json":
                headers["X-Repo-Commit"] = value
            return status, headers, body
        return hook
    return factory


@pytest.mark.parametrize("make_hook", [_etag_escape, _missing_with_escaping_commit, _commit("."),
                                       _commit("b" * 40), _commit("../../../../x")],
                         ids=["etag-traversal", "404-commit-traversal", "commit-dot", "other-commit",
                              "commit-traversal"])
def test_hostile_resolve_headers_are_refused_and_nothing_escapes(hub, tmp_path, make_hook):
    hub.resolve_hook = make_hook(tmp_path)
    code, target = scan(hub, tmp_path)
    assert rules_of(target, "config.json") == ["MS-HUB-008"]
    assert written_outside_cache(tmp_path) == []
    snapshot = tmp_path / "home" / "hub" / "models--org--x" / "snapshots"
    assert sorted(os.listdir(snapshot)) == [repo_of(hub).commit]  # nothing beside the pinned snapshot
    files = {f["path"]: f["verified"] for f in target["provenance"]["files"]}
    assert files == {"README.md": "match", "config.json": "not-downloaded", "model.safetensors": "match"}
    assert target["verdict"] == "unsafe" and code == 1


def test_sibling_names_that_escape_are_refused(hub, tmp_path):
    bad = ["../../evil.pkl", "/etc/passwd", "a\\..\\..\\x", "nul\x00x", "new\nline", "x" * 5000, "a//b", "./c",
           "C:/win", "a/" + "y" * 300]

    def hook(info):
        info["siblings"] += [{"rfilename": n, "size": 3, "blobId": "0" * 40} for n in bad]
        return info

    hub.info_hook = hook
    code, target = scan(hub, tmp_path)
    refused = [a for a in target["artefacts"] if a["status"] == "skipped"]
    assert len(refused) == len(bad)
    assert all([f["rule_id"] for f in a["findings"]] == ["MS-HUB-008"] for a in refused)
    assert all(len(a["path"]) <= 300 for a in refused)
    assert {f["path"] for f in target["provenance"]["files"]} == {"README.md", "config.json", "model.safetensors"}
    assert not any(p[0] == "GET" and "evil" in p[1] for p in hub.requests)  # never even requested
    assert written_outside_cache(tmp_path) == []
    assert target["verdict"] == "unsafe" and code == 1


def _cache_bytes(tmp_path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(tmp_path / "home"):
        for name in names:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def test_served_bytes_larger_than_published_are_refused_early(hub, tmp_path):
    repo_of(hub).served["model.safetensors"] = b"\0" * 3_000_000
    code, target = scan(hub, tmp_path)
    assert rules_of(target, "model.safetensors") == ["MS-HUB-008"]
    assert "published as" in target["artefacts"][-1]["findings"][0]["message"] or any(
        "published as" in f["message"] for a in target["artefacts"] for f in a["findings"])
    assert _cache_bytes(tmp_path) < 200_000  # refused on the announced length, not after 3 MB
    assert target["verdict"] == "unsafe" and code == 1


def test_unknown_size_is_held_to_the_download_cap(hub, tmp_path):
    """A sibling without a size costs nothing in the plan, but its download stops at the budget left."""
    repo_of(hub).served["model.safetensors"] = b"\0" * 3_000_000

    def hook(info):
        for s in info["siblings"]:
            if s["rfilename"] == "model.safetensors":
                del s["size"]
        return info

    published = repo_of(hub).entry("model.safetensors")

    def chunked(handler, path, head):  # no size anywhere: only the running count can stop it
        if path != "model.safetensors":
            return False
        handler.send_response(200)
        handler.send_header("X-Repo-Commit", repo_of(hub).commit)
        handler.send_header("ETag", f'"{published["oid"]}"')
        handler.send_header("X-Linked-Etag", f'"{published["lfs"]["oid"]}"')
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        if head:
            return True
        try:
            for _ in range(300):
                handler.wfile.write(b"\0" * 10_000)
        except OSError:
            pass
        handler.close_connection = True
        return True

    hub.info_hook = hook
    hub.raw_resolve = chunked
    code, target = scan(hub, tmp_path, "--max-download", "5000")
    assert rules_of(target, "model.safetensors") == ["MS-GEN-007"]
    assert _cache_bytes(tmp_path) < 300_000
    assert target["verdict"] == "inconclusive" and code == 2


def test_junk_metadata_never_crashes_and_is_not_clean(hub, tmp_path):
    def hook(info):
        for s in info["siblings"]:
            if s["rfilename"] == "README.md":
                s["size"] = -10**12  # would raise the --max-download budget if trusted
            if s["rfilename"] == "config.json":
                s["size"] = "abc"
            if s["rfilename"] == "model.safetensors":
                s["lfs"]["sha256"] = 12345
        return info

    hub.info_hook = hook
    code, target = scan(hub, tmp_path)
    files = {f["path"]: f for f in target["provenance"]["files"]}
    assert files["README.md"]["size"] is None and files["config.json"]["size"] is None
    assert files["README.md"]["verified"] == "match" and files["config.json"]["verified"] == "match"
    assert files["model.safetensors"]["verified"] == "unverifiable"
    assert "MS-HUB-009" in rules_of(target, "model.safetensors")
    assert target["verdict"] == "inconclusive" and code == 2


def test_no_published_hash_is_inconclusive_not_clean(hub, tmp_path):
    def hook(info):
        for s in info["siblings"]:
            s.pop("blobId", None)
            s.pop("lfs", None)
        return info

    hub.info_hook = hook
    code, target = scan(hub, tmp_path)
    assert all("MS-HUB-009" in rules_of(target, p) for p in ("README.md", "config.json", "model.safetensors"))
    assert target["verdict"] == "inconclusive" and code == 2


def test_a_silent_api_server_times_out(hub, tmp_path):
    hub.info_hook = lambda info: (time.sleep(15), info)[1]
    start = time.monotonic()
    proc = run_cli("scan", "hf://org/x", env=hub_env(hub, tmp_path / "home", **FAST), timeout=30)
    assert time.monotonic() - start < 12
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "timed out" in proc.stderr


def test_a_dripping_download_is_stopped(hub, tmp_path):
    published = len(repo_of(hub).files["model.safetensors"])

    def drip(handler, path, head):
        if path != "model.safetensors" or head:
            return False
        handler.send_response(200)
        handler.send_header("Content-Length", str(published))
        handler.send_header("X-Repo-Commit", repo_of(hub).commit)
        handler.end_headers()
        try:
            for _ in range(published):
                handler.wfile.write(b"\0")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        return True

    hub.raw_resolve = drip
    start = time.monotonic()
    code, target = scan(hub, tmp_path, timeout=30, **FAST)
    assert time.monotonic() - start < 15
    art = next(a for a in target["artefacts"] if a["path"] == "model.safetensors")
    assert [f["rule_id"] for f in art["findings"]] == ["MS-GEN-007"] and "stalls" in art["reason"]
    assert code == 2


def test_compressed_answer_is_refused(hub, tmp_path):
    bomb = gzip.compress(b"\0" * 20_000_000)

    def hook(path, head, status, headers, body):
        if path == "model.safetensors" and not head:
            headers["Content-Encoding"] = "gzip"
            return status, headers, bomb
        return status, headers, body

    hub.resolve_hook = hook
    code, target = scan(hub, tmp_path)
    art = next(a for a in target["artefacts"] if a["path"] == "model.safetensors")
    assert [f["rule_id"] for f in art["findings"]] == ["MS-GEN-007"] and "Content-Encoding" in art["reason"]
    assert _cache_bytes(tmp_path) < 1_000_000
    assert code == 2


def test_redirect_to_a_file_url_is_refused(hub, tmp_path):
    def hook(path, head, status, headers, body):
        if path == "config.json":
            headers["Location"] = "file:///etc/passwd"
            return 302, headers, b""
        return status, headers, body

    hub.resolve_hook = hook
    code, target = scan(hub, tmp_path)
    assert rules_of(target, "config.json") == ["MS-HUB-008"]
    assert code == 1


def test_tampered_cache_pointer_is_not_followed_online(hub, tmp_path):
    code, target = scan(hub, tmp_path)
    assert code == 0 or target["verdict"] != "unsafe"
    commit = repo_of(hub).commit
    pointer = tmp_path / "home" / "hub" / "models--org--x" / "snapshots" / commit / "config.json"
    secret = tmp_path / "home" / "secret.json"
    secret.write_text('{"secret": true}')
    pointer.unlink()
    pointer.symlink_to(secret)
    code, target = scan(hub, tmp_path)
    assert rules_of(target, "config.json") == ["MS-GEN-004"]
    assert target["verdict"] == "unsafe" and code == 1


def test_max_download_exactly_at_the_boundary(hub, tmp_path):
    total = sum(len(b) for b in repo_of(hub).files.values())
    code, target = scan(hub, tmp_path, "--max-download", str(total))
    assert all(f["downloaded"] for f in target["provenance"]["files"]) and code == 0
    code, target = scan(hub, tmp_path / "again", "--max-download", str(total - 1))
    assert sum(not f["downloaded"] for f in target["provenance"]["files"]) == 1 and code == 2


@pytest.mark.parametrize("pattern", ["../*", "/etc/*", "..\\*"])
def test_include_patterns_cannot_traverse(hub, tmp_path, pattern):
    code, target = scan(hub, tmp_path, "--include", pattern)
    assert all(f["downloaded"] is False for f in target["provenance"]["files"])
    assert written_outside_cache(tmp_path) == []
    assert code == 2  # nothing chosen, everything listed as excluded: an empty gate never passes
    assert "nothing scanned" in target["error"]


# -- tampered HF cache folders -----------------------------------------------------------------

def _cache_repo(tmp_path):
    commit = "a" * 40
    repo = tmp_path / "models--org--m"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    data = b'{"a": 1}'
    (repo / "blobs" / git_blob_id(data)).write_bytes(data)
    os.symlink(f"../../blobs/{git_blob_id(data)}", snap / "config.json")
    return repo, snap, commit


def scan_cache(target, tmp_path) -> tuple[int, dict]:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "none")}
    code, report = scan_json_process(str(target), env=env, timeout=30)
    return code, report["targets"][0]


@pytest.mark.parametrize("where", ["refs/evil", "trees/COMMIT.json"])
def test_fifo_in_the_cache_does_not_hang(tmp_path, where):
    repo, _snap, commit = _cache_repo(tmp_path)
    fifo = repo / where.replace("COMMIT", commit)
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    code, target = scan_cache(repo, tmp_path)
    assert target["error"] is None and rules_of(target, "config.json") == []
    assert code == 0


def test_snapshot_folder_linking_outside_is_not_read(tmp_path):
    repo, snap, _commit = _cache_repo(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.rename(snap, tmp_path / "moved")
    os.symlink(outside, snap)
    code, target = scan_cache(repo, tmp_path)
    assert "outside the cache repo folder" in target["error"]
    assert target["artefacts"] == [] and code == 2


def test_links_to_folders_and_fifos_are_reported(tmp_path):
    repo, snap, _commit = _cache_repo(tmp_path)
    os.symlink("../../blobs", snap / "dirlink")
    os.mkfifo(repo / "blobs" / "ff")
    os.symlink("../../blobs/ff", snap / "fifolink")
    code, target = scan_cache(repo, tmp_path)
    assert rules_of(target, "dirlink") == ["MS-GEN-008"] and rules_of(target, "fifolink") == ["MS-GEN-008"]


def test_malformed_cached_listing_does_not_crash(tmp_path):
    repo, _snap, commit = _cache_repo(tmp_path)
    (repo / "trees").mkdir()
    (repo / "trees" / f"{commit}.json").write_text(json.dumps({"files": {
        "config.json": {"size": "x", "blob_id": 5, "lfs_sha256": ["z"]}, "gone.bin": {"size": -1}}}))
    code, target = scan_cache(repo, tmp_path)
    files = {f["path"]: f for f in target["provenance"]["files"]}
    assert files["config.json"]["verified"] == "match"  # the blob name still vouches for it
    assert files["gone.bin"]["size"] is None and rules_of(target, "gone.bin") == ["MS-HUB-007"]


# -- hostile URLs ------------------------------------------------------------------------------

class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/drip.bin":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif self.path == "/silent.bin":
            time.sleep(10)
        elif self.path == "/gzip.bin":
            body = gzip.compress(b"\0" * 20_000_000)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[4:].replace("_", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture(scope="module")
def hostile_url():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path,needle", [
    ("/drip.bin", "stalls"),
    ("/silent.bin", "timed out"),
    ("/gzip.bin", "Content-Encoding: gzip"),
    ("/to/file:___etc_passwd", "refusing a redirect to file:"),
    ("/to/ftp:__127.0.0.1_x", "refusing a redirect to ftp:"),
])
def test_hostile_url_is_refused_quickly(hostile_url, tmp_path, path, needle):
    env = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", "TMPDIR": str(tmp_path),
           "MODELSHIELD_DOWNLOAD_TIMEOUT": "1"}
    start = time.monotonic()
    proc = run_cli("scan", f"{hostile_url}{path}", env=env, timeout=30)
    assert time.monotonic() - start < 12
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert os.listdir(tmp_path) == []
