"""Builds the Keras fixtures with the real library (run in a subprocess: KERAS_BACKEND=torch).

Usage: python keras_fixture_builder.py OUTDIR MARKER. The Lambda fixtures carry a harmless
marker: writing the file MARKER. Saving traces the lambda once, so the marker is deleted at the end.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import torch  # noqa: E402

out, marker = sys.argv[1], sys.argv[2]

benign = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
benign.compile(optimizer="adam", loss="mse", metrics=["mae"])
benign.save(os.path.join(out, "benign.keras"))
benign.save(os.path.join(out, "benign.h5"))

inp = keras.Input((4,))
hidden = keras.layers.Dense(2)(inp)
benign_fn = keras.Model(inp, keras.layers.Activation("sigmoid")(hidden))
benign_fn.save(os.path.join(out, "benign_functional.keras"))
with open(os.path.join(out, "benign_config.json"), "w") as fh:
    fh.write(benign_fn.to_json())

inp = keras.Input((4,))
# The marker path must be a constant of the code object (keras drops globals; defaults break).
marker_fn = eval(f"lambda x: (open({marker!r}, 'w').write('pwned'), x)[1]")  # noqa: S307 - test fixture
payload = keras.layers.Lambda(marker_fn, output_shape=(4,))(inp)
evil = keras.Model(inp, payload)
evil.save(os.path.join(out, "lambda.keras"))
evil.save(os.path.join(out, "lambda.h5"))

inp = keras.Input((4,))
harmless = keras.Model(inp, keras.layers.Lambda(lambda x: x * 2.0)(inp))
harmless.save(os.path.join(out, "lambda_plain.keras"))

wrapped = keras.Sequential([keras.Input((4,)), keras.layers.TorchModuleWrapper(torch.nn.Linear(4, 2))])
wrapped.save(os.path.join(out, "torch_wrapper.keras"))

if os.path.exists(marker):
    os.remove(marker)
print("built")
