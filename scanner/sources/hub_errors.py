"""One clear line for the errors people hit with the Hub (gated, 401/403/404, revision, offline...).

The `huggingface_hub` exception hierarchy differs a little between 0.36 and 2.x (2.x raises
`RemoteEntryNotFoundError`, built on httpx); we match base classes and names, never messages.
"""
from __future__ import annotations

import errno
from typing import Iterator


def describe(exc: BaseException, repo_id: str, repo_type: str, revision: str | None, endpoint: str,
             cache_dir: str | None = None) -> str:
    """A one-line, actionable description of a Hub client exception."""
    from huggingface_hub import errors as e

    kind = "dataset" if repo_type == "dataset" else "model"
    page = f"{endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    status = _status(exc)
    from ..errors import HostileAnswer

    hostile = next((x for x in _chain(exc) if isinstance(x, HostileAnswer)), None)
    if hostile is not None:
        return f"{endpoint} answered in a way a real Hub never does for {repo_id}, refused: {hostile.reason}"
    # GatedRepoError subclasses RepositoryNotFoundError: test it first.
    if isinstance(exc, e.GatedRepoError):
        return (f"{kind} repo {repo_id} is gated: open {page}, log in and accept its terms, then set HF_TOKEN "
                f"to an access token of that account (or run `hf auth login`) and scan again")
    if isinstance(exc, getattr(e, "DisabledRepoError", ())):
        return f"{kind} repo {repo_id} has been disabled by the Hub ({page}); it cannot be downloaded"
    if isinstance(exc, e.RepositoryNotFoundError):
        if status == 401:
            return (f"{kind} repo {repo_id} not found at {endpoint}, or it is private: if you have access, set "
                    f"HF_TOKEN (or run `hf auth login`) and scan again (HTTP 401)")
        return f"{kind} repo {repo_id} not found at {endpoint} (HTTP {status or 404})"
    if isinstance(exc, e.RevisionNotFoundError):
        return f"revision {revision!r} not found in {kind} repo {repo_id} (branch, tag or 40-hex commit)"
    if isinstance(exc, getattr(e, "OfflineModeIsEnabled", ())) or isinstance(exc, e.LocalEntryNotFoundError):
        return (f"offline (HF_HUB_OFFLINE=1) and {kind} repo {repo_id}@{revision or 'main'} is not in the HF cache"
                f"{' at ' + cache_dir if cache_dir else ''}: download it once online first")
    if isinstance(exc, e.EntryNotFoundError):
        return f"a file listed by {kind} repo {repo_id} is missing on the server: {_first_line(exc)}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full while downloading {repo_id} into the HF cache{' at ' + cache_dir if cache_dir else ''}"
    if _is_timeout(exc):
        return (f"timed out talking to {endpoint} for {repo_id}; "
                "retry, or raise HF_HUB_DOWNLOAD_TIMEOUT / HF_HUB_ETAG_TIMEOUT")
    if isinstance(exc, e.HfHubHTTPError):
        if status == 401:
            return f"{endpoint} refused access to {repo_id} (HTTP 401): set HF_TOKEN to a valid token"
        if status == 403:
            return f"{endpoint} forbids access to {repo_id} (HTTP 403): your token lacks permission for it"
        if status == 429:
            return f"{endpoint} rate-limited the requests for {repo_id} (HTTP 429): wait and retry, with HF_TOKEN set"
        return f"{endpoint} answered HTTP {status or '?'} for {repo_id}: {_first_line(exc)}"
    if _is_connect(exc):
        return f"cannot connect to {endpoint} ({_first_line(exc)}); check the network, proxies or HF_ENDPOINT"
    if isinstance(exc, OSError):
        return f"{repo_id}: {exc.strerror or _first_line(exc)}"
    return f"{repo_id}: {type(exc).__name__}: {_first_line(exc)}"


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(x, TimeoutError) or "Timeout" in type(x).__name__ for x in _chain(exc))


def _is_connect(exc: BaseException) -> bool:
    return any(isinstance(x, ConnectionError) or "ConnectError" in type(x).__name__
               or "ConnectionError" in type(x).__name__ for x in _chain(exc))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
