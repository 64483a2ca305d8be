"""A TorchScript constant is raw tensor bytes: `constants/<key>` is read as storage by
torch.jit.load, never unpickled, so its content (here a uint8 constant holding a live pickle) is
not a finding. Proven under the real loader: the model loads and runs, the pickle never runs."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from modelshield import scan

BUILD = r"""
import sys, torch
payload = open(sys.argv[2], "rb").read()
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.frombuffer(bytearray(payload), dtype=torch.uint8).clone())
    def forward(self, x):
        return x + self.b
torch.jit.save(torch.jit.freeze(torch.jit.script(M().eval())), sys.argv[1])
"""
LOAD = r"""
import sys, torch
m = torch.jit.load(sys.argv[1])
out = m(torch.zeros(1, dtype=torch.uint8))
assert bytes(out.tolist()) == open(sys.argv[2], "rb").read()
print("loaded")
"""


def test_a_constant_holding_pickle_bytes_is_data(tmp_path: Path):
    marker = tmp_path / "MARKER"
    command = f"touch {marker}".encode()
    live = b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    (tmp_path / "payload").write_bytes(live)
    model = tmp_path / "frozen.pt"
    builder = tmp_path / "build.py"  # a file: torch.jit.script reads the module's source
    builder.write_text(BUILD)
    proc = subprocess.run([sys.executable, str(builder), str(model), str(tmp_path / "payload")], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with zipfile.ZipFile(model) as z:  # the constant is stored as the very bytes of the pickle
        assert any(n.endswith("/constants/0") and z.read(n) == live for n in z.namelist())
    report = scan(str(model))
    [artefact] = report.artefacts
    assert artefact.format.value == "torchscript" and artefact.verdict.value == "clean", artefact.findings
    assert artefact.properties["torch_zip"]["storages"] >= 1
    proc = subprocess.run([sys.executable, "-c", LOAD, str(model), str(tmp_path / "payload")], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]
    assert not marker.exists()  # the real loader never unpickled it
    # and the bytes are a live pickle: what a loader that unpickled them would run
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(open(sys.argv[1],'rb').read())",
                    str(tmp_path / "payload")], check=True, timeout=60)
    assert marker.exists()
