"""Session-wide test settings; the helper functions live in the `helpers` package (tests/helpers)."""
from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
# Scans in tests neither read nor write the user's result store (a hit would hide what a test
# checks); the store's own tests name a store explicitly (tests/store).
os.environ.setdefault("MODELSHIELD_STORE", "off")

# The suite starts a few hundred Python subprocesses (the CLI as users run it, loader proofs,
# fixture builders). With PYTHONDONTWRITEBYTECODE set (as in many containers) each one recompiles
# every module it imports from source. Keep the bytecode outside the source tree instead: one cache
# for this process and its children, validated by source mtime and size as usual, written
# atomically (safe with several workers), so the tree stays free of __pycache__ either way.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    prefix = os.path.join(tempfile.gettempdir(), "modelshield-test-pycache")
    os.environ.setdefault("PYTHONPYCACHEPREFIX", prefix)
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False
