"""Test helpers: an OSV-compatible API served on 127.0.0.1, OSV dumps built as zips, records."""
from __future__ import annotations

import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from helpers.cli import invoke  # noqa: F401 - re-exported: the advisories tests run the CLI in process


def osv_record(ident: str, package: str, introduced: str = "0", fixed: str | None = None, *, aliases=(),
               modified: str = "2026-11-30T00:00:00Z", summary: str = "test advisory", ml: dict | None = None,
               withdrawn: str | None = None) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    entry: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": package},
                             "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    if ml is not None:
        entry["database_specific"] = {"ml": ml}
    record = {"schema_version": "1.7.0", "id": ident, "modified": modified, "aliases": list(aliases),
              "summary": summary, "details": summary, "affected": [entry],
              "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"}]}
    if withdrawn:
        record["withdrawn"] = withdrawn
    return record


def build_dump(path: Path, records: list[dict[str, Any]], extra: dict[str, bytes] | None = None) -> Path:
    """An OSV ecosystem dump: one <id>.json per record at the zip root."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for record in records:
            zf.writestr(f"{record['id']}.json", json.dumps(record))
        for name, body in (extra or {}).items():
            zf.writestr(name, body)
    return path


class FakeOsv:
    """A small OSV API: POST /v1/querybatch (paged) and GET /v1/vulns/{id}, with failure modes.

    `page_size` splits a package's ids over pages linked by next_page_token; `fail_batch` answers
    the next N querybatch calls with HTTP 503; `malformed` answers querybatch with broken JSON;
    `delay` sleeps before answering (timeouts).
    """

    def __init__(self, records: list[dict[str, Any]], page_size: int = 2):
        self.records = {r["id"]: r for r in records}
        self.page_size = page_size
        self.fail_batch = 0
        self.always_fail = False
        self.malformed = False
        self.delay = 0.0
        self.batch_calls: list[dict[str, Any]] = []
        self.vuln_calls: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                owner.batch_calls.append(body)
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.always_fail or owner.fail_batch:
                    owner.fail_batch = max(0, owner.fail_batch - 1)
                    return self._send(503, b'{"error": "unavailable"}')
                if owner.malformed:
                    return self._send(200, b'{"results": [')
                results = []
                for query in body["queries"]:
                    name = query["package"]["name"]
                    ids = sorted(i for i, r in owner.records.items()
                                 if any(a["package"]["name"] == name for a in r["affected"]))
                    start = int(query.get("page_token") or 0)
                    page = ids[start:start + owner.page_size]
                    result: dict[str, Any] = {
                        "vulns": [{"id": i, "modified": owner.records[i]["modified"]} for i in page]}
                    if start + owner.page_size < len(ids):
                        result["next_page_token"] = str(start + owner.page_size)
                    results.append(result)
                self._send(200, json.dumps({"results": results}).encode())

            def do_GET(self) -> None:
                ident = self.path.rsplit("/", 1)[-1]
                owner.vuln_calls.append(ident)
                if ident not in owner.records:
                    return self._send(404, b'{"code": 5, "message": "Bug not found."}')
                self._send(200, json.dumps(owner.records[ident]).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOsv":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (offline)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
