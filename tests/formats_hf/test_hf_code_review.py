"""Allowlist-first review of code loaders import (MS-PY-020/021): code the call analysis cannot
see through still blocks, reviewed files pass by hash only, and each load path is loader-proven."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import scan_json
from hf_fixtures import rule_ids, scan_dir, threats, write

from modelshield.scanner.findings import Severity
from modelshield.scanner.policy import Policy
from modelshield.scanner.errors import PolicyError

HERE = Path(__file__).resolve().parent
_WRITE = "open(__import__('os').environ['MODELSHIELD_MARKER'], 'w').write('pwned')"
_SHELL = "sh -c 'echo pwned > \"$MODELSHIELD_MARKER\"'"
# Standard-library helpers that evaluate a string or run a command without naming exec or
# subprocess: a denylist of calls has to know each of them; review by hash does not.
HELPERS = {
    "timeit_string": f"import timeit\ntimeit.timeit({_WRITE!r}, number=1)\n",
    "cprofile_string": f"import cProfile\ncProfile.run({_WRITE!r})\n",
    "pydoc_pager": f"import pydoc\npydoc.pipepager('', {_SHELL!r})\n",
}
CONFIG_CLASS = ("\nfrom transformers import PretrainedConfig\n\n\nclass XConfig(PretrainedConfig):\n"
                "    model_type = 'x'\n")
GENERATE = (f"import timeit\n\ntimeit.timeit({_WRITE!r}, number=1)\n\n\n"
            "def generate(model, **kwargs):\n    return None\n")


def _config_repo(root: Path, name: str) -> Path:
    return write(root / name, {
        "config.json": json.dumps({"model_type": "x", "auto_map": {"AutoConfig": "configuration_x.XConfig"}}),
        "configuration_x.py": HELPERS[name] + CONFIG_CLASS})


@pytest.fixture(scope="module")
def proven(tmp_path_factory):
    """Each repo built, then loaded by transformers in one subprocess; returns (root, {repo: marker?})."""
    root = tmp_path_factory.mktemp("code_review")
    for name in HELPERS:
        _config_repo(root, name)
    gen = write(root / "custom_generate", {"custom_generate/generate.py": GENERATE})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf_home"), "TRANSFORMERS_OFFLINE": "1",
           "MODELSHIELD_MARKER": str(root / "marker")}
    args = [f"config:{root / n}" for n in HELPERS] + [f"build-causal:{gen}", f"causal:{gen}"]
    proc = subprocess.run([sys.executable, str(HERE / "code_review_proof.py"), str(root / "marker"), *args],
                          capture_output=True, text=True, timeout=240, env=env)
    results = dict(line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return root, results, proc.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_stdlib_helpers_run_under_transformers_and_block_as_unreviewed(proven, name):
    root, results, stderr = proven
    assert results.get(name) == "True", stderr
    _, arts = scan_dir(root / name)
    code = arts["configuration_x.py"]
    [unreviewed] = [f for f in code.findings if f.rule_id == "MS-PY-020"]
    assert unreviewed.severity >= Severity.HIGH and code.verdict.value == "unsafe"
    assert code.sha256 in unreviewed.message and unreviewed.evidence["sha256"] == code.sha256
    assert unreviewed.evidence["reached_by"] == ["config.json auto_map AutoConfig"]


def test_custom_generate_runs_on_from_pretrained_and_blocks(proven):
    """transformers imports custom_generate/generate.py at from_pretrained(trust_remote_code=True),
    with no config naming it."""
    root, results, stderr = proven
    assert results.get("custom_generate") == "True", stderr
    _, arts = scan_dir(root / "custom_generate")
    gen = arts["custom_generate/generate.py"]
    [unreviewed] = [f for f in gen.findings if f.rule_id == "MS-PY-020"]
    assert "load_custom_generate" in unreviewed.message and unreviewed.severity is Severity.HIGH
    assert arts["model.safetensors"].verdict.value == "clean"


def test_review_is_by_exact_hash(tmp_path):
    repo = _config_repo(tmp_path, "timeit_string")
    _, arts = scan_dir(repo)
    digest = arts["configuration_x.py"].sha256
    policy = Policy.from_mapping({"allow": {"code": {digest.upper(): "read it: harmless"}}})
    _, arts = scan_dir(repo, policy=policy)
    assert rule_ids(arts["configuration_x.py"]) == {"MS-PY-021"} and not threats(arts["configuration_x.py"])
    (repo / "configuration_x.py").write_text((repo / "configuration_x.py").read_text() + "\n# changed\n")
    _, arts = scan_dir(repo, policy=policy)
    assert "MS-PY-020" in rule_ids(arts["configuration_x.py"])


def test_policy_rejects_malformed_code_entries():
    with pytest.raises(PolicyError, match="SHA-256"):
        Policy.from_mapping({"allow": {"code": {"modeling_x.py": "trusted"}}})
    with pytest.raises(PolicyError, match="justification"):
        Policy.from_mapping({"allow": {"code": {"a" * 64: " "}}})


def test_call_analysis_ranks_unreviewed_code_critical(tmp_path):
    write(tmp_path, {"config.json": json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.M"}}),
                     "modeling_x.py": "import subprocess\nsubprocess.run(['nvidia-smi'])\nclass M: pass\n"})
    _, arts = scan_dir(tmp_path)
    [f] = [f for f in arts["modeling_x.py"].findings if f.rule_id == "MS-PY-020"]
    assert f.severity is Severity.CRITICAL and f.evidence["ranked_by"] == ["MS-PY-001 subprocess.run"]


def test_diffusers_component_file_shadowing_a_library_is_reached(tmp_path):
    """diffusers imports <component>/<library>.py whenever it exists, even for "transformers"."""
    write(tmp_path, {"model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline",
                                                     "text_encoder": ["transformers", "CLIPTextModel"],
                                                     "unet": ["diffusers", "UNet2DConditionModel"]}),
                     "text_encoder/transformers.py": "class CLIPTextModel: pass\n"})
    _, arts = scan_dir(tmp_path)
    assert "MS-PY-020" in rule_ids(arts["text_encoder/transformers.py"])
    assert "MS-HF-003" not in rule_ids(arts["model_index.json"])  # unet/diffusers.py is optional


def test_community_pipeline_file_and_unreferenced_scripts(tmp_path):
    write(tmp_path, {"pipeline.py": "from diffusers import DiffusionPipeline\nclass P(DiffusionPipeline): pass\n",
                     "tools/pipeline.py": "print('not diffusers')\n", "convert.py": "import os\n"})
    _, arts = scan_dir(tmp_path)
    assert "MS-PY-020" in rule_ids(arts["pipeline.py"])
    assert not threats(arts["tools/pipeline.py"]) and not threats(arts["convert.py"])


def test_cli_blocks_unreviewed_code_and_passes_reviewed(tmp_path):
    repo = _config_repo(tmp_path, "pydoc_pager")
    code, report = scan_json(str(repo))
    assert code == 1
    [art] = [a for a in report["targets"][0]["artefacts"] if a["path"] == "configuration_x.py"]
    (tmp_path / "modelshield.toml").write_text(f'[allow.code]\n"{art["sha256"]}" = "reviewed"\n')
    code, report = scan_json(str(repo), "--policy", str(tmp_path / "modelshield.toml"))
    assert code == 0, report["summary"]


def test_referenced_file_reviewed_whatever_its_content_sniffs_as(tmp_path):
    """transformers imports modeling_x.py as Python whatever its bytes look like to a sniffer."""
    write(tmp_path, {"config.json": json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.M"}}),
                     "modeling_x.py": b"PK\x05\x06" + b"\0" * 18})
    _, arts = scan_dir(tmp_path)
    assert arts["modeling_x.py"].format != "python_source"
    assert "MS-PY-020" in rule_ids(arts["modeling_x.py"])


def test_image_processor_backend_map_entries_are_all_reached(tmp_path):
    """transformers 5 image processors may map {backend: ref}; whichever backend is picked runs."""
    write(tmp_path, {"preprocessor_config.json": json.dumps({"auto_map": {"AutoImageProcessor": {
        "torchvision": "image_processing_x_fast.XFast", "pil": "image_processing_x.X"}}}),
        "image_processing_x.py": "class X: pass\n", "image_processing_x_fast.py": "class XFast: pass\n"})
    _, arts = scan_dir(tmp_path)
    for name in ("image_processing_x.py", "image_processing_x_fast.py"):
        assert "MS-PY-020" in rule_ids(arts[name]), name
    assert "MS-HF-005" not in rule_ids(arts["preprocessor_config.json"])


@pytest.mark.parametrize("config_name, extra", [("router_config.json", {}), ("config.json", {"structure": {}})])
def test_sentence_transformers_router_types_reach_root_code(tmp_path, config_name, extra):
    """Router modules import each route's type from the repository root (import_module_class)."""
    write(tmp_path, {f"2_Router/{config_name}": json.dumps({"types": {"query": "modeling_q.Q",
                                                                      "doc": "sentence_transformers.models.Dense"},
                                                            **extra}),
                     "modeling_q.py": "class Q: pass\n"})
    _, arts = scan_dir(tmp_path)
    assert "MS-PY-020" in rule_ids(arts["modeling_q.py"])
    assert "MS-HF-003" not in rule_ids(arts[f"2_Router/{config_name}"])


def test_library_module_types_are_the_installed_library_unless_shadowed(tmp_path):
    """modules.json `transformers.X`: sentence-transformers imports the installed library when the
    repository has no transformers.py; a repository that ships one shadows it (and is reviewed)."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "transformers.AutoModel"}]
    write(tmp_path / "lib", {"modules.json": json.dumps(modules)})
    _, arts = scan_dir(tmp_path / "lib")
    assert not {"MS-HF-001", "MS-HF-003"} & rule_ids(arts["modules.json"])
    write(tmp_path / "shadow", {"modules.json": json.dumps(modules), "transformers.py": "class AutoModel: pass\n"})
    _, arts = scan_dir(tmp_path / "shadow")
    assert "MS-PY-020" in rule_ids(arts["transformers.py"]) and "MS-HF-001" in rule_ids(arts["modules.json"])
