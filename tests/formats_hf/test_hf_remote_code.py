"""auto_map / custom code: configs, referenced files, cross-repo references, the real loader proof."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers.cli import scan_json
from hf_fixtures import (BENIGN_CONFIGURATION, BENIGN_MODELING, MALICIOUS_CONFIGURATION, copy_minilm_configs,
                         rule_ids, scan_dir, threats, tiny_config, write)

from modelshield.scanner.findings import Severity
from modelshield.scanner.policy import Policy

AUTO_MAP = {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}


def test_real_sentence_transformers_configs_are_clean(tmp_path):
    copy_minilm_configs(tmp_path)
    target, arts = scan_dir(tmp_path)
    cfg = arts["config.json"]
    assert cfg.format == "hf_config"
    assert cfg.properties["hf_config"]["architectures"] == ["BertModel"]
    assert cfg.properties["hf_config"]["model_type"] == "bert"
    assert arts["modules.json"].format == "hf_config" and arts["tokenizer_config.json"].format == "hf_config"
    for a in arts.values():
        assert all(f.severity <= Severity.INFO for f in a.findings), (a.path, a.findings)
        assert not threats(a)
    assert not target.findings


def test_real_transformers_config_is_clean_and_described(tmp_path):
    write(tmp_path, {"config.json": tiny_config()})
    _, arts = scan_dir(tmp_path)
    props = arts["config.json"].properties["hf_config"]
    assert props["vocab_size"] == 100 and props["model_type"] == "bert" and "transformers_version" in props
    assert arts["config.json"].findings == []


def test_auto_map_code_is_unreviewed_high_until_allowed_by_hash(tmp_path):
    write(tmp_path, {"config.json": tiny_config(AUTO_MAP), "configuration_tiny.py": BENIGN_CONFIGURATION,
                     "modeling_tiny.py": BENIGN_MODELING})
    target, arts = scan_dir(tmp_path)
    [remote] = [f for f in arts["config.json"].findings if f.rule_id == "MS-HF-001"]
    assert remote.severity is Severity.MEDIUM
    assert "modeling_tiny.py" in remote.message and "trust_remote_code" in remote.message
    refs = arts["config.json"].properties["hf_config"]["code_refs"]
    assert {r["file"] for r in refs} == {"configuration_tiny.py", "modeling_tiny.py"}
    for name in ("configuration_tiny.py", "modeling_tiny.py"):
        art = arts[name]
        assert art.format == "python_source"
        [unreviewed] = threats(art)
        assert unreviewed.rule_id == "MS-PY-020" and unreviewed.severity is Severity.HIGH
        assert art.sha256 in unreviewed.message and "[allow.code]" in unreviewed.recommendation
        assert "config.json auto_map" in unreviewed.message
        assert art.properties["python_source"]["reached_by"]
    assert arts["modeling_tiny.py"].properties["python_source"]["relative_imports"] == ["configuration_tiny"]
    # configuration_tiny.py is reached twice: by AutoConfig and as modeling_tiny's relative import
    assert len(arts["configuration_tiny.py"].properties["python_source"]["reached_by"]) == 2
    assert not target.findings
    reviewed = {arts[n].sha256: "reviewed in PR 12" for n in ("configuration_tiny.py", "modeling_tiny.py")}
    _, arts = scan_dir(tmp_path, policy=Policy.from_mapping({"allow": {"code": reviewed}}))
    for name in ("configuration_tiny.py", "modeling_tiny.py"):
        assert not threats(arts[name]) and rule_ids(arts[name]) == {"MS-PY-021"}
        assert "reviewed in PR 12" in arts[name].findings[0].message
    assert max(f.severity for a in arts.values() for f in a.findings) is Severity.MEDIUM


def test_auto_map_with_malicious_code_is_critical(tmp_path):
    write(tmp_path, {"config.json": tiny_config(AUTO_MAP), "configuration_tiny.py": MALICIOUS_CONFIGURATION,
                     "modeling_tiny.py": BENIGN_MODELING})
    _, arts = scan_dir(tmp_path)
    code = arts["configuration_tiny.py"]
    ids = rule_ids(code)
    assert {"MS-PY-003", "MS-PY-001", "MS-PY-004", "MS-PY-008", "MS-PY-013"} <= ids
    chain = next(f for f in code.findings if f.rule_id == "MS-PY-003")
    assert chain.severity is Severity.CRITICAL and chain.location.line == 6 and chain.callable == "builtins.exec"
    curl = next(f for f in code.findings if f.rule_id == "MS-PY-001")
    assert curl.severity is Severity.CRITICAL and curl.callable == "os.system"
    [remote] = [f for f in arts["config.json"].findings if f.rule_id == "MS-HF-001"]
    assert remote.severity is Severity.CRITICAL and "configuration_tiny.py" in remote.message


def test_unreferenced_code_is_only_observed(tmp_path):
    write(tmp_path, {"config.json": tiny_config(), "convert.py":
                     "import subprocess, os\nsubprocess.run(['git', 'lfs', 'pull'])\nos.remove('tmp.bin')\n"})
    _, arts = scan_dir(tmp_path)
    conv = arts["convert.py"]
    assert not threats(conv) and conv.verdict.value == "clean"
    [obs] = [f for f in conv.findings if f.rule_id == "MS-PY-100"]
    assert obs.severity is Severity.LOW and obs.evidence["behaviour_rule"] == "MS-PY-001"
    assert obs.location.line == 2 and obs.args == [["git", "lfs", "pull"]]


def test_cross_repo_and_missing_references(tmp_path):
    write(tmp_path, {"config.json": tiny_config({"AutoConfig": "configuration_tiny.TinyConfig",
                                                 "AutoModel": "evil-org/payload--modeling_x.X",
                                                 "AutoModelForCausalLM": "a.b.C"}),
                     "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_t.T", None]},
                                                          "chat_template": "{{ messages[0]['content'] }}"})})
    _, arts = scan_dir(tmp_path)
    cfg = arts["config.json"]
    cross = next(f for f in cfg.findings if f.rule_id == "MS-HF-002")
    assert cross.severity is Severity.HIGH and "evil-org/payload" in cross.message
    missing = [f for f in cfg.findings if f.rule_id == "MS-HF-003"]
    assert [f.evidence["file"] for f in missing] == ["configuration_tiny.py"]
    assert "MS-HF-005" in rule_ids(cfg)
    tok = arts["tokenizer_config.json"]
    assert {f.evidence["file"] for f in tok.findings if f.rule_id == "MS-HF-003"} == {"tokenization_t.py"}
    assert tok.properties["hf_config"]["chat_templates"] == {"chat_template": 28}


def test_relative_import_is_followed(tmp_path):
    modeling = BENIGN_MODELING.replace("from .configuration_tiny import TinyConfig",
                                       "from .configuration_tiny import TinyConfig\nfrom .helpers import util\n"
                                       "from .absent import nothing")
    write(tmp_path, {"config.json": tiny_config({"AutoModel": "modeling_tiny.TinyModel"}),
                     "modeling_tiny.py": modeling, "configuration_tiny.py": BENIGN_CONFIGURATION,
                     "helpers.py": "import pickle\ndef util(path):\n    return pickle.load(open(path, 'rb'))\n"})
    _, arts = scan_dir(tmp_path)
    helper = next(f for f in arts["helpers.py"].findings if f.rule_id == "MS-PY-006")
    assert helper.severity is Severity.HIGH and helper.evidence["reached_by"].startswith("config.json")
    cfg = arts["config.json"]
    assert next(f for f in cfg.findings if f.rule_id == "MS-HF-001").severity is Severity.HIGH
    assert [f.evidence["file"] for f in cfg.findings if f.rule_id == "MS-HF-003"] == ["absent.py"]


def test_custom_code_tag_without_code(tmp_path):
    write(tmp_path, {"README.md": "---\nlicense: mit\ntags:\n- custom_code\n---\n# model\n",
                     "config.json": tiny_config()})
    target, _ = scan_dir(tmp_path)
    assert [f.rule_id for f in target.findings] == ["MS-HF-004"]


def test_keras_config_is_left_to_keras_and_bad_json_is_inconclusive(tmp_path):
    keras_cfg = {"module": "keras", "class_name": "Sequential", "config": {"layers": []}}
    write(tmp_path / "k", {"config.json": json.dumps(keras_cfg)})
    _, arts = scan_dir(tmp_path / "k")
    assert arts["config.json"].format != "hf_config"
    write(tmp_path / "b", {"config.json": '{"auto_map": {"AutoModel": "m.M"}'})
    _, arts = scan_dir(tmp_path / "b")
    [f] = arts["config.json"].findings
    assert f.rule_id == "MS-HF-006" and arts["config.json"].verdict.value == "inconclusive"


def test_modules_json_and_model_index_custom_code(tmp_path):
    write(tmp_path, {"modules.json": json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Custom", "type": "custom_pooling.MyPooling"}]),
        "model_index.json": json.dumps({"_class_name": ["pipeline_x", "MyPipe"], "_diffusers_version": "0.30.0",
                                        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["my_vae", "V"]}),
        "custom_pooling.py": "import os\nos.system('id')\n", "pipeline_x.py": "x = 1\n", "vae/my_vae.py": "y = 2\n"})
    _, arts = scan_dir(tmp_path)
    st = arts["modules.json"]
    assert next(f for f in st.findings if f.rule_id == "MS-HF-001").severity is Severity.HIGH
    assert next(f for f in arts["custom_pooling.py"].findings if f.rule_id == "MS-PY-001").severity is Severity.HIGH
    idx = arts["model_index.json"]
    refs = idx.properties["hf_config"]["code_refs"]
    assert {r["file"] for r in refs} == {"pipeline_x.py", "vae/my_vae.py", "unet/diffusers.py"}
    assert [r["optional"] for r in refs if r["file"] == "unet/diffusers.py"] == [True]
    assert "MS-HF-003" not in rule_ids(idx)
    for name in ("pipeline_x.py", "vae/my_vae.py", "custom_pooling.py"):
        assert "MS-PY-020" in rule_ids(arts[name]), name


def test_cli_exit_codes(tmp_path):
    write(tmp_path / "ok", {"config.json": tiny_config(AUTO_MAP), "configuration_tiny.py": BENIGN_CONFIGURATION,
                            "modeling_tiny.py": BENIGN_MODELING})
    code, report = scan_json(str(tmp_path / "ok"))
    assert code == 1, report["summary"]  # unreviewed code blocks
    digests = {a["sha256"] for t in report["targets"] for a in t["artefacts"] if a["path"].endswith(".py")}
    policy = tmp_path / "modelshield.toml"
    policy.write_text("[allow.code]\n" + "".join(f'"{d}" = "reviewed"\n' for d in sorted(digests)))
    code, report = scan_json(str(tmp_path / "ok"), "--policy", str(policy))
    assert code == 0, report["summary"]
    write(tmp_path / "bad", {"config.json": tiny_config(AUTO_MAP), "configuration_tiny.py": MALICIOUS_CONFIGURATION,
                             "modeling_tiny.py": BENIGN_MODELING})
    code, report = scan_json(str(tmp_path / "bad"), "--policy", str(policy))
    assert code == 1 and report["verdict"] == "unsafe"


def test_malicious_remote_code_really_runs_under_transformers(tmp_path):
    """Loader proof (subprocess): AutoConfig(trust_remote_code=True) imports configuration_tiny.py."""
    repo = write(tmp_path / "repo", {"config.json": tiny_config(AUTO_MAP),
                                     "configuration_tiny.py": MALICIOUS_CONFIGURATION,
                                     "modeling_tiny.py": BENIGN_MODELING})
    marker = tmp_path / "marker"
    env = {**os.environ, "MODELSHIELD_MARKER": str(marker), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "TRANSFORMERS_OFFLINE": "1"}
    code = ("import socket\nsocket.socket.connect = lambda *a: None\n"  # keep the beacon inert
            "from transformers import AutoConfig\nAutoConfig.from_pretrained(%r, trust_remote_code=True)\n" % str(repo))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert marker.read_text() == "pwned", proc.stderr[-2000:]
    _, arts = scan_dir(repo)
    assert "MS-PY-003" in rule_ids(arts["configuration_tiny.py"])
