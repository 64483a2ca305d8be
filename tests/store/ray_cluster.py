"""A real local Ray cluster for the tests: `ray start --head --block` on 127.0.0.1, 2 CPUs."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Cluster:
    """`start()` a head node (its own process group), `stop()` it; `env` points clients at it."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tmp = Path(tempfile.mkdtemp(prefix="msray-"))  # short: Ray's socket paths have a length limit
        self.env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{self.port}", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_AUTH_MODE": "disabled"}  # a throw-away cluster on the loopback interface
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        # this interpreter's Ray (not a `ray` found on PATH): the workers then import this modelshield
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={self.port}",
               "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
               f"--temp-dir={self.tmp}"]
        log = open(self.tmp / "head.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"block forever" in (self.tmp / "head.log").read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        tail = (self.tmp / "head.log").read_bytes()[-2000:].decode(errors="replace")
        self.stop()
        raise RuntimeError(f"ray head did not start: {tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # `ray start --block` stops what it started
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)
