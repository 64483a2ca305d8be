"""TEST HARNESS ONLY: run the REAL loaders on fixtures (loader views, red team) in this (throw-away) process.

    python real_loaders.py FAMILY JSON_LIST_OF_[file, marker]
    (FAMILY: pickle pypickle joblib numpy pandas torch torch-bytesio)

Prints {file: {"marker": bool, "error": str | null}} as JSON. The fixtures' payloads only create
the marker file named by MODELSHIELD_MARKER; the caller runs this in a subprocess and a scratch dir.
Modules planted on PYTHONPATH by the caller (`ms_redteam_*`) stand for any module whose import
runs code (a repository's own .py, stdlib `antigravity`); they are forgotten after each load.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def load(family: str, path: str) -> None:
    if family == "pickle":
        import pickle
        with open(path, "rb") as fh:
            pickle.load(fh)  # the point of this harness: prove the fixture executes
    elif family == "pypickle":
        import pickle
        with open(path, "rb") as fh:
            pickle._load(fh)
    elif family == "joblib":
        import joblib
        joblib.load(path)
    elif family == "numpy":
        import numpy
        numpy.load(path, allow_pickle=True)
    elif family == "pandas":
        import pandas
        pandas.read_pickle(path)  # compression inferred from the name
    elif family == "torch":
        import torch
        torch.load(path, weights_only=False)
    elif family == "torch-bytesio":  # bytes already in memory (downloaded, read from an archive)
        import io

        import torch
        with open(path, "rb") as fh:
            torch.load(io.BytesIO(fh.read()), weights_only=False)
    else:
        raise ValueError(family)


def main() -> None:
    signal.alarm(120)
    family, items = sys.argv[1], json.loads(sys.argv[2])
    known = set(sys.modules)
    results = {}
    for path, marker in items:
        for name in set(sys.modules) - known:
            if name.startswith("ms_redteam_"):
                del sys.modules[name]  # imported again (and run again) by the next fixture
        os.environ["MODELSHIELD_MARKER"] = marker
        error = None
        try:
            load(family, path)
        except BaseException as exc:  # noqa: BLE001 - many payloads make the loader fail afterwards
            error = f"{type(exc).__name__}: {exc}"[:300]
        time.sleep(0.02)
        results[path] = {"marker": os.path.exists(marker), "error": error}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
