"""Installed distributions: this interpreter's (importlib.metadata) or a deployment interpreter's
(`--python PATH`, asked in a subprocess with `-I` so that neither PYTHONPATH nor the user site of
the calling shell leaks in). Only the ML-relevant packages (data/ml_packages.toml) are kept."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from modelshield.scanner.findings import RuntimePackage
from . import tables
from .interface import DependencySource, Runtime, pypi_purl
from .errors import InputError

TIMEOUT = 60.0
MAX_OUTPUT = 16 * 1024 * 1024

# Run by the deployment interpreter (any Python >= 3.8): prints its distributions as JSON.
PROBE = r"""
import json, sys
from importlib import metadata
out = []
for d in metadata.distributions():
    m = d.metadata
    out.append({"name": m["Name"], "version": d.version,
                "license_expression": m.get("License-Expression"), "license": m.get("License"),
                "classifiers": [c for c in (m.get_all("Classifier") or []) if c.startswith("License ::")]})
sys.stdout.write(json.dumps({"executable": sys.executable, "python": sys.version.split()[0], "distributions": out}))
"""


def license_of(entry: dict[str, Any]) -> str | None:
    """License-Expression, else a one-line License field, else the last License classifier."""
    expr = entry.get("license_expression")
    if isinstance(expr, str) and expr.strip():
        return expr.strip()
    text = entry.get("license")
    if isinstance(text, str) and text.strip() and "\n" not in text.strip() and len(text) <= 100 \
            and text.strip().upper() != "UNKNOWN":
        return text.strip()
    classifiers = [c for c in entry.get("classifiers") or [] if isinstance(c, str)]
    return classifiers[-1].split("::")[-1].strip() if classifiers else None


def packages_from(entries: list[dict[str, Any]], where: str) -> list[RuntimePackage]:
    out: dict[str, RuntimePackage] = {}
    for entry in entries:
        name = entry.get("name")
        if not isinstance(name, str) or not tables.is_ml_package(name):
            continue
        canon = canonicalize_name(name)
        version = entry.get("version") if isinstance(entry.get("version"), str) else None
        if canon in out:  # shadowed duplicates on sys.path: the first one is what imports
            continue
        out[canon] = RuntimePackage(name=canon, version=version, source=where,
                                    purl=pypi_purl(canon, version) if version else None, license=license_of(entry))
    return sorted(out.values(), key=lambda p: p.name)


class CurrentEnvironment(DependencySource):
    def collect(self) -> Runtime:
        # Look up only the ML-relevant names: reading every installed METADATA costs ~1 s on big envs.
        entries = []
        for name in tables.ml_packages():
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            meta: Any = dist.metadata  # an email.message.Message underneath
            entries.append({"name": meta["Name"], "version": dist.version,
                            "license_expression": meta.get("License-Expression"), "license": meta.get("License"),
                            "classifiers": [c for c in (meta.get_all("Classifier") or [])
                                            if c.startswith("License ::")]})
        return Runtime(packages=packages_from(entries, "environment"), source=f"environment:{sys.executable}")


class Interpreter(DependencySource):
    """Another Python (a deployment venv or image): queried in a subprocess, bounded in time."""

    def __init__(self, python: Path):
        self.python = Path(python)

    def collect(self) -> Runtime:
        if not self.python.exists():
            raise InputError(f"--python {self.python}: no such file")
        if not os.access(self.python, os.X_OK) or self.python.is_dir():
            raise InputError(f"--python {self.python}: not an executable")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # noqa: TID251 - the environment handed to the probe subprocess
        try:
            proc = subprocess.run([str(self.python), "-I", "-c", PROBE], capture_output=True, timeout=TIMEOUT,
                                  env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InputError(f"--python {self.python}: no answer within {TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise InputError(f"--python {self.python}: cannot run it ({exc.strerror or exc})") from None
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise InputError(f"--python {self.python}: exited {proc.returncode} ({tail[0][:200]})")
        if len(proc.stdout) > MAX_OUTPUT:
            raise InputError(f"--python {self.python}: answer larger than {MAX_OUTPUT} bytes")
        try:
            data = json.loads(proc.stdout)
            entries = data["distributions"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"--python {self.python}: did not answer with a distribution list") from None
        where = f"interpreter {data.get('executable') or self.python} (Python {data.get('python', '?')})"
        return Runtime(packages=packages_from(entries if isinstance(entries, list) else [], "environment"),
                       source=f"environment:{data.get('executable') or self.python}", notes=[f"read from {where}"])
