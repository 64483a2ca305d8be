"""Shared test helpers: run the real CLI in a subprocess, scan with the public API."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("KERAS_BACKEND", "torch")


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`modelshield ARGS...` as a user runs it (python -m, same interpreter)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelshield", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def scan_json(*args: str, **kw) -> tuple[int, dict]:
    """Run `modelshield scan --format json ARGS` and parse the report."""
    proc = run_cli("scan", "--format", "json", *args, **kw)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture
def cli():
    return run_cli
