"""Real-library artefacts through the format modules: benign ones clean, malicious twins unsafe.

Also the differential check against CPython's own Unpickler with inert hooks: the engine must
report the same imports and call sites, stream by stream.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import scan_json
from pickle_vm_helpers import call, glob, oracle, prog, run_vm, s

from modelshield import scan
from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.formats import pickle_text

ROOT = Path(__file__).resolve().parents[2]


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture(scope="session")
def benign(tmp_path_factory) -> Path:
    import joblib
    import pandas as pd
    import torch
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    out = tmp_path_factory.mktemp("benign")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
                            torch.nn.Linear(4, 2), torch.nn.LSTM(2, 3), torch.nn.LayerNorm(3))
    torch.save(m.state_dict(), out / "state_dict.pt")
    torch.save(m, out / "full_module.pt")
    torch.save(m.state_dict(), out / "legacy.pt", _use_new_zipfile_serialization=False)
    opt = torch.optim.Adam(m.parameters())
    m[4](torch.randn(1, 4)).sum().backward()
    opt.step()
    torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
                "half": torch.ones(2, dtype=torch.float16), "bf": torch.ones(2, dtype=torch.bfloat16),
                "size": torch.Size([2]), "sparse": torch.eye(2).to_sparse()}, out / "checkpoint.pt")
    np.save(out / "plain.npy", np.arange(10.0))
    np.save(out / "objects.npy", np.array([1, "two", None, (1, 2)], dtype=object), allow_pickle=True)
    np.save(out / "structured.npy", np.zeros(2, dtype=[("Other", "i4"), ("b", "O")]), allow_pickle=True)
    X = np.random.RandomState(0).rand(30, 3)
    y = (X[:, 0] > .5).astype(int)
    pipe = Pipeline([("s", StandardScaler()), ("pca", PCA(2)), ("lr", LogisticRegression())]).fit(X, y)
    joblib.dump(pipe, out / "pipe.joblib")
    joblib.dump(pipe, out / "pipe_z.joblib", compress=3)
    joblib.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), out / "rf.joblib")
    joblib.dump({"enc": OneHotEncoder().fit([["a"], ["b"]]), "obj": np.array(["x", 1], dtype=object)},
                out / "mixed.joblib")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": pd.to_datetime(["2020-01-01", "2021-01-01"]),
                       "d": pd.Categorical(["u", "v"])})
    df.to_pickle(out / "frame.pkl")
    for proto in range(6):
        with open(out / f"objects_p{proto}.pkl", "wb") as f:
            pickle.dump({"np": np.arange(3), "set": {1, 2}, "od": collections.OrderedDict(a=1), "c": 1j,
                         "b": b"x", "l": [1.5, None, True]}, f, protocol=proto)
    return out


def _blocking(report: dict) -> dict:
    out = {}
    for art in report["targets"][0]["artefacts"]:
        bad = [(f["rule_id"], f.get("callable")) for f in art["findings"] if f["severity"] != "info"]
        if bad or art["verdict"] != "clean":
            out[art["path"]] = (art["verdict"], bad)
    return out


def test_benign_real_library_artefacts_are_clean_with_no_finding_above_info(benign):
    code, report = scan_json(str(benign))
    assert _blocking(report) == {}
    assert code == 0
    formats = {a["path"]: a["format"] for a in report["targets"][0]["artefacts"]}
    assert formats["legacy.pt"] == "torch_legacy" and formats["objects_p0.pkl"] == "pickle_text"
    assert formats["pipe.joblib"] == "pickle" and formats["objects.npy"] == "numpy"
    props = {a["path"]: a["properties"] for a in report["targets"][0]["artefacts"]}
    assert props["pipe.joblib"]["pickle"]["flavour"] == "joblib"
    assert props["legacy.pt"]["torch_legacy"]["streams"] == 5


def test_malicious_twins_are_unsafe(tmp_path):
    import joblib
    import torch

    torch.save({"w": torch.ones(2), "x": Evil()}, tmp_path / "evil.pt")
    torch.save({"w": torch.ones(2), "x": Evil()}, tmp_path / "evil_legacy.pt", _use_new_zipfile_serialization=False)
    joblib.dump({"a": np.arange(4.0), "x": Evil()}, tmp_path / "evil.joblib")
    joblib.dump({"a": np.arange(4.0), "o": np.array([Evil(), 1], dtype=object)}, tmp_path / "evil_obj.joblib")
    np.save(tmp_path / "evil.npy", np.array([Evil(), 1], dtype=object), allow_pickle=True)
    (tmp_path / "evil.txt").write_bytes(pickle.dumps(Evil(), protocol=0))
    report = scan(str(tmp_path))
    for art in report.artefacts:
        crit = [f for f in art.findings if f.rule_id == "MS-PKL-003" and f.callable == "os.system"]
        assert art.verdict.value == "unsafe" and crit, (art.path, [f.rule_id for f in art.findings])


def test_joblib_array_bytes_are_skipped_not_parsed(tmp_path):
    import joblib

    # Raw float bytes that look like opcodes must not be read as pickle (they would be garbage).
    joblib.dump({"a": np.frombuffer(b"cos\nsystem\n" * 8, dtype=np.uint8)}, tmp_path / "raw.joblib")
    report = scan(str(tmp_path))
    assert report.verdict.value == "clean", [f.message for _, _, f in report.all_findings()]


def test_text_files_are_not_text_pickles():
    for text in (b"just words\n", b"a,b,c\n1,2,3\n", b'{"a": 1}\n', b"import os\nos.system('x')\n",
                 b"# Title\n\nSome (text) here.\n", b"0\n", b"(a, b)\n", b"\n"):
        assert not pickle_text.sniff(text, BytesBlob(text), "x.txt"), text
    data = pickle.dumps({"a": [1, 2]}, protocol=0)
    assert pickle_text.sniff(data, BytesBlob(data), "x")


def _torch_pickles(path: Path) -> list[bytes]:
    with zipfile.ZipFile(path) as z:
        return [z.read(n) for n in z.namelist() if n.endswith(".pkl")]


def _differential_inputs(benign: Path, attacks: Path | None) -> list[tuple[str, bytes, str, int | None]]:
    items: list[tuple[str, bytes, str, int | None]] = []
    for p in sorted(benign.iterdir()):
        data = p.read_bytes()
        if data[:2] == b"PK":
            items += [(f"{p.name}:{i}", d, "torch-zip", None) for i, d in enumerate(_torch_pickles(p))]
        elif p.name == "legacy.pt":
            items.append((p.name, data, "torch-legacy", 5))
        elif p.suffix == ".pkl":
            items.append((p.name, data, "plain", None))
    items += [
        ("memo-stack-global", prog(s("os") + b"\x94" + s("system") + b"\x94\x93(" + s("id") + b"tR"), "plain", None),
        ("obj-pop", prog(b"(" + glob("os", "system") + s("id") + b"o0N"), "plain", None),
        ("two-streams", pickle.dumps([1]) + prog(call(glob("os", "system"), s("id"))), "plain", None),
        ("inst", b"(S'id'\nios\nsystem\n.", "plain", None),
    ]
    if attacks is not None:
        for p in sorted(attacks.rglob("*")):
            if p.is_file() and p.suffix in (".pkl", ".p", ".bin", ".pt", ".txt", ".pickle", ".dat", ".model"):
                data = p.read_bytes()
                if data[:1] in (b"\x80",) or (data[:1] and data[:1] in b"(cS]}IN"):
                    if b"joblib" not in data[:4096] and b"\x8a\x0al\xfc\x9cF" not in data[:32]:
                        items.append((f"attack:{p.relative_to(attacks)}", data, "plain", None))
    return items


@pytest.fixture(scope="session")
def attacks(tmp_path_factory) -> Path | None:
    gen = ROOT / "fixtures" / "pickle_attacks.py"
    if not gen.exists():
        return None
    sys.path.insert(0, str(ROOT))
    try:
        from fixtures import pickle_attacks
    except Exception:  # noqa: BLE001 - the corpus generator is another helper's work in progress
        return None
    out = tmp_path_factory.mktemp("attacks")
    pickle_attacks.build_all(out)
    return out


def test_differential_against_cpython_unpickler(benign, attacks):
    items = _differential_inputs(benign, attacks)
    assert len(items) >= 20
    mismatches = []
    for name, data, flavour, max_streams in items:
        expected = oracle(data, max_streams)
        run = run_vm(data, flavour=flavour)
        ours_g, ours_c = run.result.stream_globals, run.result.stream_calls
        for i, exp in enumerate(expected):
            if i >= len(ours_g):
                if exp.globals or exp.calls:
                    mismatches.append((name, i, "stream missing", exp.globals))
                continue
            calls = ["?" if c.startswith("<") else c for c in ours_c[i]]
            if exp.error is None:
                if (exp.globals, exp.calls) != (ours_g[i], calls):
                    mismatches.append((name, i, exp.globals, ours_g[i], exp.calls, calls))
            elif ours_g[i][:len(exp.globals)] != exp.globals or calls[:len(exp.calls)] != exp.calls:
                mismatches.append((name, i, "prefix", exp.error, exp.globals, ours_g[i], exp.calls, calls))
    assert mismatches == [], json.dumps(mismatches, indent=1, default=str)[:4000]
