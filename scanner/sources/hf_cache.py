"""An existing Hugging Face cache folder, offline: `models--org--name` or one of its `snapshots/<sha>`.

Layout: `<type>s--org--name/{blobs/<etag>, refs/<ref> (a commit), snapshots/<commit>/<path> -> ../../blobs/<etag>,
trees/<commit>.json (huggingface_hub 2.x: the listing of the commit)}`. Snapshot files are symlinks
into `blobs`; we follow them as long as they stay inside the repo folder (a link leaving it is
MS-GEN-004). The blob name is the published etag: the SHA-256 for LFS files, the git blob id for
small files, so every cached file is checked against it after the scan (MS-HUB-001/002).
"""
from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

from ..findings import FileRecord, Provenance, TargetResult
from ..rules import load_rules
from . import hub_verify, local
from .interface import Resolved, SourceOptions

_REPO_DIR = re.compile(r"^(models|datasets|spaces)--(.+)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def accepts(target: str) -> bool:
    """A cache repo folder (with `snapshots/`) or a `snapshots/<sha>` folder inside one."""
    return locate(target) is not None


def locate(target: str) -> tuple[str, str | None] | None:
    """(repo folder, snapshot commit or None) for a cache folder target, else None."""
    path = os.path.abspath(os.path.expanduser(target)).rstrip(os.sep)
    if not os.path.isdir(path):
        return None
    name = os.path.basename(path)
    if _REPO_DIR.match(name) and os.path.isdir(os.path.join(path, "snapshots")):
        return path, None
    parent = os.path.dirname(path)
    if _COMMIT.match(name) and os.path.basename(parent) == "snapshots":
        repo_dir = os.path.dirname(parent)
        if _REPO_DIR.match(os.path.basename(repo_dir)):
            return repo_dir, name
    return None


def repo_identity(repo_dir: str) -> tuple[str, str]:
    """(repo_id, repo_type) from `models--org--name`."""
    m = _REPO_DIR.match(os.path.basename(repo_dir))
    assert m is not None
    return m.group(2).replace("--", "/"), m.group(1)[:-1]


def read_refs(repo_dir: str) -> dict[str, str]:
    """ref name -> commit, from `refs/` (branches, tags and `refs/pr/N`)."""
    refs: dict[str, str] = {}
    root = os.path.join(repo_dir, "refs")
    for folder, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            commit = _read_small(full, 100)
            if commit is None:
                continue
            commit = commit.strip()
            if _COMMIT.match(commit):
                refs[os.path.relpath(full, root).replace(os.sep, "/")] = commit
    return refs


def resolve(target: str, options: SourceOptions, kind: str = "hf-cache", revision: str | None = None) -> Resolved:
    """Files of one cached snapshot, with provenance from the folder and a verification pass."""
    result = TargetResult(target=target, kind=kind)
    found = locate(target)
    if found is None:
        result.error = f"{target}: not a Hugging Face cache folder"
        return Resolved(result)
    repo_dir, commit = found
    refs = read_refs(repo_dir)
    if commit is None:
        commit, revision = _pick_snapshot(repo_dir, refs, revision)
        if commit is None:
            result.error = f"{target}: no snapshot in this HF cache folder{' for ' + revision if revision else ''}"
            return Resolved(result)
    snapshot = os.path.join(repo_dir, "snapshots", commit)
    if not os.path.isdir(snapshot):
        result.error = f"{target}: snapshot {commit} is not in the cache"
        return Resolved(result)
    return resolve_snapshot(result, repo_dir, commit, revision or _ref_of(refs, commit) or commit)


def resolve_snapshot(result: TargetResult, repo_dir: str, commit: str, revision: str) -> Resolved:
    """Walk `snapshots/<commit>` and build records from blob names and the cached tree listing."""
    repo_id, repo_type = repo_identity(repo_dir)
    snapshot = os.path.join(repo_dir, "snapshots", commit)
    result.root = snapshot
    real_repo, real_snapshot = os.path.realpath(repo_dir), os.path.realpath(snapshot)
    if not real_snapshot.startswith(real_repo + os.sep):
        result.error = (f"{snapshot}: the snapshot folder links to {real_snapshot}, outside the cache repo folder; "
                        "not scanned")
        return Resolved(result)
    listing = _tree_listing(repo_dir, commit)
    files: list[tuple[str, str, int]] = []
    records: dict[str, FileRecord] = {}
    _walk(snapshot, repo_dir, result, files, records)
    files.sort()
    extra: list[str] = []
    if listing is not None:
        for path, info in listing.items():
            rec = records.get(path)
            if rec is None:
                records[path] = hub_verify.record(path, info.get("size"), info.get("blob_id"), info.get("lfs_sha256"))
                continue
            # the listing is what the Hub published; the blob name must agree with it (checked below too)
            rec.update({"size": info.get("size"), "blob_id": info.get("blob_id") or rec["blob_id"],
                        "lfs_sha256": info.get("lfs_sha256") or rec["lfs_sha256"]})

        extra = [p for p in records if p not in listing]
    result.provenance = cache_provenance(repo_id, repo_type, revision, commit, records, listing is not None)
    ordered = [records[p] for p in sorted(records)]
    result.provenance["files"] = ordered

    def finish(res: TargetResult) -> None:
        hub_verify.verify(res, [r for r in ordered if r["downloaded"]], commit)
        by_path = {a.path: a for a in res.artefacts}
        for path in extra:
            if path in by_path:
                by_path[path].findings.append(load_rules().finding(
                    "MS-HUB-006", hub_verify._loc(by_path[path]), commit=commit))
        for rec in ordered:
            if not rec["downloaded"] and rec["path"] not in by_path:
                hub_verify.not_scanned(res, rec["path"], "listed in the cached revision but not in the local copy",
                                       "MS-HUB-007", rec.get("size"))

    return Resolved(result, files, total_bytes=sum(s for _, _, s in files), finish=finish)


def cache_provenance(repo_id: str, repo_type: str, revision: str, commit: str,
                     records: dict[str, FileRecord], listed: bool) -> Provenance:
    """The provenance contract, as far as a cache folder tells (Hub metadata fields None)."""
    return {"source": "huggingface", "endpoint": None, "repo_id": repo_id, "repo_type": repo_type,
            "revision": revision, "commit": commit, "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "private": None, "gated": None, "disabled": None, "pipeline_tag": None, "library_name": None,
            "tags": [], "card_data": None, "config": None, "created_at": None, "last_modified": None,
            "security_status": None, "safetensors_total": None, "url": None, "offline": True,
            "cached_listing": listed, "files": []}


def _pick_snapshot(repo_dir: str, refs: dict[str, str], revision: str | None) -> tuple[str | None, str | None]:
    snapshots_dir = os.path.join(repo_dir, "snapshots")
    try:
        snapshots = sorted(n for n in os.listdir(snapshots_dir) if _COMMIT.match(n))
    except OSError:
        snapshots = []
    if revision:
        if _COMMIT.match(revision):
            return (revision if revision in snapshots else None), revision
        commit = refs.get(revision)
        return (commit if commit in snapshots else None), revision
    if refs.get("main") in snapshots:
        return refs["main"], "main"
    if len(snapshots) == 1:
        return snapshots[0], _ref_of(refs, snapshots[0]) or snapshots[0]
    if snapshots:  # several, none on main: the newest one
        newest = max(snapshots, key=lambda s: os.path.getmtime(os.path.join(snapshots_dir, s)))
        return newest, _ref_of(refs, newest) or newest
    return None, None


def _ref_of(refs: dict[str, str], commit: str) -> str | None:
    names = sorted(r for r, c in refs.items() if c == commit)
    return ("main" if "main" in names else names[0]) if names else None


def _tree_listing(repo_dir: str, commit: str) -> dict[str, dict[str, Any]] | None:
    """huggingface_hub 2.x's saved listing of the commit (`trees/<commit>.json`), if present and sane."""
    text = _read_small(os.path.join(repo_dir, "trees", f"{commit}.json"), 64 << 20)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {k: _listed(v) for k, v in files.items() if isinstance(k, str) and isinstance(v, dict)}


def _listed(info: dict[str, Any]) -> dict[str, Any]:
    """A listing entry with only well-formed values (a tampered listing must not crash the scan)."""
    size = info.get("size")
    out: dict[str, Any] = {"size": size if isinstance(size, int) and not isinstance(size, bool) and size >= 0
                           else None}
    for key, pattern in (("blob_id", hub_verify.SHA1_RE), ("lfs_sha256", hub_verify.SHA256_RE)):
        value = info.get(key)
        out[key] = value.lower() if isinstance(value, str) and pattern.match(value.lower()) else None
    if info.get("lfs_sha256") is not None and out["lfs_sha256"] is None:
        out["blob_id"] = None  # an LFS entry's blob id is its pointer's: never compare content with it
    return out


def _read_small(path: str, limit: int) -> str | None:
    """Text of a regular file of at most `limit` bytes (never opens a fifo or device: no hang)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _walk(snapshot: str, repo_dir: str, result: TargetResult, files: list[tuple[str, str, int]],
          records: dict[str, FileRecord]) -> None:
    """Files of a snapshot; blob links stay inside the repo folder, their names are the published ids."""
    for entry in local.walk(snapshot, os.path.realpath(repo_dir), result, "the cache repo folder"):
        files.append((entry.rel, entry.path, entry.size))
        if entry.link_dest is not None:
            rec = hub_verify.record(entry.rel, None,
                                    **hub_verify.expected_from_blob_name(os.path.basename(entry.link_dest)))
        else:
            rec = hub_verify.record(entry.rel)  # a copied file (no symlinks): only the listing can vouch for it
        rec["downloaded"] = True
        records[entry.rel] = rec
