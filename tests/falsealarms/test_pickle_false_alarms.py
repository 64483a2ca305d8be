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
