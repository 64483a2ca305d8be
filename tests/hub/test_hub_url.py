"""Direct URL targets: streamed to a temp file under a cap, hashed, scanned, removed afterwards."""
from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.cli import run_cli, scan_json_process
from hub_repos import model_card

BODY = model_card()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/files/README.md":
            self._send(200, BODY, {"Content-Type": "text/markdown"})
        elif self.path == "/redirect":
            self._send(302, b"", {"Location": "/files/README.md"})
        elif self.path.startswith("/loop"):
            n = int(self.path[5:] or 0)
            self._send(302, b"", {"Location": f"/loop{n + 1}"})
        elif self.path == "/big.bin":
            self._send(200, b"\0" * 5000, {"Content-Disposition": 'attachment; filename="../../evil name.bin"'})
        elif self.path == "/liar.bin":  # no Content-Length: the cap is enforced while streaming
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"\0" * 5000)
            self.close_connection = True
        else:
            self._send(404, b"missing", {})

    def _send(self, status, body, headers):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def test_url_is_downloaded_hashed_scanned_and_removed(server, tmp_path):
    code, report = scan_json_process(f"{server}/redirect", env={**ENV, "TMPDIR": str(tmp_path)})
    target = report["targets"][0]
    assert target["kind"] == "url" and target["error"] is None
    assert target["provenance"] == {"source": "url", "url": f"{server}/redirect",
                                    "final_url": f"{server}/files/README.md", "status": 200,
                                    "content_type": "text/markdown"}
    (art,) = target["artefacts"]
    assert art["path"] == "README.md" and art["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert art["format"] == "model_card"
    assert not os.path.exists(target["root"]) and os.listdir(tmp_path) == []  # temp folder removed
    assert code == 0


def test_hostile_file_name_is_neutralised(server, tmp_path):
    code, report = scan_json_process(f"{server}/big.bin", env={**ENV, "TMPDIR": str(tmp_path)})
    (art,) = report["targets"][0]["artefacts"]
    assert art["path"] == "evil_name.bin" and art["size"] == 5000
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path,args,needle", [
    ("/nothing", [], "HTTP 404"),
    ("/big.bin", ["--max-download", "1000"], "over the --max-download cap"),
    ("/liar.bin", ["--max-download", "1000"], "exceeds the --max-download cap"),
    ("/loop0", [], "more than 5 redirects"),
])
def test_url_errors_one_line_exit_2(server, tmp_path, path, args, needle):
    proc = run_cli("scan", f"{server}{path}", *args, env={**ENV, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("modelshield: error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert os.listdir(tmp_path) == []  # nothing left behind


def _self_signed(tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return tmp_path / "c.pem", tmp_path / "k.pem"


def test_tls_is_verified_and_https_never_downgrades(server, tmp_path):
    """A self-signed certificate is refused; an https -> http redirect is refused."""
    import ssl

    class Redirect(_Handler):
        def do_GET(self):
            self._send(302, b"", {"Location": f"{server}/files/README.md"})

    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = _self_signed(certs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    work = tmp_path / "work"
    work.mkdir()
    try:
        https = f"https://127.0.0.1:{httpd.server_address[1]}/x.bin"
        proc = run_cli("scan", https, env={**ENV, "TMPDIR": str(work)})
        assert proc.returncode == 2 and "TLS verification failed" in proc.stderr, proc.stderr
        # trusting the test CA, the hop to plain http is what gets refused
        proc = run_cli("scan", https, env={**ENV, "TMPDIR": str(work), "REQUESTS_CA_BUNDLE": str(cert)})
        assert proc.returncode == 2 and "refusing the redirect from https to http" in proc.stderr, proc.stderr
        assert os.listdir(work) == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_helpers():
    from modelshield.scanner.sources import url

    assert url.accepts("https://x/y") and url.accepts("http://x/y") and not url.accepts("hf://a/b")
    assert url._file_name("https://h/a/b/model%20v1.bin?x=1", None) == "model_v1.bin"
    assert url._file_name("https://h/", 'attachment; filename="..\\..\\x.pkl"') == "x.pkl"
    assert url._file_name("https://h/", None) == "download"
