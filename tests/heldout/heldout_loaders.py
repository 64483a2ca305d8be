"""TEST HARNESS ONLY: run REAL loaders on held-out regression fixtures in this throw-away process.

    python heldout_loaders.py JSON_LIST_OF_[family, file, marker]

Prints {file: {"marker": bool, "error": str | null}}. Payloads only create MODELSHIELD_MARKER.
"""
from __future__ import annotations

import io
import json
import os
import sys


def load(family: str, path: str) -> None:
    if family == "pickle-bytesio":  # what torch.load does with data.pkl: a C Unpickler over BytesIO
        import pickle
        with open(path, "rb") as fh:
            pickle.load(io.BytesIO(fh.read()))
    elif family == "torch":
        import torch
        torch.load(path, weights_only=False)
    else:
        raise ValueError(family)


def main() -> None:
    out = {}
    for family, path, marker in json.loads(sys.argv[1]):
        os.environ["MODELSHIELD_MARKER"] = marker
        error = None
        try:
            load(family, path)
        except Exception as exc:  # the payload ran (or not) before any error; the marker tells
            error = f"{type(exc).__name__}: {exc}"[:200]
        out[path] = {"marker": os.path.exists(marker), "error": error}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
