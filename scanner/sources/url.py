"""`http(s)://...`: one file, streamed with `requests` to a temp file under a size cap, then scanned.

Never executed. TLS verification stays on; redirects are followed by hand (at most
`MAX_REDIRECTS`, http(s) only, never from https down to http) so each hop is checked; a compressed
answer is refused (we ask for identity); the body is read as it arrives, so a server that goes
silent (`MODELSHIELD_DOWNLOAD_TIMEOUT`, default 60 s) or drips bytes (under `MIN_BYTES` per such
window) is stopped; the temp folder is removed by `Resolved.finish` once the scan is done (or at
once on error).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Any, BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

from .. import env
from ..findings import TargetResult
from .interface import Resolved, SourceOptions
from ..errors import DownloadRefused

MAX_REDIRECTS = 5
DEFAULT_CAP = 20 * 10**9  # bytes, when --max-download is not given
CHUNK = 1 << 20
CONNECT_TIMEOUT = 15
READ_TIMEOUT = 60  # seconds without a byte; MODELSHIELD_DOWNLOAD_TIMEOUT overrides
MIN_BYTES = 1024  # a download must bring this much per READ_TIMEOUT window, or it is a stall (slow drip)


def _read_timeout() -> float:
    return env.download_timeout(READ_TIMEOUT)


def accepts(target: str) -> bool:
    """http:// and https:// targets."""
    return target.startswith(("https://", "http://"))


def resolve(target: str, options: SourceOptions) -> Resolved:
    """Download `target` into a private temp folder and return it as the one file to scan."""
    import requests
    import urllib3

    result = TargetResult(target=target, kind="url")
    cap = options.max_download if options.max_download is not None else DEFAULT_CAP
    tmpdir = tempfile.mkdtemp(prefix="modelshield-url-", dir=options.cache_dir)

    def cleanup(_res: TargetResult | None = None) -> None:
        shutil.rmtree(tmpdir, ignore_errors=True)

    session = requests.Session()
    session.headers["User-Agent"] = "modelshield (static scanner; never executes downloads)"
    session.headers["Accept-Encoding"] = "identity"  # the bytes as served, sizes comparable
    url = target
    window = _read_timeout()
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            response = session.get(url, stream=True, allow_redirects=False, timeout=(CONNECT_TIMEOUT, window),
                                   verify=True)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                nxt = urljoin(url, location)
                if urlsplit(url).scheme == "https" and urlsplit(nxt).scheme != "https":
                    raise DownloadRefused(f"refusing the redirect from https to {urlsplit(nxt).scheme}: {nxt}")
                if not nxt.startswith(("https://", "http://")):
                    raise DownloadRefused(f"refusing a redirect to {nxt}")
                url = nxt
                continue
            break
        else:
            raise DownloadRefused(f"more than {MAX_REDIRECTS} redirects")
        result.provenance = {"source": "url", "url": target, "final_url": url, "status": response.status_code,
                             "content_type": response.headers.get("Content-Type")}
        if response.status_code >= 400:
            response.close()
            raise DownloadRefused(f"HTTP {response.status_code} {response.reason or ''}".strip())
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            response.close()
            raise DownloadRefused(f"{int(declared)} bytes is over the --max-download cap of {cap} bytes")
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            # we asked for identity; what a loader gets from a compressed answer depends on its client
            response.close()
            raise DownloadRefused(f"the server compressed the file (Content-Encoding: {encoding[:40]}) although "
                           "modelshield asked for the bytes as published")
        name = _file_name(url, response.headers.get("Content-Disposition"))
        path = os.path.join(tmpdir, name)
        with response, open(path, "wb") as fh:
            written = _stream(response, fh, cap, window)
        if declared and declared.isdigit() and written != int(declared):
            raise DownloadRefused(f"truncated download: {written} of {declared} bytes")
    except DownloadRefused as exc:
        cleanup()
        result.error = f"{target}: {exc}"
        return Resolved(result)
    except requests.exceptions.SSLError as exc:
        cleanup()
        reason = re.search(r"certificate verify failed: ([^(\"]+)", str(exc))
        result.error = f"{target}: TLS verification failed ({reason.group(1).strip() if reason else _short(exc)})"
        return Resolved(result)
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
        cleanup()
        result.error = f"{target}: timed out (no byte for {window:g} s; MODELSHIELD_DOWNLOAD_TIMEOUT)"
        return Resolved(result)
    except urllib3.exceptions.HTTPError as exc:
        cleanup()
        result.error = f"{target}: the download broke off: {type(exc).__name__}: {_short(exc)}"
        return Resolved(result)
    except requests.exceptions.RequestException as exc:
        cleanup()
        result.error = f"{target}: {type(exc).__name__}: {_short(exc)}"
        return Resolved(result)
    except OSError as exc:
        cleanup()
        result.error = f"{target}: cannot write the download: {exc.strerror or exc}"
        return Resolved(result)
    result.root = tmpdir
    return Resolved(result, [(name, path, written)], total_bytes=written, finish=cleanup)


def _stream(response: Any, fh: BinaryIO, cap: int, window: float) -> int:
    """Copy the body to `fh` as it arrives (`read1`: never waits for a full chunk), under `cap` bytes,
    refusing a drip of under MIN_BYTES per `window` seconds. Returns the bytes written."""
    written = 0
    window_start, window_bytes = time.monotonic(), 0
    raw = response.raw
    while True:
        chunk = raw.read1(CHUNK) if hasattr(raw, "read1") else raw.read(CHUNK)
        if not chunk:
            return written
        written += len(chunk)
        window_bytes += len(chunk)
        if written > cap:
            raise DownloadRefused(f"the download exceeds the --max-download cap of {cap} bytes")
        fh.write(chunk)
        now = time.monotonic()
        if now - window_start >= window:
            if window_bytes < MIN_BYTES:
                raise DownloadRefused(f"the server stalls (under {MIN_BYTES} bytes in {window:g} s)")
            window_start, window_bytes = now, 0


def _file_name(url: str, disposition: str | None) -> str:
    """A safe local name: Content-Disposition filename, else the URL's last path segment."""
    name = ""
    if disposition:
        m = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)", disposition, re.I)
        if m:
            name = unquote(m.group(1))
    if not name:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    name = re.sub(r"[^\w.\-+]", "_", name)[:200]
    return name or "download"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
