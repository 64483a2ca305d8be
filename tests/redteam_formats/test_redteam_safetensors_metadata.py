"""Red team: safetensors `__metadata__` strings carrying templates, code or pickles (not scanned before)."""
from __future__ import annotations

import base64
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from modelshield.scanner.engine import scan
from modelshield.scanner.findings import Severity
from redteam_template_cases import CASES


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/never-run",))


PAYLOADS = {
    "chat_template": ({"chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}, "MS-TPL-001"),
    "template_other_key": ({"notes": CASES["macro_call_args"].replace("MARK", "/tmp/x")}, "MS-TPL-002"),
    "decode_exec_code": ({"loader": "import base64\nexec(base64.b64decode('cHJpbnQoMSk='))"}, "MS-PY-003"),
    "base64_pickle": ({"state": base64.b64encode(pickle.dumps(_Evil(), protocol=4)).decode()}, "MS-PKL-001"),
}


def _rules(path: Path) -> dict[str, Severity]:
    report = scan([str(path)])
    return {f.rule_id: f.severity for t in report.targets for a in t.artefacts for f in a.findings}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_metadata_payload_is_flagged(tmp_path, name):
    metadata, rule = PAYLOADS[name]
    path = tmp_path / f"{name}.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt", **metadata})
    with safe_open(str(path), "pt") as fh:  # the library keeps the payload verbatim
        assert fh.metadata() == {"format": "pt", **metadata}
    rules = _rules(path)
    assert rule in rules and rules[rule] >= Severity.HIGH, rules


def test_benign_metadata_with_braces_and_words_stays_clean(tmp_path):
    path = tmp_path / "ok.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={
        "format": "pt", "desc": "a {model} with {{braces and import stuff", "json": '{"a": {"b": [1]}}',
        "version": "1.0", "py": "x = eval_mode", "template_ok": "{{ bos_token }}{% for m in messages %}{{ m.content }}"
        "{% endfor %}"})
    assert all(sev <= Severity.INFO for sev in _rules(path).values())
