"""`http(s)://...`: one file, streamed with `requests` to a temp file under a size cap, then scanned.

Never executed. TLS verification stays on; redirects are followed by hand (at most
`MAX_REDIRECTS`, never from https down to http) so each hop is checked; the temp folder is removed
by `Resolved.finish` once the scan is done (or at once on error).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from urllib.parse import unquote, urljoin, urlsplit

from ..findings import TargetResult
from .interface import Resolved, SourceOptions

MAX_REDIRECTS = 5
DEFAULT_CAP = 20 * 10**9  # bytes, when --max-download is not given
CHUNK = 1 << 20
TIMEOUT = (15, 120)  # connect, read (seconds between bytes)


def accepts(target: str) -> bool:
    """http:// and https:// targets."""
    return target.startswith(("https://", "http://"))


def resolve(target: str, options: SourceOptions) -> Resolved:
    """Download `target` into a private temp folder and return it as the one file to scan."""
    import requests

    result = TargetResult(target=target, kind="url")
    cap = options.max_download if options.max_download is not None else DEFAULT_CAP
    tmpdir = tempfile.mkdtemp(prefix="modelshield-url-", dir=options.cache_dir)

    def cleanup(_res: TargetResult | None = None) -> None:
        shutil.rmtree(tmpdir, ignore_errors=True)

    session = requests.Session()
    session.headers["User-Agent"] = "modelshield (static scanner; never executes downloads)"
    session.headers["Accept-Encoding"] = "identity"  # the bytes as served, sizes comparable
    url = target
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            response = session.get(url, stream=True, allow_redirects=False, timeout=TIMEOUT, verify=True)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                nxt = urljoin(url, location)
                if urlsplit(url).scheme == "https" and urlsplit(nxt).scheme != "https":
                    raise _Refused(f"refusing the redirect from https to {urlsplit(nxt).scheme}: {nxt}")
                if not nxt.startswith(("https://", "http://")):
                    raise _Refused(f"refusing a redirect to {nxt}")
                url = nxt
                continue
            break
        else:
            raise _Refused(f"more than {MAX_REDIRECTS} redirects")
        result.provenance = {"source": "url", "url": target, "final_url": url, "status": response.status_code,
                             "content_type": response.headers.get("Content-Type")}
        if response.status_code >= 400:
            response.close()
            raise _Refused(f"HTTP {response.status_code} {response.reason or ''}".strip())
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            response.close()
            raise _Refused(f"{int(declared)} bytes is over the --max-download cap of {cap} bytes")
        name = _file_name(url, response.headers.get("Content-Disposition"))
        path = os.path.join(tmpdir, name)
        written = 0
        with response, open(path, "wb") as fh:
            for chunk in response.iter_content(CHUNK):
                written += len(chunk)
                if written > cap:
                    raise _Refused(f"the download exceeds the --max-download cap of {cap} bytes")
                fh.write(chunk)
        if declared and declared.isdigit() and written != int(declared):
            raise _Refused(f"truncated download: {written} of {declared} bytes")
    except _Refused as exc:
        cleanup()
        result.error = f"{target}: {exc}"
        return Resolved(result)
    except requests.exceptions.SSLError as exc:
        cleanup()
        reason = re.search(r"certificate verify failed: ([^(\"]+)", str(exc))
        result.error = f"{target}: TLS verification failed ({reason.group(1).strip() if reason else _short(exc)})"
        return Resolved(result)
    except requests.exceptions.Timeout:
        cleanup()
        result.error = f"{target}: timed out"
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


class _Refused(Exception):
    pass


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
