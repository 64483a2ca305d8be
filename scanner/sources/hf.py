"""`hf://[datasets/]org/name[@revision]`: a Hugging Face Hub repo, pinned to a commit and verified.

Only through `huggingface_hub` (it honours HF_ENDPOINT, HF_TOKEN / stored login, HF_HOME,
HF_HUB_OFFLINE and proxies, and works against any Hub-compatible server):

1. `model_info` / `dataset_info` with `files_metadata=True` resolves the revision to a 40-hex commit
   and lists every file with its size, git blob id and LFS SHA-256 (and the Hub's security status);
2. `--include/--exclude` and `--max-download` choose the files; the rest are listed as not scanned;
3. each chosen file is fetched with `hf_hub_download` at the commit into the standard HF cache
   (resumable, a progress bar per file) and yielded as soon as it is there, so scanning starts
   while later files download;
4. after the scan, every file's bytes are compared with the published hashes (`hub_verify`).

Offline (`HF_HUB_OFFLINE=1` or `SourceOptions.offline`) the cached snapshot is scanned instead.
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
import re
from typing import TYPE_CHECKING, Any, Iterator

from ..findings import FileRecord, FormatName, Provenance, TargetResult
from ..rules import load_rules
from ..errors import HostileAnswer
from . import hf_cache, hub_errors, hub_guard, hub_verify
from .interface import Resolved, SourceOptions

if TYPE_CHECKING:
    from huggingface_hub import DatasetInfo, ModelInfo

_TARGET = re.compile(r"^hf://(?:(models|datasets|spaces)/)?([A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)?)(?:@(.+))?/?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PATHS_INFO_BATCH = 100


def accepts(target: str) -> bool:
    """Targets of the form hf://..."""
    return target.startswith("hf://")


def parse(target: str) -> tuple[str, str, str | None]:
    """(repo_id, repo_type, revision or None) from an hf:// target; ValueError when malformed."""
    m = _TARGET.match(target)
    if not m:
        raise ValueError(f"{target}: expected hf://org/name[@revision] or hf://datasets/org/name[@revision]")
    kind = {"datasets": "dataset", "spaces": "space"}.get(m.group(1) or "", "model")
    return m.group(2), kind, m.group(3)


def resolve(target: str, options: SourceOptions) -> Resolved:
    """Resolve an hf:// target to files in the HF cache, with Hub provenance and a verification pass."""
    result = TargetResult(target=target, kind="hf")
    try:
        repo_id, repo_type, revision = parse(target)
    except ValueError as exc:
        result.error = str(exc)
        return Resolved(result)
    if repo_type == "space":
        result.error = f"{target}: Spaces are not supported; scan a model or dataset repo"
        return Resolved(result)
    try:
        from huggingface_hub import HfApi, constants
    except ImportError:
        result.error = "hf:// targets need the huggingface_hub package (pip install huggingface_hub)"
        return Resolved(result)
    cache_dir = options.cache_dir or constants.HF_HUB_CACHE
    offline = constants.HF_HUB_OFFLINE if options.offline is None else options.offline
    if offline:
        return _resolve_offline(result, repo_id, repo_type, revision, cache_dir)

    api = HfApi()
    endpoint = api.endpoint.rstrip("/")
    timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT or 10)
    try:
        with hub_guard.guarded(endpoint, timeout):
            info: DatasetInfo | ModelInfo
            if repo_type == "dataset":
                info = api.dataset_info(repo_id, revision=revision, files_metadata=True)
            else:
                info = api.model_info(repo_id, revision=revision, files_metadata=True, securityStatus=True)
    except Exception as exc:  # noqa: BLE001 - every client error becomes one line, exit 2
        result.error = hub_errors.describe(exc, repo_id, repo_type, revision, endpoint, cache_dir)
        return Resolved(result)
    commit = getattr(info, "sha", None)
    if not commit or not _COMMIT.match(commit):
        result.error = f"{target}: the Hub did not resolve {revision or 'the default branch'} to a commit"
        return Resolved(result)
    if revision and _COMMIT.match(revision) and revision != commit:
        result.error = f"{target}: the Hub answered commit {commit} for requested commit {revision}"
        return Resolved(result)

    records, refused = _records(info.siblings or [])
    chosen, excluded, over_cap = _select(list(records.values()), options, repo_id, repo_type, commit, cache_dir)
    with hub_guard.guarded(endpoint, timeout) as guard:
        guard.commit = commit
        _hub_scans(api, repo_id, repo_type, commit, [r["path"] for r in chosen], records)

    result.provenance = _provenance(info, endpoint, repo_id, repo_type, revision, commit)
    result.provenance["files"] = [records[p] for p in sorted(records)]
    result.root = os.path.join(cache_dir, f"{repo_type}s--{repo_id.replace('/', '--')}", "snapshots", commit)

    ref_noted: list[bool] = []
    repo_dir = os.path.join(cache_dir, f"{repo_type}s--{repo_id.replace('/', '--')}")
    budget = [options.max_download]  # bytes left under --max-download (None: no cap)

    def files() -> Iterator[tuple[str, str, int]]:
        for name, reason in refused:
            _refused(result, name, reason)
        for rec in chosen:
            if result.error:
                return
            size = rec.get("size")
            published = rec.get("lfs_sha256")
            if options.reuse is not None and published:
                stored = options.reuse(rec["path"], published, size)
                if stored is not None:  # analysed before: the download is skipped altogether
                    rec["from_store"] = True  # downloaded stays False: these bytes were not fetched now
                    result.artefacts.append(stored)
                    continue
            try:
                with hub_guard.guarded(endpoint, timeout) as guard:
                    guard.commit, guard.published = commit, records
                    with hub_guard.downloading(guard, rec["path"], size, budget[0]):
                        local = _download(repo_id, repo_type, commit, rec["path"], cache_dir)
            except HostileAnswer as exc:
                rec["_reported"] = True
                if exc.hostile:
                    _refused(result, rec["path"], exc.reason, size)
                else:
                    hub_verify.not_scanned(result, rec["path"], exc.reason, size=size)
                continue
            except Exception as exc:  # noqa: BLE001
                from huggingface_hub import errors

                if isinstance(exc, errors.EntryNotFoundError) and not isinstance(exc, errors.GatedRepoError):
                    hub_verify.not_scanned(result, rec["path"], "listed by the Hub but missing on the server",
                                           size=size)
                    rec["_reported"] = True
                    continue
                result.error = hub_errors.describe(exc, repo_id, repo_type, revision, endpoint, cache_dir)
                return
            problem = _outside(local, repo_dir, commit, rec["path"])
            if problem:
                rec["_reported"] = True
                if problem.startswith("the client"):
                    _refused(result, rec["path"], problem, size)
                else:
                    from .local import skipped

                    skipped(result, rec["path"], problem, "MS-GEN-004", link_target=os.path.realpath(local))
                continue
            rec["downloaded"] = True
            if not ref_noted:
                _remember_ref(cache_dir, repo_id, repo_type, revision or "main", commit)
                ref_noted.append(True)
            got = os.path.getsize(local)
            if budget[0] is not None:
                budget[0] = max(budget[0] - got, 0)
            yield rec["path"], local, got

    def finish(res: TargetResult) -> None:
        ordered = res.provenance["files"]
        hub_verify.verify(res, ordered, commit, strict=True)
        hub_verify.hub_scan_findings(res, ordered)
        for rec in ordered:
            if rec.get("_reported") or rec["downloaded"] or rec.get("from_store"):
                rec.pop("_reported", None)
                continue
            if rec["path"] in excluded:
                hub_verify.not_scanned(res, rec["path"], "excluded by --include/--exclude", "MS-HUB-007",
                                       rec.get("size"))
            elif rec["path"] in over_cap:
                hub_verify.not_scanned(res, rec["path"], f"over the --max-download cap of {options.max_download} "
                                       "bytes", size=rec.get("size"))
            else:
                hub_verify.not_scanned(res, rec["path"], "not downloaded (the download stopped)",
                                       size=rec.get("size"))
        _custom_code(res)

    total = sum(r.get("size") or 0 for r in chosen)
    return Resolved(result, files(), total_bytes=total, finish=finish)


def _records(siblings: Any) -> tuple[dict[str, FileRecord], list[tuple[str, str]]]:
    """Published-file records from the siblings, and (name, reason) of names no download may use.

    Sizes and hashes are kept only when well formed (an int >= 0, 40/64 lower-case hex)."""
    records: dict[str, FileRecord] = {}
    refused: list[tuple[str, str]] = []
    for s in siblings:
        name = getattr(s, "rfilename", None)
        reason = _bad_name(name)
        if reason or not isinstance(name, str):  # _bad_name gives a reason for every non-string
            refused.append((repr(name)[:300] if not isinstance(name, str) else name[:300], reason or "not a string"))
            continue
        lfs = s.lfs if isinstance(getattr(s, "lfs", None), dict) else {}
        records[name] = hub_verify.record(name, _size(s.size), _hex(s.blob_id, hub_verify.SHA1_RE),
                                          _hex(lfs.get("sha256"), hub_verify.SHA256_RE))
        if lfs.get("sha256") is not None and records[name]["lfs_sha256"] is None:
            # an LFS file whose hash is unusable: its blob id is the pointer's, never the content's
            records[name].update({"blob_id": None, "_malformed": "its published LFS SHA-256 is malformed"})
    return records, refused


def _bad_name(name: Any) -> str | None:
    """Why a repo file name cannot be a path inside the snapshot (None when it can)."""
    if not isinstance(name, str) or not name:
        return "the file name is empty or not a string"
    if len(name.encode("utf-8", "surrogatepass")) > 4096:
        return "the file name is longer than 4096 bytes"
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        return "the file name holds control characters (NUL, newline...)"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "the file name is an absolute path"
    parts = name.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "the file name has an empty, '.' or '..' segment (path traversal)"
    if any(len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts):
        return "a segment of the file name is longer than 255 bytes"
    return None


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _hex(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value.lower() if isinstance(value, str) and pattern.match(value.lower()) else None


def _outside(local: str, repo_dir: str, commit: str, path: str) -> str | None:
    """Why the file the client returned may not be read (None: it is the snapshot's regular file)."""
    expected = os.path.join(repo_dir, "snapshots", commit, *path.split("/"))
    if os.path.abspath(local) != os.path.abspath(expected):
        return f"the client returned {local}, not the pinned snapshot's file"
    real = os.path.realpath(local)
    root = os.path.realpath(repo_dir)
    if not real.startswith(root + os.sep):
        return f"the cached file links to {real}, outside the cache repo folder"
    if not os.path.isfile(real):
        return f"the cached file links to {real}, not a regular file"
    return None


def _refused(result: TargetResult, path: str, reason: str, size: int | None = None) -> None:
    """MS-HUB-008: the endpoint's answer about this file was refused; nothing of it was scanned."""
    from ..findings import Artefact, Location, Status

    artefact = Artefact(path=path, size=size or 0, status=Status.SKIPPED, reason=reason, format=FormatName.NOT_READ)
    artefact.findings.append(load_rules().finding("MS-HUB-008", Location(path=path), reason=reason))
    result.artefacts.append(artefact)


def _remember_ref(cache_dir: str, repo_id: str, repo_type: str, revision: str, commit: str) -> None:
    """Record `refs/<revision>` -> commit in the HF cache, as snapshot_download does, so that offline
    runs (and the HF cache source) find the snapshot by branch or tag name. Best effort."""
    if _COMMIT.match(revision) or ".." in revision.split("/"):
        return
    path = os.path.join(cache_dir, f"{repo_type}s--{repo_id.replace('/', '--')}", "refs", *revision.split("/"))
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read().strip() == commit:
                return
    except OSError:
        pass
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(commit)
    except OSError:
        pass


def _download(repo_id: str, repo_type: str, commit: str, path: str, cache_dir: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, path, repo_type=repo_type, revision=commit, cache_dir=cache_dir)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        # huggingface_hub wraps ENOSPC in its own messages in some versions
        if "No space left" in str(exc):
            raise OSError(errno.ENOSPC, "No space left on device") from exc
        raise


def _select(records: list[FileRecord], options: SourceOptions, repo_id: str, repo_type: str, commit: str,
            cache_dir: str) -> tuple[list[FileRecord], set[str], set[str]]:
    """(files to fetch in path order, paths excluded by the filters, paths over the size cap).

    Under a cap, files a loader opens (pickles, code, configs) are fetched first, then smaller
    files first; files already in the cache cost nothing.
    """
    from huggingface_hub.utils import filter_repo_objects

    paths = [r["path"] for r in records]
    kept = set(filter_repo_objects(paths, allow_patterns=options.include or None,
                                   ignore_patterns=options.exclude or None))
    excluded = {p for p in paths if p not in kept}
    candidates = [r for r in records if r["path"] in kept]
    over_cap: set[str] = set()
    if options.max_download is not None:
        from huggingface_hub import try_to_load_from_cache

        from ..suffixes import loader_hint

        budget = options.max_download
        ranked = sorted(candidates, key=lambda r: (loader_hint(r["path"]) is None and not r["path"].endswith(".py"),
                                                   r.get("size") or 0, r["path"]))
        for rec in ranked:
            cached = try_to_load_from_cache(repo_id, rec["path"], cache_dir=cache_dir, revision=commit,
                                            repo_type=repo_type)
            cost = 0 if isinstance(cached, str) else (rec.get("size") or 0)
            if cost > budget:
                over_cap.add(rec["path"])
            else:
                budget -= cost
        candidates = [r for r in candidates if r["path"] not in over_cap]
    return sorted(candidates, key=lambda r: r["path"]), excluded, over_cap


def _hub_scans(api: Any, repo_id: str, repo_type: str, commit: str, paths: list[str],
               records: dict[str, FileRecord]) -> None:
    """The Hub's own per-file scan status (paths-info with expand), best effort: shown, never trusted."""
    for start in range(0, len(paths), _PATHS_INFO_BATCH):
        try:
            infos = api.get_paths_info(repo_id, paths[start:start + _PATHS_INFO_BATCH], expand=True,
                                       revision=commit, repo_type=repo_type)
        except Exception:  # noqa: BLE001 - optional metadata; servers without it are fine
            return
        for item in infos:
            security = getattr(item, "security", None)
            if security and item.path in records:
                records[item.path]["hub_scan"] = _plain(dict(security))


def _resolve_offline(result: TargetResult, repo_id: str, repo_type: str, revision: str | None,
                     cache_dir: str) -> Resolved:
    repo_dir = os.path.join(cache_dir, f"{repo_type}s--{repo_id.replace('/', '--')}")
    if not os.path.isdir(os.path.join(repo_dir, "snapshots")):
        result.error = (f"offline (HF_HUB_OFFLINE=1) and {repo_type} repo {repo_id} is not in the HF cache at "
                        f"{cache_dir}: download it once online first")
        return Resolved(result)
    commit, rev = hf_cache._pick_snapshot(repo_dir, hf_cache.read_refs(repo_dir), revision or "main")
    if commit is None:
        result.error = (f"offline (HF_HUB_OFFLINE=1) and {repo_id}@{revision or 'main'} is not in the HF cache at "
                        f"{cache_dir}: download it once online first")
        return Resolved(result)
    resolved = hf_cache.resolve_snapshot(result, repo_dir, commit, rev or commit)
    from huggingface_hub import constants

    # The cache does not record where it came from; offline, the configured endpoint is the answer.
    result.provenance["endpoint"] = constants.ENDPOINT.rstrip("/")
    return resolved


def _provenance(info: Any, endpoint: str, repo_id: str, repo_type: str, revision: str | None,
                commit: str) -> Provenance:
    card = getattr(info, "card_data", None)
    safetensors = getattr(info, "safetensors", None)
    prefix = "datasets/" if repo_type == "dataset" else ""
    return {
        "source": "huggingface", "endpoint": endpoint, "repo_id": repo_id, "repo_type": repo_type,
        "revision": revision or "main", "commit": commit, "author": getattr(info, "author", None),
        "private": getattr(info, "private", None), "gated": getattr(info, "gated", None),
        "disabled": getattr(info, "disabled", None), "pipeline_tag": getattr(info, "pipeline_tag", None),
        "library_name": getattr(info, "library_name", None), "tags": list(getattr(info, "tags", None) or []),
        "card_data": _plain(card.to_dict()) if card is not None and hasattr(card, "to_dict") else _plain(card),
        "config": _plain(getattr(info, "config", None)),
        "created_at": _iso(getattr(info, "created_at", None)),
        "last_modified": _iso(getattr(info, "last_modified", None)),
        "security_status": _plain(getattr(info, "security_repo_status", None)),
        "safetensors_total": getattr(safetensors, "total", None) if safetensors is not None else None,
        "url": f"{endpoint}/{prefix}{repo_id}/tree/{commit}",
        "files": [],
    }


def _custom_code(result: TargetResult) -> None:
    """MS-HUB-005 (info) when the repo declares remote code: `custom_code` tag or config `auto_map`."""
    prov = result.provenance
    config = prov.get("config") or {}
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if "custom_code" not in (prov.get("tags") or []) and not auto_map:
        return
    detail = "auto_map: " + ", ".join(f"{k} -> {v}" for k, v in sorted(auto_map.items())) if isinstance(
        auto_map, dict) and auto_map else "tag custom_code"
    from ..findings import Location

    result.findings.append(load_rules().finding("MS-HUB-005", Location(path="."), detail=detail))


def _iso(value: Any) -> str | None:
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else None


def _plain(value: Any) -> Any:
    """JSON-able copy of Hub metadata (datetimes as ISO strings, unknown objects as str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)
