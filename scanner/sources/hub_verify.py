"""Integrity of Hub files: compare what we scanned with what the Hub published for the commit.

The Hub client checks sizes only; a same-size altered file is cached silently. The SHA-256 of each
file comes free from the engine's single scan read (`Artefact.sha256`); it must equal the Hub's
`lfs.sha256` for LFS files. Small (non-LFS) files are identified by their git blob id, which we
recompute over the file (bounded: the Hub refuses non-LFS files above 10 MB).

Each published file is a *record*: the plain dict that goes into `provenance["files"]`
(path, size, blob_id, lfs_sha256, downloaded, hub_scan, verified).
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import Any, Iterable

from ..findings import Artefact, FileRecord, FormatName, Location, Status, TargetResult
from ..rules import load_rules

# Non-LFS files on the Hub are at most 10 MB; above this we do not re-read a file for a git id.
MAX_GIT_BLOB_REHASH = 64 << 20
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


def record(path: str, size: int | None = None, blob_id: str | None = None, lfs_sha256: str | None = None,
           hub_scan: dict[str, Any] | None = None) -> FileRecord:
    """A published-file record, not downloaded and not verified yet."""
    return {"path": path, "size": size, "blob_id": blob_id, "lfs_sha256": lfs_sha256,
            "downloaded": False, "hub_scan": hub_scan, "verified": "not-downloaded"}


def git_blob_sha1(path: str, size: int) -> str:
    """The git object id of a file (sha1 over b"blob <size>\\0" + content), read in chunks."""
    digest = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(result: TargetResult, records: Iterable[FileRecord], commit: str | None, strict: bool = False) -> None:
    """Set each downloaded record's `verified` and add MS-HUB-001/002/003 to mismatching artefacts.

    `strict` (files fetched from an endpoint, which must publish a hash for every file): a file
    that cannot be verified gets MS-HUB-009 (inconclusive) instead of MS-HUB-003 (info)."""
    by_path = {a.path: a for a in result.artefacts}
    prov = result.provenance or {}
    cmd = cache_delete_command(prov.get("repo_id"), prov.get("repo_type", "model"))
    for rec in records:
        malformed = rec.pop("_malformed", None)
        if rec.get("from_store"):
            # the store entry is keyed by this published SHA-256 and the stored artefact's own
            # SHA-256 (of the bytes it analysed) was checked equal to it when it was restored
            rec["verified"] = "store-sha256"
            continue
        if not rec.get("downloaded"):
            rec["verified"] = "not-downloaded"
            continue
        artefact = by_path.get(rec["path"])
        if artefact is None or artefact.status is Status.SKIPPED or artefact.sha256 is None:
            rec["verified"] = "unverifiable"
            continue
        rec["verified"] = _check(artefact, rec, commit or "?", strict, malformed, cmd)


def cache_delete_command(repo_id: str | None, repo_type: str = "model") -> str:
    """The command that deletes a cached repo with the installed huggingface_hub: `hf cache rm`
    from 1.0 on, `hf cache delete` (interactive) before; `huggingface-cli delete-cache` is gone."""
    try:
        from huggingface_hub import __version__ as hub_version
        from packaging.version import Version

        modern = Version(hub_version) >= Version("1.0")
    except Exception:  # noqa: BLE001 - only the wording depends on it
        modern = True
    if modern:
        return f"hf cache rm {repo_type}/{repo_id}" if repo_id else "hf cache rm <type>/<repo>"
    return "hf cache delete"


def _check(artefact: Artefact, rec: FileRecord, commit: str, strict: bool = False,
           malformed: str | None = None, cache_cmd: str = "hf cache rm <type>/<repo>") -> str:
    rules = load_rules()
    size = rec.get("size")
    if isinstance(size, int) and artefact.size != size:
        artefact.findings.append(rules.finding(
            "MS-HUB-002", _loc(artefact), expected=size, actual=artefact.size, commit=commit))
        return "mismatch"
    if malformed:
        _unverifiable(artefact, malformed, strict)
        return "unverifiable"
    lfs = rec.get("lfs_sha256")
    if lfs:
        if artefact.sha256 != lfs.lower():
            artefact.findings.append(rules.finding(
                "MS-HUB-001", _loc(artefact), hash_kind="SHA-256", expected=lfs, actual=artefact.sha256,
                commit=commit, cache_cmd=cache_cmd))
            return "mismatch"
        return "match"
    blob_id = rec.get("blob_id")
    if blob_id and artefact.absolute_path and artefact.size <= MAX_GIT_BLOB_REHASH:
        try:
            actual = git_blob_sha1(artefact.absolute_path, artefact.size)
        except OSError as exc:
            _unverifiable(artefact, f"could not re-read it: {exc.strerror or exc}", strict)
            return "unverifiable"
        if actual != blob_id.lower():
            artefact.findings.append(rules.finding(
                "MS-HUB-001", _loc(artefact), hash_kind="git blob id", expected=blob_id, actual=actual,
                commit=commit, cache_cmd=cache_cmd))
            return "mismatch"
        return "match"
    _unverifiable(artefact, "the Hub published no hash for it" if not blob_id else "too large to re-hash", strict)
    return "unverifiable"


def hub_scan_findings(result: TargetResult, records: Iterable[FileRecord]) -> None:
    """MS-HUB-004 beside our own findings when the Hub's scanner flags a file we scanned."""
    by_path = {a.path: a for a in result.artefacts}
    rules = load_rules()
    for rec in records:
        scan = rec.get("hub_scan") or {}
        status = scan.get("status")
        artefact = by_path.get(rec["path"])
        if artefact is None or not status or status == "safe":
            continue
        detail = ", ".join(f"{k}: {v.get('status', v) if isinstance(v, dict) else v}"
                           for k, v in scan.items() if k in ("av_scan", "pickle_import_scan") and v) or "no detail"
        artefact.findings.append(rules.finding("MS-HUB-004", _loc(artefact), status=status, detail=detail))


def not_scanned(result: TargetResult, path: str, reason: str, rule_id: str = "MS-GEN-007",
                size: int | None = None) -> Artefact:
    """A SKIPPED artefact for a published file that was not downloaded (filters, size cap, error)."""
    artefact = Artefact(path=path, size=size or 0, status=Status.SKIPPED, reason=reason, format=FormatName.NOT_READ)
    artefact.findings.append(load_rules().finding(rule_id, _loc(artefact), reason=reason))
    result.artefacts.append(artefact)
    return artefact


def _unverifiable(artefact: Artefact, reason: str, strict: bool = False) -> None:
    rule = "MS-HUB-009" if strict else "MS-HUB-003"
    artefact.findings.append(load_rules().finding(rule, _loc(artefact), reason=reason))


def _loc(artefact: Artefact) -> Location:
    return Location(path=artefact.path)


def expected_from_blob_name(name: str) -> dict[str, Any]:
    """What an HF cache blob file name tells: a sha256 (LFS files) or a git blob id (small files)."""
    name = name.lower()
    if SHA256_RE.match(name):
        return {"lfs_sha256": name}
    if SHA1_RE.match(name):
        return {"blob_id": name}
    return {}


def file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
