"""Policy files: discovery, fail-on, allowlist extension, suppressions with reason and expiry."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers.cli import invoke

from modelshield import Policy, PolicyError, Severity
from modelshield.scanner.policy import normalise_module

TOMORROW = (dt.date.today() + dt.timedelta(days=30)).isoformat()
YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "models" / "sub").mkdir(parents=True)
    (root / ".git").mkdir()  # the repository root bounds the upward policy search
    (root / "models" / "config.json").write_text('{"model_type": "bert"}')  # something to scan
    (tmp_path / "outside.txt").write_text("x")
    (root / "models" / "sub" / "link.bin").symlink_to(tmp_path / "outside.txt")
    return root


def test_policy_found_upward_in_pyproject(repo: Path):
    (repo / "pyproject.toml").write_text('[tool.modelshield]\nfail_on = "critical"\n')
    policy = Policy.load(start=repo / "models" / "sub")
    assert policy.fail_on is Severity.CRITICAL and policy.source.endswith("pyproject.toml")


def test_modelshield_toml_takes_precedence_in_same_folder(repo: Path):
    (repo / "pyproject.toml").write_text('[tool.modelshield]\nfail_on = "critical"\n')
    (repo / "modelshield.toml").write_text('fail_on = "low"\n')
    assert Policy.load(start=repo).fail_on is Severity.LOW


def test_fail_on_threshold_from_cli(repo: Path):
    target = str(repo / "models")
    assert invoke("scan", target, cwd=repo).returncode == 1  # high symlink finding blocks by default
    assert invoke("scan", target, "--fail-on", "critical", cwd=repo).returncode == 0


def test_live_suppression_waives_and_is_reported(repo: Path):
    (repo / "modelshield.toml").write_text(
        f'[[suppress]]\nrule = "MS-GEN-004"\npath = "sub/*.bin"\nreason = "vendored test link"\nexpires = {TOMORROW}\n'
        'vex_justification = "code_not_reachable"\n')
    proc = invoke("scan", str(repo / "models"), "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stdout
    arts = {a["path"]: a for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    finding = arts["sub/link.bin"]["findings"][0]
    assert finding["suppressed"]["reason"] == "vendored test link"
    assert finding["suppressed"]["vex_justification"] == "code_not_reachable"


def test_expired_suppression_stops_working_and_says_so(repo: Path):
    (repo / "modelshield.toml").write_text(
        f'[[suppress]]\nrule = "MS-GEN-004"\npath = "*"\nreason = "old waiver"\nexpires = {YESTERDAY}\n')
    proc = invoke("scan", str(repo / "models"), cwd=repo)
    assert proc.returncode == 1
    assert "expired" in proc.stdout and "old waiver" in proc.stdout


@pytest.mark.parametrize("body, words", [
    ('[[suppress]]\nrule = "MS-GEN-004"\nexpires = 2030-01-01\n', "reason"),
    ('[[suppress]]\nrule = "MS-GEN-004"\nreason = "x"\n', "expires"),
    ('fail_on = "severe"\n', "fail_on must be one of critical, high, medium, low"),
    ('colour = "blue"\n', "unknown key"),
    ('[allow.globals]\n"mypkg.Model" = ""\n', "justification"),
    ("not toml [", "TOML"),
])
def test_bad_policy_is_a_one_line_error_exit_2(repo: Path, body: str, words: str):
    (repo / "modelshield.toml").write_text(body)
    proc = invoke("scan", str(repo / "models"), cwd=repo)
    assert proc.returncode == 2
    assert words in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(PolicyError):
        Policy.load(start=repo)


def test_inconclusive_pass_policy(tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.tflite").write_bytes(b"\x00unknown content")  # a loader modelshield cannot follow
    assert invoke("scan", str(tmp_path / "m"), cwd=tmp_path).returncode == 2
    (tmp_path / "modelshield.toml").write_text('inconclusive = "pass"\n')
    assert invoke("scan", str(tmp_path / "m"), cwd=tmp_path).returncode == 0


def test_classification_deny_beats_allow_and_covers_submodules():
    with pytest.raises(PolicyError, match="deny list"):
        Policy.from_mapping({"allow": {"globals": {"os.system": "a user cannot allow a gadget"}}})
    policy = Policy.default()
    assert policy.classify("posix", "system").verdict == "deny"
    assert policy.classify("asyncio.unix_events", "_UnixSubprocessTransport").verdict == "deny"
    assert policy.classify("mypkg.layers", "Custom").verdict == "unknown"
    allowed = Policy.from_mapping({"allow": {"globals": {"mypkg.layers.Custom": "our reviewed layer"}}})
    assert allowed.classify("mypkg.layers", "Custom").verdict == "allow"


def test_module_aliases():
    assert normalise_module("nt") == "os"
    assert normalise_module("posixpath") == "os.path"
    assert normalise_module("__builtin__") == "builtins"
