"""Shared test helpers, imported as a package (`from helpers.cli import run_cli`), never from conftest.

`tests/` is on sys.path because pytest inserts the directory of the root conftest.py (rootdir-relative
"prepend" import mode), the same way the per-area helper modules (hub_server, corpus_helpers...) import.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (pyproject.toml, fixtures/, docs/)."""
