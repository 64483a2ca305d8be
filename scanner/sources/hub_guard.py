"""Checks on every HTTP answer the Hub client receives while modelshield resolves an `hf://` target.

`huggingface_hub` builds cache paths from server headers it does not validate: the `ETag` /
`X-Linked-Etag` becomes `blobs/<etag>` (and `.locks/<etag>.lock`), the `X-Repo-Commit` of a 404
becomes `.no_exist/<commit>/...`, so a hostile endpoint answering `ETag: "../../x"` writes outside
the cache. Its download loop also writes every byte served before comparing the size, has no
timeout on API calls (`timeout=None`), and accepts compressed bodies of any expansion.

While `guarded()` is active (one `hf://` resolution, in this thread), hooks on the client's
`httpx` session refuse, before the client acts on them, answers whose:

- `X-Repo-Commit` is not 40 hex digits or differs from the pinned commit;
- `ETag` / `X-Linked-Etag` of a `resolve` answer is not a git blob id or SHA-256, or is not the
  one the Hub published for that file;
- redirect leaves http(s) or goes from https down to http;
- `Content-Encoding` is not identity (we ask for identity: sizes must be the published ones);
- body grows past the current limit (the file's published size and the `--max-download` budget
  while a file downloads, `MAX_API_BODY` otherwise) or trickles in slower than `MIN_BYTES`
  per timeout window.

Requests without a timeout get `HF_HUB_DOWNLOAD_TIMEOUT`. The hooks do nothing outside
`guarded()`, so other users of huggingface_hub in the same process are unaffected.
Only huggingface_hub 2.x (httpx) is hooked; with 0.36 the post-download checks of `hf.py` remain.
"""
from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import HostileAnswer
from ..findings import FileRecord

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
ETAG_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
MAX_API_BODY = 64 << 20  # bytes of one API answer (repo info, listings)
MIN_BYTES = 1024  # a body must bring at least this much per timeout window
MAX_FILE = 1 << 62  # no cap and no published size: no limit of our own


@dataclass
class Guard:
    """What one hf:// resolution expects from the server."""

    endpoint: str
    timeout: float
    commit: str | None = None
    published: dict[str, FileRecord] = field(default_factory=dict)  # path -> record
    body_limit: int = MAX_API_BODY
    published_size: int | None = None  # of the file being downloaded: more is a lie
    current: str | None = None  # the file being downloaded


_ACTIVE: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("modelshield_hub_guard", default=None)
_INSTALLED: list[bool] = []


@contextmanager
def guarded(endpoint: str, timeout: float) -> Iterator[Guard]:
    """Check every answer of the Hub client in this context (see the module docstring)."""
    _install()
    guard = Guard(endpoint=endpoint.rstrip("/"), timeout=timeout)
    token = _ACTIVE.set(guard)
    try:
        yield guard
    finally:
        _ACTIVE.reset(token)


@contextmanager
def downloading(guard: Guard, path: str, size: int | None, budget: int | None) -> Iterator[None]:
    """While one file downloads: bodies are capped at its published `size` (more: a lie) and at the
    `--max-download` `budget` left (more: over the cap)."""
    before = guard.body_limit, guard.published_size, guard.current
    guard.body_limit = min(x for x in (size, budget, MAX_FILE) if x is not None)
    guard.published_size, guard.current = size, path
    try:
        yield
    finally:
        guard.body_limit, guard.published_size, guard.current = before


def _install() -> None:
    """Wrap the client factory of huggingface_hub 2.x once per process (keeping a user's factory)."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    try:
        from huggingface_hub.utils import _http
    except ImportError:
        return
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    if previous is None or not hasattr(_http, "set_client_factory"):
        return  # huggingface_hub 0.x (requests): not hooked

    def factory() -> Any:
        client = previous()
        hooks = client.event_hooks
        hooks.setdefault("request", []).append(_on_request)
        hooks.setdefault("response", []).append(_on_response)
        client.event_hooks = hooks
        return client

    _http.set_client_factory(factory)


def _on_request(request: Any) -> None:
    guard = _ACTIVE.get()
    if guard is None:
        return
    timeout = request.extensions.get("timeout") or {}
    if not any(timeout.get(k) for k in ("connect", "read", "write", "pool")):
        request.extensions["timeout"] = {k: guard.timeout for k in ("connect", "read", "write", "pool")}
    request.headers["Accept-Encoding"] = "identity"


def _on_response(response: Any) -> None:
    guard = _ACTIVE.get()
    if guard is None:
        return
    url = urlsplit(str(response.request.url))
    path = _resolve_path(guard, url)
    headers = response.headers
    commit = headers.get("X-Repo-Commit")
    if commit is not None and (not COMMIT_RE.match(commit) or (guard.commit and commit != guard.commit)):
        raise HostileAnswer(f"the server answered commit {commit[:80]!r} for the pinned commit {guard.commit}", path)
    if response.is_redirect:
        location = headers.get("Location", "")
        target = urlsplit(str(response.request.url.join(location)))
        if target.scheme not in ("http", "https"):
            raise HostileAnswer(f"the server redirects to {target.scheme}: {location[:200]}", path)
        if url.scheme == "https" and target.scheme != "https":
            raise HostileAnswer(f"the server redirects from https down to http: {location[:200]}", path)
    if path is not None and response.status_code < 400:
        _check_etag(guard, path, headers)
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise HostileAnswer(f"the server compressed its answer (Content-Encoding: {encoding[:40]}) although "
                            "modelshield asked for the bytes as published", path or guard.current, hostile=False)
    if response.request.method != "HEAD" and not response.is_redirect:
        declared = headers.get("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > guard.body_limit:
            _over(guard, int(declared), path or guard.current, "announces")
        response.stream = _Capped(response.stream, guard, path or guard.current)


def _over(guard: Guard, amount: int, path: str | None, verb: str) -> None:
    """Refuse a body of `amount` bytes: a lie when over the published size, else over the budget."""
    if guard.published_size is not None and amount > guard.published_size:
        raise HostileAnswer(f"the server {verb} {amount} bytes for a file published as {guard.published_size} bytes",
                            path)
    if guard.current is not None and guard.published_size is None and guard.body_limit < MAX_FILE:
        raise HostileAnswer(f"the download (size not published) {verb} {amount} bytes, over the --max-download "
                            f"budget of {guard.body_limit} bytes left", path, hostile=False)
    if guard.current is not None:
        raise HostileAnswer(f"over the --max-download cap ({guard.body_limit} bytes left)", path, hostile=False)
    raise HostileAnswer(f"the server {verb} {amount} bytes, more than the {guard.body_limit} an API answer may have",
                        path)


def _resolve_path(guard: Guard, url: Any) -> str | None:
    """The repo file a `.../resolve/<rev>/<path>` URL of the endpoint is about, else None."""
    base = urlsplit(guard.endpoint)
    if (url.scheme, url.netloc) != (base.scheme, base.netloc):
        return None
    m = re.match(r"^/(?:(?:datasets|spaces)/)?[^/]+(?:/[^/]+)?/resolve/[^/]+/(.+)$", url.path[len(base.path):])
    return unquote(m.group(1)) if m else None


def _check_etag(guard: Guard, path: str, headers: Any) -> None:
    raw = headers.get("X-Linked-Etag") or headers.get("ETag")
    if raw is None:
        return
    etag = raw.strip().removeprefix("W/").strip('"')
    if not ETAG_RE.match(etag):
        raise HostileAnswer(f"the server's ETag {raw[:80]!r} is not a git blob id or a SHA-256", path)
    rec = guard.published.get(path)
    if rec is None:
        return
    known = {v.lower() for v in (rec.get("lfs_sha256"), rec.get("blob_id")) if isinstance(v, str)}
    if known and etag not in known:
        raise HostileAnswer(f"the server's ETag {etag} is not the id the Hub published for {path}", path)


try:  # the client's response bodies must stay its own stream type (it checks sync vs async)
    from httpx2 import SyncByteStream as _StreamBase
except ImportError:  # huggingface_hub 0.x: no httpx session to hook
    _StreamBase = object  # type: ignore[assignment,misc]


class _Capped(_StreamBase):
    """A response body that stops at `limit` bytes and refuses a trickle slower than MIN_BYTES per window."""

    def __init__(self, stream: Any, guard: Guard, path: str | None) -> None:
        self.stream, self.guard, self.path = stream, guard, path
        self.limit, self.window = guard.body_limit, max(guard.timeout, 0.5)

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        window_start, window_bytes = time.monotonic(), 0
        for chunk in self.stream:
            total += len(chunk)
            window_bytes += len(chunk)
            if total > self.limit:
                _over(self.guard, total, self.path, "sends at least")
            now = time.monotonic()
            if now - window_start >= self.window:
                if window_bytes < MIN_BYTES:
                    raise HostileAnswer(f"the server stalls (under {MIN_BYTES} bytes in {self.window:g} s)",
                                        self.path, hostile=False)
                window_start, window_bytes = now, 0
            yield chunk

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()
