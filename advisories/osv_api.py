"""`advisories update`: refresh the index from an OSV-compatible API (api.osv.dev by default).

`POST /v1/querybatch` with one package-only query per ML-relevant package returns every
advisory id (with its `modified`) per package, paged by `next_page_token`; then
`GET /v1/vulns/{id}` fetches each full record, reusing the local copy when `modified` is
unchanged. Any network, HTTP or JSON error aborts with `UpdateError` (one line) and leaves the
previous index in place.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import requests

from . import index, osv, tables
from .interface import Advisory
from .errors import RecordError, UpdateError

DEFAULT_URL = "https://api.osv.dev"
TIMEOUT = (10.0, 60.0)  # connect, read (seconds)
MAX_PAGES = 200
MAX_BATCH_BYTES = 64 * 1024 * 1024
BATCH_SIZE = 1000  # the API's limit on queries per batch


@dataclass
class UpdateResult:
    records: int
    fetched: int
    reused: int
    url: str
    path: Path


def update(url: str = DEFAULT_URL, target: Path | None = None, *, timeout: tuple[float, float] = TIMEOUT,
           packages: list[str] | None = None, log: Callable[[str], None] | None = None) -> UpdateResult:
    """Query `url` for every ML-relevant package and rewrite the index at `target`."""
    base = url.rstrip("/")
    path = target or index.index_path()
    names = packages or sorted(tables.ml_packages())
    session = requests.Session()
    session.headers["User-Agent"] = "modelshield-advisories"
    ids = _query_ids(session, base, names, timeout)
    known: dict[str, Advisory] = {}
    existing = _existing(path)
    if existing is not None:
        known = {a.id: a for a in existing.advisories()}
    kept: list[tuple[Advisory, str]] = []
    fetched = reused = 0
    for ident, modified in sorted(ids.items()):
        old = known.get(ident)
        if old is not None and modified and old.modified == modified:
            kept.append((old, index.record_text(old)))
            reused += 1
            continue
        data = _get_json(session, f"{base}/v1/vulns/{quote(ident, safe='')}", timeout)
        try:
            adv = osv.parse(data, origin="updated")
        except RecordError as exc:
            raise UpdateError(f"{base}: record {ident}: {exc}") from None
        kept.append((adv, json.dumps(data, sort_keys=True, ensure_ascii=False)))
        fetched += 1
        if log:
            log(f"fetched {ident}")
    now = _dt.datetime.now(_dt.timezone.utc)
    count = index.LocalIndex.write(path, kept, kind="updated", date=now, source=base)
    return UpdateResult(records=count, fetched=fetched, reused=reused, url=base, path=path)


def _existing(path: Path) -> index.LocalIndex | None:
    try:
        return index.open_index(path)
    except OSError:
        return None


def _query_ids(session: requests.Session, base: str, names: list[str],
               timeout: tuple[float, float]) -> dict[str, str]:
    """id -> modified for every advisory of `names`, following page tokens."""
    out: dict[str, str] = {}
    for start in range(0, len(names), BATCH_SIZE):
        pending: list[tuple[str, str | None]] = [(n, None) for n in names[start:start + BATCH_SIZE]]
        pages = 0
        while pending:
            pages += 1
            if pages > MAX_PAGES:
                raise UpdateError(f"{base}: more than {MAX_PAGES} result pages; refusing to continue")
            queries: list[dict[str, Any]] = []
            for name, token in pending:
                query: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": name}}
                if token:
                    query["page_token"] = token
                queries.append(query)
            data = _post_json(session, f"{base}/v1/querybatch", {"queries": queries}, timeout)
            results = data.get("results") if isinstance(data, dict) else None
            if not isinstance(results, list) or len(results) != len(queries):
                raise UpdateError(f"{base}/v1/querybatch: answer does not have one result per query")
            follow: list[tuple[str, str | None]] = []
            for (name, _), result in zip(pending, results):
                if not isinstance(result, dict):
                    raise UpdateError(f"{base}/v1/querybatch: malformed result for {name}")
                for vuln in result.get("vulns") or []:
                    if not isinstance(vuln, dict) or not isinstance(vuln.get("id"), str):
                        raise UpdateError(f"{base}/v1/querybatch: malformed vulnerability entry for {name}")
                    out[vuln["id"]] = str(vuln.get("modified") or "")
                token = result.get("next_page_token")
                if isinstance(token, str) and token:
                    follow.append((name, token))
            pending = follow
    return out


def _post_json(session: requests.Session, url: str, body: dict[str, Any], timeout: tuple[float, float]) -> Any:
    return _request(session, "POST", url, timeout, json=body)


def _get_json(session: requests.Session, url: str, timeout: tuple[float, float]) -> Any:
    return _request(session, "GET", url, timeout)


def _request(session: requests.Session, method: str, url: str, timeout: tuple[float, float], **kw: Any) -> Any:
    """One request with one retry on 5xx/connection reset; the JSON body, bounded in size."""
    last = ""
    for attempt in range(2):
        try:
            with session.request(method, url, timeout=timeout, stream=True, allow_redirects=False, **kw) as resp:
                if resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}"
                    continue
                if resp.status_code != 200:
                    raise UpdateError(f"{url}: HTTP {resp.status_code}")
                chunks, size = [], 0
                for chunk in resp.iter_content(65536):
                    size += len(chunk)
                    if size > MAX_BATCH_BYTES:
                        raise UpdateError(f"{url}: answer larger than {MAX_BATCH_BYTES} bytes")
                    chunks.append(chunk)
        except requests.Timeout:
            raise UpdateError(f"{url}: timed out") from None
        except requests.ConnectionError as exc:
            last = f"cannot connect ({_short(exc)})"
            if attempt == 0 and "reset" in str(exc).lower():
                continue
            raise UpdateError(f"{url}: {last}") from None
        except requests.RequestException as exc:
            raise UpdateError(f"{url}: {_short(exc)}") from None
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            raise UpdateError(f"{url}: answer is not JSON") from None
    raise UpdateError(f"{url}: {last}")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
