"""Run the CLI as tests need it: in a subprocess as a user runs it, or in-process through typer's CliRunner.

Use the subprocess (`run_cli`, `scan_json_process`) where the process is the point: the console entry
point, environment read by libraries at import time (huggingface_hub reads HF_* once), signals, exit
status of the interpreter, files the process leaves behind. Use `invoke` (`scan_json`) otherwise: it runs
the same typer app with the same arguments, without an interpreter start and its imports per call (about
a second each), and an exception escaping the app fails the test as a traceback would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`modelshield ARGS...` as a user runs it (python -m, same interpreter)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelshield", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def scan_json_process(*args: str, **kw: Any) -> tuple[int, dict]:
    """Run `modelshield scan --format json ARGS` in a subprocess and parse the report."""
    proc = run_cli("scan", "--format", "json", *args, **kw)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@dataclass(frozen=True)
class Result:
    """What `invoke` returns: the fields of subprocess.CompletedProcess that tests read."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict[str, str | None] | None = None,
           cwd: str | os.PathLike[str] | None = None) -> Result:
    """`modelshield ARGS...` in this process (typer's CliRunner): exit code, stdout, stderr.

    `env` is applied for the call only (None unsets a variable); `cwd` is entered for the call only.
    An exception escaping the app is re-raised: the CLI must never end in a traceback.
    """
    from modelshield.cli import app

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env=env, prog_name="modelshield")
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def scan_json(*args: str, env: dict[str, str | None] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> tuple[int, dict]:
    """`modelshield scan --format json ARGS` in this process; the parsed report."""
    result = invoke("scan", "--format", "json", *args, env=env, cwd=cwd)
    return result.returncode, json.loads(result.stdout)
