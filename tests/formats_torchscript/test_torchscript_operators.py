"""TorchScript code against the operator allowlist: real scripted/traced models of common
architectures pass clean; operators with outside effects are found, proven under torch.jit.load
and torch.load; unlisted operators, unknown names and unparsable code are never clean."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelshield import scan
from modelshield.scanner.analysis import torchscript as torchscript_code
from modelshield.scanner.findings import Severity

HERE = Path(__file__).resolve().parent
BENIGN = ("cnn_scripted.pt", "cnn_traced.pt", "cnn_frozen.pt", "transformer_scripted.pt", "transformer_traced.pt",
          "recurrent_scripted.pt", "mha_scripted.pt", "quantized_dynamic.pt", "quantized_conv.pt",
          "tokens_scripted.pt", "stateful_scripted.pt")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchscript")
    marker = root / "marker"
    proc = subprocess.run([sys.executable, str(HERE / "torchscript_builder.py"), str(root), str(marker)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, marker


def _findings(path: Path):
    report = scan(str(path))
    return report, [f for _, _, f in report.all_findings()]


@pytest.mark.parametrize("name", BENIGN)
def test_common_architectures_pass_clean(built, name):
    root, _ = built
    report, findings = _findings(root / name)
    assert report.verdict.value == "clean", [(f.rule_id, f.message) for f in findings]
    assert all(f.severity <= Severity.LOW for f in findings)
    props = report.targets[0].artefacts[0].properties["torchscript"]
    assert props["code_files"] >= 1 and props["operators"] and not props["unlisted"]


def test_setstate_writing_a_file_runs_on_jit_load_and_torch_load(built):
    """Loader proof (subprocess): __setstate__ calls aten::save, which writes the marker."""
    root, marker = built
    evil = root / "evil_save_on_load.pt"
    code = ("import os, sys, warnings, torch\nwarnings.filterwarnings('ignore')\np, m = sys.argv[1], sys.argv[2]\n"
            "for load in (torch.jit.load, lambda p: torch.load(p, weights_only=False)):\n"
            "    load(p)\n    print(os.path.exists(m))\n    os.path.exists(m) and os.remove(m)\n")
    marker.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-c", code, str(evil), str(marker)], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["True", "True"], proc.stderr[-2000:]
    report, findings = _findings(evil)
    [f] = [f for f in findings if f.rule_id == "MS-TS-001"]
    assert f.severity is Severity.CRITICAL and f.callable == "aten::save" and report.verdict.value == "unsafe"
    assert f.location.member.endswith(".py") and "/code/" in f.location.member


def test_reading_a_file_is_found(built):
    root, _ = built
    _, findings = _findings(root / "evil_from_file.pt")
    assert [(f.rule_id, f.callable) for f in findings if f.severity >= Severity.HIGH] == \
        [("MS-TS-001", "aten::from_file")]


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy a TorchScript archive, passing each code/ file's text through `edit(name, text)`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                data = edit(info.filename, data.decode()).encode()
            zout.writestr(info, data)


@pytest.mark.parametrize("call, rule", [
    ("ops.c10d.barrier", "MS-TS-002"),          # distributed communication: not on the list
    ("ops.my_ext.run", "MS-TS-002"),            # a custom operator namespace
    ("torch.no_such_operator", "MS-TS-002"),    # not a registered operator
    ("exec", "MS-TS-002"),                      # not a TorchScript builtin
    ("ops.prim.PythonOp", "MS-TS-001"),
    ("torch.save", "MS-TS-001"),
])
def test_operators_off_the_list_are_findings(built, tmp_path, call, rule):
    root, _ = built

    def edit(name: str, text: str) -> str:
        return text.replace("return torch.linear(input, weight, bias)",
                            f"_x = {call}(input)\n    return torch.linear(input, weight, bias)")

    _rewrite(root / "cnn_scripted.pt", tmp_path / "edited.pt", edit)
    report, findings = _findings(tmp_path / "edited.pt")
    assert rule in {f.rule_id for f in findings} and report.verdict.value == "unsafe", \
        [(f.rule_id, f.message) for f in findings]


def test_method_off_the_list_is_a_finding(built, tmp_path):
    root, _ = built
    _rewrite(root / "cnn_scripted.pt", tmp_path / "m.pt",
             lambda n, t: t.replace("return torch.linear(input, weight, bias)",
                                    "_x = (weight).save('/tmp/x')\n    return torch.linear(input, weight, bias)"))
    _, findings = _findings(tmp_path / "m.pt")
    assert {(f.rule_id, f.callable) for f in findings if f.severity >= Severity.HIGH} == {("MS-TS-001", "aten::save")}


@pytest.mark.parametrize("body", [b"def f(:\n", b"\xff\xfe not utf-8"])
def test_code_that_does_not_parse_is_inconclusive(built, tmp_path, body):
    root, _ = built
    with zipfile.ZipFile(root / "cnn_scripted.pt") as zin, zipfile.ZipFile(tmp_path / "bad.pt", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, body if info.filename.endswith("/linear.py") else zin.read(info))
    report, findings = _findings(tmp_path / "bad.pt")
    assert "MS-TS-003" in {f.rule_id for f in findings} and report.verdict.value == "inconclusive"


def test_operator_table_matches_the_torch_registry(built):
    """Every allowed or denied operator exists in the installed torch (the table is not stale),
    and the side-effect operators are not on the allowlist (registry dumped by the builder)."""
    root, _ = built
    registry = set((root / "registry.txt").read_text().split())
    table = torchscript_code.table()
    assert table.allowed <= registry, sorted(table.allowed - registry)[:20]
    assert set(table.denied) <= registry and not set(table.denied) & table.allowed
    assert not {op for op in table.allowed if op.split("::")[0] in ("c10d", "_c10d_functional", "symm_mem")}
    assert len(table.allowed) > 2000


def test_module_name_mapping():
    name = torchscript_code.module_name("m/code/__torch__/torch/nn/modules/conv.py")
    assert name == "__torch__.torch.nn.modules.conv"
    assert torchscript_code.module_name("m/data.pkl") is None


def test_mangled_names_resolve_to_the_archive_classes():
    from modelshield.scanner.context import ScanContext
    from modelshield.scanner.findings import Artefact
    from modelshield.scanner.policy import Policy

    ctx = ScanContext(artefact=Artefact(path="m.pt"), policy=Policy.default())
    helper = torchscript_code.parse("m/code/__torch__/a.py", b"class Helper(Module):\n  def forward(self):\n"
                                    b"    return torch.relu(CONSTANTS.c0)\n", ctx)
    user = torchscript_code.parse("m/code/__torch__/b.py", b"def f(x: Tensor) -> Tensor:\n"
                                  b"  h = __torch__.a.___torch_mangle_7.Helper()\n  return (h).forward()\n", ctx)
    props = torchscript_code.analyse([helper, user], ctx)
    assert ctx.artefact.findings == [] and props["operators"] == ["aten::relu"]
    assert torchscript_code._unmangle("__torch__.a.___torch_mangle_12.B") == "__torch__.a.B"
