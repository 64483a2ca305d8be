"""Red team: chat-template evasions that reached os.system past the first analysis (all missed before wave 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import scan_json

from modelshield.scanner.engine import scan
from redteam_template_cases import CASES, POSITIONAL_ONLY

HERE = Path(__file__).resolve().parent
BLOCKING = {"MS-TPL-001", "MS-TPL-002"}


def _rules(path: Path) -> set[str]:
    report = scan([str(path)])
    return {f.rule_id for t in report.targets for a in t.artefacts for f in a.findings}


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tpl")
    for name, source in {**CASES, **POSITIONAL_ONLY}.items():
        (out / f"{name}.jinja").write_text(source.replace("MARK", "/tmp/x"), encoding="utf-8")
    return out


@pytest.mark.parametrize("name", sorted({**CASES, **POSITIONAL_ONLY}))
def test_evasion_is_flagged(template_dir, name):
    rules = _rules(template_dir / f"{name}.jinja")
    assert rules & BLOCKING, (name, rules)


def test_plain_jinja2_runs_every_evasion(tmp_path):
    """Proof in a subprocess: each case really executes `touch MARKER` when rendered without a sandbox."""
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, str(HERE / "redteam_render_proof.py"), str(marker)],
                          capture_output=True, text=True, timeout=120)
    results = dict(line.split() for line in proc.stdout.splitlines())
    assert results == {name: "True" for name in CASES}, proc.stderr


def test_evasion_in_tokenizer_config_blocks_from_the_cli(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CASES["with_statement"]}))
    code, report = scan_json("--fail-on", "high", str(tmp_path))
    ids = {f["rule_id"] for t in report["targets"] for a in t["artefacts"] for f in a["findings"]}
    assert code == 1 and "MS-TPL-001" in ids, ids


@pytest.mark.parametrize("source", [
    # benign shapes near the evasions: computed lookups without any dunder string, dunder-free macros
    "{% macro m(t, k) %}{{ t[k] }}{% endmacro %}{% for m2 in messages %}{{ m(m2, 'content') }}{% endfor %}",
    "{% set ns = namespace(sys='') %}{% set ns.sys = messages[0]['content'] %}{{ ns.sys }}",
    "{% with role = message['role'] %}{{ role|upper }}{% endwith %}",
    "{% set block %}<|im_start|>{% endset %}{{ block }}{% for k in tool %}{{ tool[k] }}{% endfor %}",
    "{{ messages|sort(false, false, 'role')|map(attribute='content')|join }}",
])
def test_benign_near_misses_stay_clean(tmp_path, source):
    path = tmp_path / "t.jinja"
    path.write_text(source, encoding="utf-8")
    assert not _rules(path) & BLOCKING
