"""Chat templates: real model-family templates pass clean; SSTI payloads (which really execute under a
plain jinja2.Environment, proven in a subprocess) are flagged on the AST."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import scan_json
from st_gguf_helpers import rule_ids, template_findings

HERE = Path(__file__).parent
REAL = sorted((HERE / "templates").glob("*.jinja"))
MALICIOUS = sorted((HERE / "malicious").glob("*.jinja"))
# render context for the execution proof (bos_token carries names for token_names.jinja)
RENDER_CTX = {
    "messages": [{"role": "user", "content": "__globals__|__builtins__|__import__|open"}],
    "bos_token": "__init__|__globals__|__builtins__|__import__|open", "eos_token": "</s>",
    "add_generation_prompt": True,
}


def test_real_template_set_is_complete():
    names = " ".join(p.name for p in REAL)
    for family in ("Llama-3.1", "Qwen2.5", "Mistral", "gemma", "Phi-3", "DeepSeek-V3", "DeepSeek-R1"):
        assert family in names, family


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_templates_are_clean(path):
    findings = template_findings(path.read_text(encoding="utf-8"))
    assert [(f.rule_id, f.message) for f in findings] == []


@pytest.mark.parametrize("path", MALICIOUS, ids=lambda p: p.stem)
def test_malicious_templates_flagged(path):
    ids = rule_ids(template_findings(path.read_text(encoding="utf-8")))
    assert ids & {"MS-TPL-001", "MS-TPL-002"}, ids


def test_malicious_templates_really_execute(tmp_path):
    """One subprocess renders every payload with a plain jinja2.Environment: each must create its marker."""
    script = (
        "import jinja2, json, os, sys\n"
        "ctx = json.loads(sys.argv[1]); out = {}\n"
        "for path, marker in zip(sys.argv[2::2], sys.argv[3::2]):\n"
        "    os.environ['MODELSHIELD_MARKER'] = marker\n"
        "    try:\n"
        "        jinja2.Environment().from_string(open(path).read()).render(**ctx)\n"
        "    except Exception as exc:\n"
        "        out[path] = repr(exc)\n"
        "print(json.dumps(out))\n")
    args = []
    for path in MALICIOUS:
        args += [str(path), str(tmp_path / f"{path.stem}.marker")]
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(RENDER_CTX), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {}
    for path in MALICIOUS:
        assert (tmp_path / f"{path.stem}.marker").read_text() == "pwned", path.name


@pytest.mark.parametrize("source, rule", [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "MS-TPL-001"),
    ("{{ x['__globals__'] }}", "MS-TPL-001"),
    ("{{ x|attr('_'*2 ~ 'class' ~ '_'*2) }}", "MS-TPL-001"),
    ("{% set n = '%sclass%s'|format('__', '__') %}{{ x|attr(n) }}", "MS-TPL-001"),
    ("{{ x|attr('xxclassxx'|replace('x', '_')) }}", "MS-TPL-001"),
    ("{{ x|attr('__ssalc__'|reverse) }}", "MS-TPL-001"),
    ("{{ x|attr('{}class{}'.format('__', '__')) }}", "MS-TPL-001"),
    ("{{ x|map(attribute='__class__.__name__')|list }}", "MS-TPL-001"),
    ("{{ x|selectattr('__class__')|list }}", "MS-TPL-001"),
    ("{{ x|map('attr', '__class__')|list }}", "MS-TPL-001"),
    ("{{ x|attr(y) }}", "MS-TPL-002"),
    ("{{ x[y ~ 'z'] }}", "MS-TPL-002"),
    ("{{ x[eos_token] }}", "MS-TPL-002"),
    ("{% for s in 'a.b'.split('.') %}{{ x[s] }}{% endfor %}", "MS-TPL-002"),
    ("{{ cycler.next }}", "MS-TPL-003"),
    ("{{ lipsum['func'] }}", "MS-TPL-003"),
    ("{{ x.gi_frame.f_back }}", "MS-TPL-004"),
    ("{{ x.mro() }}", "MS-TPL-004"),
    ("{{ '{0.real}'.format(x) }}", "MS-TPL-005"),
    ("{% include 'other.jinja' %}", "MS-TPL-006"),
    ("{% import 'm' as m %}", "MS-TPL-006"),
    ("{% if %}", "MS-TPL-007"),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "MS-TPL-008"),
])
def test_template_rules(source, rule):
    findings = template_findings(source)
    assert rule in rule_ids(findings), [(f.rule_id, f.message) for f in findings]
    assert all(f.location.line for f in findings if f.rule_id != "MS-TPL-008")


@pytest.mark.parametrize("source", [
    "{{ x|attr('content') }}",
    "{{ x|attr('ssalc'|reverse) }}",  # folds to 'class': harmless
    "{% set ns = namespace(a=1) %}{% set ns.a = 2 %}{{ ns.a }}{{ range(3)|list }}",
    "{% for m in messages %}{{ m['content'] }}{{ messages[loop.index0 - 1]['role'] }}{% endfor %}",
    "{% generation %}{{ m.content }}{% endgeneration %}{% for x in y %}{% break %}{% endfor %}",
    "{{ '%s and %s'|format(a, b) }}{{ '{} {}'.format(a, b) }}{{ x|map(attribute='name')|join(', ') }}",
    "{{ raise_exception('no system role') }}{{ strftime_now('%d %b %Y') }}",
])
def test_benign_constructs_clean(source):
    assert [(f.rule_id, f.message) for f in template_findings(source)] == []


def test_huge_string_multiplication_is_bounded():
    findings = template_findings("{{ x|attr('_' * 1000000000) }}")
    assert rule_ids(findings) == {"MS-TPL-002"}


def test_standalone_template_files_via_cli(tmp_path):
    (tmp_path / "chat_template.jinja").write_text((HERE / "malicious" / "cycler_globals.jinja").read_text())
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "chat_template.jinja").write_text(REAL[0].read_text(encoding="utf-8"), encoding="utf-8")
    code, report = scan_json(str(tmp_path))
    arts = {a["path"]: a for a in report["targets"][0]["artefacts"]}
    bad, ok = arts["chat_template.jinja"], arts["ok/chat_template.jinja"]
    assert code == 1
    assert bad["format"] == "chat_template" and bad["verdict"] == "unsafe"
    assert {f["rule_id"] for f in bad["findings"]} == {"MS-TPL-001"}
    assert {f["location"]["line"] for f in bad["findings"]} == {1, 2}
    assert ok["format"] == "chat_template" and ok["verdict"] == "clean" and ok["findings"] == []
    assert ok["properties"]["chat_templates"][0]["analysed"] is True
