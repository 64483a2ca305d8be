"""A real Postgres server for the tests: initdb + pg_ctl on a temporary data dir and a free port."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin(name: str) -> str | None:
    """`initdb`/`pg_ctl` from PATH or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Started by `start()`, stopped by `stop()`; `url` names a database the tests may use."""

    def __init__(self) -> None:
        # not under pytest's tmp dirs: they are private to the user running the tests (see prefix)
        self.root = Path(tempfile.mkdtemp(prefix="modelshield-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://scanner@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: run the server as the postgres user then
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        assert initdb and pg_ctl
        if self.prefix:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
        self._run(initdb, "-D", str(self.data), "-U", "scanner", "--auth=trust", "--no-sync", "-E", "UTF8")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        if pg_ctl and self.data.exists():
            subprocess.run([*self.prefix, pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
