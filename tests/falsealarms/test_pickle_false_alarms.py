"""Issue 20 pickle-side false alarms: real library artefacts scan clean, their hostile twins do not.

The allow entries these need (accelerate's state, WeightNorm, torch.ScriptObject, pure builtins,
__future__ features) are each covered by the class-4 sandbox test; the constrained ones pass only
the use the library makes of them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "pickle"))
from fixtures.benign_checkpoints import build_all  # noqa: E402
from pickle_vm_helpers import glob, run_vm  # noqa: E402

from modelshield import Severity, scan  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("benign_checkpoints"))


@pytest.mark.parametrize("name", ["trainer-checkpoint", "weight-norm", "quantized", "builtins"])
def test_real_artefacts_are_clean(built, name):
    report = scan(str(built[name]))
    above_info = [(a.path if a else "-", f.rule_id, f.callable) for _, a, f in report.all_findings()
                  if f.active and f.severity > Severity.INFO]
    assert above_info == [] and report.verdict.value == "clean"
    if name == "trainer-checkpoint":
        assert any(a.path.endswith("training_args.bin") for a in report.artefacts)


def test_the_checkpoint_really_pickles_accelerate_state(built):
    import zipfile

    [args] = built["trainer-checkpoint"].rglob("training_args.bin")
    with zipfile.ZipFile(args) as z:
        data = b"".join(z.read(n) for n in z.namelist() if n.endswith(".pkl"))
    assert b"accelerate.state" in data and b"DistributedType" in data


SO = glob("torch", "ScriptObject")


@pytest.mark.parametrize("body", [
    SO + b")\x81" + b"(N" + b"S'__torch__.torch.classes.c10d.FileStore'\n" + b"tb",   # another TorchBind class
    SO + b")\x81" + b"(NNtb",                                                          # computed / missing name
    SO + b"(tR",                                                                       # called, not created
])
def test_scriptobject_restoring_other_torchbind_classes_is_flagged(body):
    run = run_vm(b"\x80\x02" + body + b".")
    assert run.by_rule("MS-PKL-004"), run.ids


def test_indirect_builtins_still_need_their_callable_checked():
    body = glob("builtins", "max") + b"(]" + b"S'x'\na" + b"tR"  # max([...]) alone: clean
    assert not run_vm(b"\x80\x02" + body + b".").by_rule("MS-PKL-004")
    evil = glob("builtins", "sorted") + b"(]S'id'\na" + glob("os", "system") + b"tR"  # sorted(items, os.system)
    run = run_vm(b"\x80\x02" + evil + b".")
    assert run.by_rule("MS-PKL-001") and run.verdict == "unsafe"


# ---------------------------------------------------------------- the former strict xfails
def test_dill_helpers_are_judged_by_what_they_do(tmp_path):
    import dill
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = np.arange(30.0).reshape(10, 3), np.arange(10.0)
    (tmp_path / "rf.pkl").write_bytes(dill.dumps(RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y)))
    pipe = Pipeline([("ct", ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough"))])
    (tmp_path / "ct.pkl").write_bytes(dill.dumps(pipe.fit(X, y)))
    report = scan(str(tmp_path))
    assert report.verdict.value == "clean", [(f.rule_id, f.callable) for _, _, f in report.all_findings()]


@pytest.mark.parametrize("body, rule", [
    (glob("dill._dill", "_create_array") + b"(" + glob("os", "system") + b"(S'id'\ntNtR", "MS-PKL-003"),
    (glob("dill._dill", "_load_type") + b"(S'CodeType'\ntR", "MS-PKL-001"),
    (glob("dill._dill", "_load_type") + b"(S'no such type'\ntR", "MS-PKL-004"),
    (glob("dill._dill", "_create_array") + b"(S'x'\ntR", "MS-PKL-004"),
])
def test_dill_helpers_used_otherwise_are_flagged(body, rule):
    run = run_vm(b"\x80\x02" + body + b".")
    assert run.by_rule(rule), run.ids


def test_dill_create_array_runs_its_callable_under_the_real_loader(tmp_path):
    import os
    import subprocess

    data = b"\x80\x02" + glob("dill._dill", "_create_array") + b"(" + glob("os", "system") + \
        b"(S'touch \"$MODELSHIELD_MARKER\"'\ntNtR."
    (tmp_path / "evil.pkl").write_bytes(data)
    marker = tmp_path / "marker"
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
                    str(tmp_path / "evil.pkl")], env={**os.environ, "MODELSHIELD_MARKER": str(marker)},
                   capture_output=True)
    assert marker.exists()
    assert scan(str(tmp_path / "evil.pkl")).verdict.value == "unsafe"


def test_bound_method_of_an_instance_is_the_method_unless_its_state_shadows_it():
    gen = glob("scipy.stats._discrete_distns", "poisson_gen")
    getattr_ = glob("builtins", "getattr")
    method = getattr_ + b"(" + gen + b")\x81S'_entropy'\ntR"
    assert not run_vm(b"\x80\x02" + method + b".").by_rule("MS-PKL-001")
    shadowed = getattr_ + b"(" + gen + b")\x81}S'_entropy'\nS'x'\nsbS'_entropy'\ntR"
    assert run_vm(b"\x80\x02" + shadowed + b".").by_rule("MS-PKL-001")
    other = getattr_ + b"(" + gen + b")\x81S'_cdf'\ntR"  # a method without an exact allow entry
    assert run_vm(b"\x80\x02" + other + b".").by_rule("MS-PKL-001")


def test_legacy_module_persistent_id_resolves_to_its_class(tmp_path):
    import torch
    from torch import nn

    torch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), tmp_path / "ok.pt", _use_new_zipfile_serialization=False)
    assert scan(str(tmp_path / "ok.pt")).verdict.value == "clean"
