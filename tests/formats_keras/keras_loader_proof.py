"""Loads each malicious Keras fixture with the real loader (safe_mode=False) in this subprocess.

Usage: python keras_loader_proof.py MARKER FILE... ; prints "<file> <marker written?>" per file.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

marker = sys.argv[1]
for path in sys.argv[2:]:
    if os.path.exists(marker):
        os.remove(marker)
    try:
        model = keras.models.load_model(path, safe_mode=False, compile=False)
        model.predict(np.zeros((1, 4), dtype="float32"), verbose=0)
    except Exception as exc:  # noqa: BLE001 - report, the test asserts on the marker
        print("error", type(exc).__name__, exc, file=sys.stderr)
    print(os.path.basename(path), os.path.exists(marker))
