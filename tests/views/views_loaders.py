"""TEST HARNESS ONLY: run the REAL loaders on loader-view fixtures in this (throw-away) process.

    python views_loaders.py FAMILY JSON_LIST_OF_[file, marker]

Prints {file: {"marker": bool, "error": str | null}} as JSON. The fixtures' payloads only create
the marker file named by MODELSHIELD_MARKER; the caller runs this in a subprocess and a scratch dir.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings


def load(family: str, path: str) -> None:
    if family == "pickle":
        import pickle
        with open(path, "rb") as fh:
            pickle.load(fh)  # the point of this harness: prove the fixture executes
    elif family == "joblib":
        import joblib
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            joblib.load(path)
    elif family == "numpy":
        import numpy
        numpy.load(path, allow_pickle=True)
    elif family == "pandas":
        import pandas
        pandas.read_pickle(path)
    elif family == "torch":
        import torch
        torch.load(path, weights_only=False)
    else:
        raise ValueError(family)


def main() -> None:
    signal.alarm(120)
    family, items = sys.argv[1], json.loads(sys.argv[2])
    results = {}
    for path, marker in items:
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
