"""Issue 19: the GitHub Action's scripts, the pre-commit hook, the GitLab template, the container
recipe and the release flow, each run for real against benign and malicious folders."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "schemas"
BIN = Path(sys.executable).parent
EVIL = b"cos\nsystem\n(S'echo MODELSHIELD'\ntR."


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MODELSHIELD_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    benign = base / "benign"
    benign.mkdir()
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(benign / "model.safetensors"))
    (benign / "config.json").write_text('{"model_type": "bert", "hidden_size": 4}')
    evil = base / "evil"
    evil.mkdir()
    (evil / "config.json").write_text('{"model_type": "bert"}')
    (evil / "pytorch model\n::error::x.pkl").write_bytes(EVIL)  # a name that tries to forge an annotation
    return {"benign": benign, "evil": evil, "base": base}


# -- GitHub Action -----------------------------------------------------------------------------
def test_action_yml_declares_the_inputs_and_runs_repo_scripts():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"path", "fail-on", "policy", "format", "sbom", "require-signature", "version"} <= set(action["inputs"])
    for step in action["runs"]["steps"]:
        if "run" in step:
            script = re.search(r'"\$GITHUB_ACTION_PATH/(ci/github/[\w.]+\.sh)"', step["run"]).group(1)
            assert (ROOT / script).is_file()
            assert "${{" not in step["run"]  # inputs only through env: no script injection
    uses = [s.get("uses", "") for s in action["runs"]["steps"]]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert action["runs"]["steps"][-1]["if"] == "always()"  # the gate runs after the uploads


def _action(models_dir: Path, tmp: Path, **inputs: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    out, summary, outputs = tmp / "results", tmp / "summary.md", tmp / "outputs.txt"
    env = _env(MODELSHIELD_PATH=str(models_dir), MODELSHIELD_OUTPUT_DIR=str(out), GITHUB_STEP_SUMMARY=str(summary),
               GITHUB_OUTPUT=str(outputs), **{f"MODELSHIELD_{k.upper()}": v for k, v in inputs.items()})
    proc = subprocess.run(["bash", str(ROOT / "ci/github/scan.sh")], env=env, capture_output=True, text=True,
                          cwd=tmp, timeout=300)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    gate = subprocess.run(["bash", str(ROOT / "ci/github/gate.sh")], capture_output=True, text=True,
                          env=_env(MODELSHIELD_EXIT_CODE=values["exit-code"]))
    return proc, values, gate.returncode, out, summary  # type: ignore[return-value]


def test_action_passes_a_benign_folder(models, tmp_path: Path):
    proc, values, gate, out, summary = _action(models["benign"], tmp_path, fail_on="high", format="json",
                                               sbom="development")
    assert proc.returncode == 0, proc.stderr
    assert values["exit-code"] == "0" and gate == 0 and values["verdict"] == "clean"
    sarif = json.loads((out / "modelshield.sarif").read_text())
    jsonschema.validate(sarif, json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()),
                        cls=jsonschema.Draft4Validator)
    bom = json.loads((out / "model.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX" and values["sbom"].endswith("model.cdx.json")
    assert json.loads((out / "report.json").read_text())["verdict"] == "clean"
    lines = summary.read_text().splitlines()
    assert lines[0] == "## :white_check_mark: modelshield: clean"
    assert lines[2:4] == ["| target | verdict | files | findings |", "|---|---|---|---|"]
    assert lines[4] == f"| `{models['benign']}` | :white_check_mark: clean | 2 | 0 |"
    assert "### Findings" not in summary.read_text()
    assert lines[-1] == "- verdict: clean"
    assert [line for line in proc.stdout.splitlines() if line.startswith("::")] == \
        ["::notice title=modelshield%3A clean::2 files, 0 blocking findings, 0 waived; policy: built-in defaults"]


def test_action_blocks_a_malicious_folder(models, tmp_path: Path):
    proc, values, gate, out, summary = _action(models["evil"], tmp_path, sbom="")
    assert values["exit-code"] == "1" and gate == 1 and values["verdict"] == "unsafe" and values["sbom"] == ""
    assert not (out / "model.cdx.json").exists()
    lines = summary.read_text().splitlines()
    assert lines[0] == "## :x: modelshield: unsafe"
    assert lines[4] == f"| `{models['evil']}` | :x: unsafe | 2 | 2 |"
    assert f"| :x: unsafe | `pytorch model\\n::error::x.pkl` | `pickle_text` | {len(EVIL)} B |" in lines
    rows = [line for line in lines if line.startswith("| critical |")]
    assert len(rows) == 2 and all("[MS-PKL-00" in r and "docs/rules.md#ms-pkl-00" in r for r in rows)
    assert lines[-1] == "- verdict: unsafe (2 findings at or above --fail-on high)"
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 3 and all(a.startswith("::error file=") for a in annotations[:2])
    assert all("pytorch model\\n%3A%3Aerror%3A%3Ax.pkl,title=MS-PKL-00" in a for a in annotations[:2])  # stays a value
    jsonschema.validate(json.loads((out / "modelshield.sarif").read_text()),
                        json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()), cls=jsonschema.Draft4Validator)


def test_action_fail_on_policy_and_install_inputs(models, tmp_path: Path):
    _, values, gate, _, _ = _action(models["evil"], tmp_path / "a", fail_on="critical", policy="none")
    assert values["exit-code"] == "1"  # os.system is critical
    _, values, gate, _, _ = _action(tmp_path / "missing", tmp_path / "b")
    assert values["exit-code"] == "2" and gate == 2
    dry = {"MODELSHIELD_DRY_RUN": "1", "GITHUB_ACTION_PATH": "/action"}
    install = ROOT / "ci/github/install.sh"
    run = lambda v: subprocess.run(["bash", str(install)], env=_env(**dry, MODELSHIELD_VERSION=v),  # noqa: E731
                                   capture_output=True, text=True).stdout.strip()
    assert run("") == "/action[formats]"
    assert run("1.2.0") == "modelshield[formats]==1.2.0"
    assert run("modelshield @ git+https://example.org/x@v1") == "modelshield @ git+https://example.org/x@v1"


def test_action_require_signature_is_never_silently_ignored(models, tmp_path: Path):
    proc, values, gate, _, _ = _action(models["benign"], tmp_path, require_signature="true")
    help_text = subprocess.run([BIN / "modelshield", "scan", "-h"], capture_output=True, text=True).stdout
    if "--require-signature" in help_text:  # signatures have landed: an unsigned folder fails
        assert values["exit-code"] != "0" and gate != 0
    else:
        assert values["exit-code"] == "2" and gate == 2 and "needs a modelshield with signature" in proc.stdout


# -- pre-commit --------------------------------------------------------------------------------
def test_pre_commit_hook_blocks_a_staged_malicious_file(models, tmp_path: Path):
    pre_commit = BIN / "pre-commit"
    if not pre_commit.exists():
        pre_commit = Path(shutil.which("pre-commit") or "pre-commit")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    shutil.copy(models["benign"] / "model.safetensors", repo / "weights.bin")  # extension says nothing
    (repo / "notes.txt").write_text("hello\n")
    git("add", "weights.bin", "notes.txt")
    # Offline and fast: the hook's virtualenv installs only modelshield itself and sees the test
    # interpreter's installed dependencies; nothing is downloaded (PIP_NO_BUILD_ISOLATION=0 is pip's
    # spelling of --no-build-isolation).
    paths = sysconfig.get_paths()
    env = _env(PRE_COMMIT_HOME=str(tmp_path / "pc-home"), VIRTUALENV_SYSTEM_SITE_PACKAGES="1", PIP_NO_INDEX="1",
               PYTHONPATH=os.pathsep.join(dict.fromkeys((paths["purelib"], paths["platlib"]))),
               PIP_NO_BUILD_ISOLATION="0", PIP_NO_DEPS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    ok = subprocess.run([str(pre_commit), "try-repo", str(ROOT), "modelshield"], cwd=repo, env=env,
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    hook_line = next(line for line in ok.stdout.splitlines() if line.startswith("modelshield"))
    assert hook_line.endswith("Passed")
    assert "verdict" not in ok.stdout  # quiet on success
    (repo / "model.ckpt").write_bytes(EVIL)
    git("add", "model.ckpt")
    bad = subprocess.run([str(pre_commit), "try-repo", str(ROOT), "modelshield"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1
    assert "Failed" in bad.stdout and "MS-PKL-001" in bad.stdout and "model.ckpt" in bad.stdout
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "modelshield" and hooks[0]["types"] == ["file"]


# -- GitLab --------------------------------------------------------------------------------------
def _gitlab_script(models_dir: Path, tmp: Path) -> int:
    template = yaml.safe_load((ROOT / "ci/gitlab/modelshield.gitlab-ci.yml").read_text())
    job = template["modelshield_sast"]
    variables = {**template["variables"], "MODELSHIELD_PATH": str(models_dir)}
    assert job["artifacts"]["reports"]["sast"] == "gl-sast-report.json" and job["artifacts"]["when"] == "always"
    code = 0
    for line in job["script"]:
        code = subprocess.run(["bash", "-c", line], cwd=tmp, env=_env(**variables), capture_output=True,
                              text=True).returncode
    return code


@pytest.mark.parametrize("which, expected", [("benign", 0), ("evil", 1)])
def test_gitlab_template_writes_the_security_report_and_sarif(models, tmp_path: Path, which: str, expected: int):
    assert _gitlab_script(models[which], tmp_path) == expected
    report = json.loads((tmp_path / "gl-sast-report.json").read_text())
    schema = json.loads((SCHEMAS / "gitlab-sast-report-format-15.0.6.json").read_text())
    jsonschema.validate(report, schema, cls=jsonschema.Draft7Validator)
    assert report["scan"]["status"] == "success" and report["scan"]["type"] == "sast"
    vulns = report["vulnerabilities"]
    if which == "benign":
        assert vulns == []
    else:
        assert {v["identifiers"][0]["value"] for v in vulns} == {"MS-PKL-001", "MS-PKL-003"}
        assert {v["severity"] for v in vulns} == {"Critical"}
        assert all(v["location"]["file"] == "pytorch model\n::error::x.pkl" for v in vulns)
        assert len({v["id"] for v in vulns}) == 2
    assert json.loads((tmp_path / "modelshield.sarif").read_text())["version"] == "2.1.0"


# -- container ---------------------------------------------------------------------------------
def test_dockerfile_is_linted_and_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    hadolint = BIN / "hadolint" if (BIN / "hadolint").exists() else shutil.which("hadolint")
    if hadolint:
        lint = subprocess.run([str(hadolint), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    keys = [i[0] for i in instructions]
    assert instructions[keys.index("FROM")][1].startswith("python:3.12-slim")
    user = instructions[len(keys) - 1 - keys[::-1].index("USER")][1]
    assert user.split(":")[0] not in ("root", "0")
    assert keys.index("USER") > keys.index("RUN") and instructions[keys.index("ENTRYPOINT")][1] == '["modelshield"]'
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (ROOT / source).exists(), source
    assert "docker run" in (ROOT / "README.md").read_text()


# -- release -------------------------------------------------------------------------------------
def test_release_recipe_scans_writes_the_deployment_bom_and_signs(models, tmp_path: Path):
    dev = tmp_path / "dev.cdx.json"
    assert subprocess.run([BIN / "modelshield", "sbom", str(models["benign"]), "-o", str(dev)], env=_env(),
                          capture_output=True).returncode == 0
    out = tmp_path / "assets"
    proc = subprocess.run(["bash", str(ROOT / "examples/release.sh"), str(models["benign"]), str(dev), str(out)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    bom = json.loads((out / "model.cdx.json").read_text())
    phases = json.dumps(bom["metadata"].get("lifecycles", []))
    assert "post-build" in phases  # the deployment phase
    assert "NOT signed" in proc.stderr
    assert proc.stdout.splitlines()[-2:] == [f"attach: {out}/model.cdx.json", f"attach: {out}/modelshield.sarif"]
    assert json.loads((out / "modelshield.sarif").read_text())["version"] == "2.1.0"
    refused = subprocess.run(["bash", str(ROOT / "examples/release.sh"), str(models["benign"]), str(dev), str(out)],
                             env=_env(MODELSHIELD_REQUIRE_SIGNING="1"), capture_output=True, text=True)
    assert refused.returncode == 2 and "not releasing unsigned" in refused.stderr
    blocked = subprocess.run(["bash", str(ROOT / "examples/release.sh"), str(models["evil"]), str(dev),
                              str(tmp_path / "evil-assets")], env=_env(), capture_output=True, text=True)
    assert blocked.returncode == 1 and "attach:" not in blocked.stdout  # the release stops at the gate
    assert "\n::error::" not in blocked.stderr and "model\\n::error::x.pkl" in blocked.stderr  # BOM notes escaped
    has_sign = "sign" in subprocess.run([BIN / "modelshield", "-h"], capture_output=True, text=True).stdout.split(
        "Commands:")[1].split()
    if has_sign:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = tmp_path / "key.pem"
        key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        signed = subprocess.run(["bash", str(ROOT / "examples/release.sh"), str(models["benign"]), str(dev),
                                 str(tmp_path / "signed")], env=_env(MODELSHIELD_SIGNING_KEY=str(key)),
                                capture_output=True, text=True)
        assert signed.returncode == 0, signed.stderr
        assert (tmp_path / "signed" / "model.sig").is_file()


def test_release_workflow_runs_the_same_steps():
    workflow = yaml.safe_load((ROOT / "examples/release.yml").read_text())
    assert workflow["permissions"] == {"contents": "write", "security-events": "write"}
    runs = "\n".join(s.get("run", "") for s in workflow["jobs"]["release"]["steps"])
    script = (ROOT / "examples/release.sh").read_text()
    for command in ("modelshield scan", "--phase deployment --from-bom", "modelshield sbom validate",
                    "modelshield sign", "gh release upload"):
        assert command in runs, command
    for command in ("modelshield scan", "--phase deployment --from-bom", "modelshield sbom validate",
                    "modelshield sign"):
        assert command in script, command
