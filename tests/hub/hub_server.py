"""A small Hugging Face Hub-compatible HTTP server for tests (127.0.0.1, port chosen by the OS).

It implements exactly what the unmodified `huggingface_hub` client (2.x and 0.36) asks for when
modelshield resolves `hf://` targets: repo info (`?blobs=true`, `?securityStatus=true`), tree and
paths-info listings, HEAD/GET `resolve` with `X-Repo-Commit`, quoted `ETag`, `X-Linked-Etag` /
`X-Linked-Size` for LFS files and `Range`, and the `X-Error-Code` error mapping (RepoNotFound,
RevisionNotFound, EntryNotFound, GatedRepo, disabled repos). No Xet headers: plain HTTP downloads.

Repos are seeded in memory with `HubServer.add_repo`; `served` lets a test serve bytes that differ
from the published ones (the tampered-file case).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".pkl", ".gguf", ".onnx", ".h5", ".parquet", ".npy")


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (what the Hub calls blobId for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
            f"size {len(data)}\n").encode()


@dataclass
class Repo:
    """One seeded repo at one commit (branch `main` and optional tags point at it)."""

    repo_id: str
    repo_type: str  # "model" | "dataset"
    files: dict[str, bytes]
    commit: str = ""
    refs: dict[str, str] = field(default_factory=dict)
    gated: Any = False  # False | "auto" | "manual"
    disabled: bool = False
    private: bool = False
    tokens: set[str] = field(default_factory=set)  # tokens granted access (gated/private)
    served: dict[str, bytes] = field(default_factory=dict)  # bytes served instead of the published ones
    card_data: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    security: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> securityFileStatus
    lfs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.commit:
            digest = hashlib.sha1(json.dumps(sorted((k, git_blob_id(v)) for k, v in self.files.items()))
                                  .encode() + self.repo_id.encode()).hexdigest()
            self.commit = digest
        self.refs.setdefault("main", self.commit)
        if not self.lfs:
            self.lfs = {p for p in self.files if p.endswith(LFS_SUFFIXES)}

    def entry(self, path: str) -> dict[str, Any]:
        """The published metadata of one file (as the tree / paths-info endpoints give it)."""
        data = self.files[path]
        if path in self.lfs:
            pointer = lfs_pointer(data)
            return {"type": "file", "oid": git_blob_id(pointer), "size": len(data), "path": path,
                    "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "pointerSize": len(pointer)}}
        return {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}

    def sibling(self, path: str) -> dict[str, Any]:
        e = self.entry(path)
        out: dict[str, Any] = {"rfilename": path, "size": e["size"], "blobId": e["oid"]}
        if "lfs" in e:
            out["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["lfs"]["size"],
                          "pointerSize": e["lfs"]["pointerSize"]}
        return out


class HubServer:
    """Start with `with HubServer() as hub:`; `hub.endpoint` is the HF_ENDPOINT to use."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        # Hostile-server hooks (tests/hub/test_hub_hostile.py): rewrite the repo info JSON, or the
        # (status, headers, body) of a `resolve` answer; `raw_resolve` takes the socket over entirely.
        self.info_hook: Any = None  # callable(info: dict) -> dict
        self.resolve_hook: Any = None  # callable(path, head, status, headers, body) -> (status, headers, body)
        self.raw_resolve: Any = None  # callable(handler, path, head) -> bool (True: answered)
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(self, repo: Repo) -> Repo:
        self.repos[(repo.repo_type, repo.repo_id)] = repo
        return repo

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/(revision|tree|paths-info)/([^/]+)(?:/(.*))?)?$")
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json", head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, head: bool = False, **headers: str) -> None:
        self._send(status, json.dumps(obj).encode(), headers, head=head)

    def _error(self, status: int, code: str | None, message: str, head: bool = False) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _repo(self, kind: str, repo_id: str, head: bool = False, download: bool = False) -> Repo | None:
        repo = self.hub.repos.get((kind, repo_id))
        token = self._token()
        if repo is None or (repo.private and token not in repo.tokens):
            # like the real Hub: 401 without a token, 404 with one
            self._error(404 if token else 401, "RepoNotFound", "Repository not found", head)
            return None
        if repo.disabled:
            self._error(403, None, "Access to this resource is disabled.", head)
            return None
        if download and repo.gated and token not in repo.tokens:
            self._error(401, "GatedRepo", "Access to model is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in.", head)
            return None
        return repo

    def _commit(self, repo: Repo, rev: str, head: bool = False) -> str | None:
        rev = unquote(rev)
        if rev in repo.refs:
            return repo.refs[rev]
        if rev == repo.commit:
            return rev
        self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        return None

    # -- verbs ---------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        url = urlsplit(self.path)
        self.hub.requests.append(("POST", url.path))
        m = _API.match(url.path)
        if not m or m.group(3) != "paths-info":
            self._error(404, None, "not found")
            return
        kind = m.group(1)[:-1]
        repo = self._repo(kind, m.group(2))
        if repo is None:
            return
        commit = self._commit(repo, m.group(4))
        if commit is None:
            return
        if "json" in (self.headers.get("Content-Type") or ""):
            form = json.loads(body or "{}")
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body)
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[0].lower() == "true"
        out = []
        for path in paths:
            if path in repo.files:
                entry = repo.entry(path)
                if expand and path in repo.security:
                    entry["securityFileStatus"] = repo.security[path]
                out.append(entry)
        self._json(200, out)

    def _dispatch(self, head: bool) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.hub.requests.append(("HEAD" if head else "GET", url.path))
        if url.path == "/api/agent-harnesses":
            self._json(200, {"standardEnvVars": [], "harnesses": {}}, head=head)
            return
        m = _API.match(url.path)
        if m:
            self._api(m, query, head)
            return
        m = _RESOLVE.match(url.path)
        if m:
            self._resolve("dataset" if m.group(1) else "model", m.group(2), m.group(3), unquote(m.group(4)), head)
            return
        self._error(404, None, "not found", head)

    def _api(self, m: re.Match, query: dict[str, list[str]], head: bool) -> None:
        kind, what = m.group(1)[:-1], m.group(3)
        repo = self._repo(kind, m.group(2), head)
        if repo is None:
            return
        commit = self._commit(repo, m.group(4) or "main", head)
        if commit is None:
            return
        if what == "tree":
            prefix = (m.group(5) or "").strip("/")
            items = [repo.entry(p) for p in sorted(repo.files) if not prefix or p.startswith(prefix + "/")]
            self._json(200, items, head=head)
            return
        info: dict[str, Any] = {
            "_id": "0" * 24, "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit,
            "private": repo.private, "gated": repo.gated, "disabled": repo.disabled,
            "lastModified": "2025-01-02T03:04:05.000Z", "createdAt": "2024-01-02T03:04:05.000Z",
            "tags": repo.tags, "downloads": 0, "likes": 0,
        }
        if kind == "model":
            info.update(pipeline_tag=repo.pipeline_tag, library_name=repo.library_name, config=repo.config)
        if repo.card_data is not None:
            info["cardData"] = repo.card_data
        blobs = query.get("blobs", ["false"])[0].lower() in ("true", "1")
        info["siblings"] = [repo.sibling(p) if blobs else {"rfilename": p} for p in sorted(repo.files)]
        if query.get("securityStatus"):
            info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": [
                {"path": p, "level": s.get("status")} for p, s in sorted(repo.security.items())
                if s.get("status") != "safe"]}
        if self.hub.info_hook is not None:
            info = self.hub.info_hook(info)
        self._json(200, info, head=head)

    def _resolve(self, kind: str, repo_id: str, rev: str, path: str, head: bool) -> None:
        if self.hub.raw_resolve is not None and self.hub.raw_resolve(self, path, head):
            return
        repo = self._repo(kind, repo_id, head, download=True)
        if repo is None:
            return
        commit = self._commit(repo, rev, head)
        if commit is None:
            return
        if path not in repo.files:
            self._error(404, "EntryNotFound", f"{path} does not exist on \"{rev}\"", head)
            return
        published = repo.entry(path)
        data = repo.served.get(path, repo.files[path])
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if "lfs" in published:
            headers["ETag"] = f'"{published["oid"]}"'
            headers["X-Linked-Etag"] = f'"{published["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(published["size"])
        else:
            headers["ETag"] = f'"{published["oid"]}"'
        status = 200
        rng = self.headers.get("Range")
        if rng:
            mr = re.match(r"bytes=(\d+)-(\d*)$", rng.strip())
            if mr:
                start = int(mr.group(1))
                end = int(mr.group(2)) if mr.group(2) else len(data) - 1
                if start >= len(data):
                    self._send(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}, head=head)
                    return
                headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
                data = data[start:end + 1]
                status = 206
        if self.hub.resolve_hook is not None:
            status, headers, data = self.hub.resolve_hook(path, head, status, headers, data)
        self._send(status, data, headers, content_type="application/octet-stream", head=head)
