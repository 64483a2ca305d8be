"""Issue 11, honest messages and the conventions people expect, through the real CLI."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from helpers.cli import invoke, run_cli
from gate_helpers import EVIL

from modelshield.scanner.sources.hub_verify import cache_delete_command

COMMANDS = [["scan"], ["rules"], ["version"], ["sbom"], ["sbom", "create"], ["sbom", "diff"], ["sbom", "validate"]]


def _invoke(*args: str):
    """The real CLI in-process (CliRunner): same command tree, no interpreter start-up."""
    from typer.testing import CliRunner

    from modelshield.cli import app

    return CliRunner().invoke(app, list(args), prog_name="modelshield")


def _commands() -> list[list[str]]:
    """Every command of the CLI, read from its own help (new commands are checked too)."""
    found: list[list[str]] = []
    todo: list[list[str]] = [[]]
    while todo:
        path = todo.pop()
        text = _invoke(*path, "-h").stdout
        found.append(path)
        section = text.split("Commands:", 1)[1] if "Commands:" in text else ""
        for line in section.splitlines():
            m = re.match(r"^  (\w[\w-]*)\s", line)
            if m:
                todo.append([*path, m.group(1)])
    return found


# -- honest messages --------------------------------------------------------------------------
def test_lfs_pointer_says_to_fetch_it(tmp_path: Path):
    (tmp_path / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 4242\n")
    proc = invoke("scan", str(tmp_path))
    assert proc.returncode == 2
    assert "MS-GEN-009 LFS pointer: the content (sha256 " + "ab" * 32 + ", 4242 bytes) was never fetched" in proc.stdout
    assert "run `git lfs pull`" in proc.stdout and "matches no format" not in proc.stdout


def test_output_paths_are_checked_before_the_scan(tmp_path: Path):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed}", "HF_HOME": str(tmp_path / "hf")}
    for flag in ("-o", "--sbom"):
        proc = run_cli("scan", "hf://org/name@main", flag, str(tmp_path / "missing" / "out.json"), env=env)
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"modelshield: error: cannot write {flag} ") and "does not exist" in proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and "127.0.0.1" not in proc.stderr  # the Hub was never asked


def test_a_target_given_twice_is_scanned_once(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(EVIL)
    proc = invoke("scan", "a.pkl", "./a.pkl", str(tmp_path / "a.pkl"), "--format", "json", cwd=tmp_path)
    assert len(json.loads(proc.stdout)["targets"]) == 1


def test_readme_api_example_prints_an_unreachable_hub_targets_error(tmp_path: Path):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"### Python API\n```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "model.bin").write_bytes(EVIL)
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{closed}", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2", "HF_HUB_OFFLINE": "0"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "verdict: unsafe"  # README: verdict: clean | waived | unsafe | inconclusive
    assert any(line.startswith(f"error: cannot connect to http://127.0.0.1:{closed}") for line in lines), lines
    assert lines[-1] == "exit code: 1"
    assert any(line.startswith("MS-PKL-001 critical model.bin") for line in lines)


def test_cache_fix_text_names_the_installed_clients_command():
    import huggingface_hub
    from packaging.version import Version

    cmd = cache_delete_command("org/name", "model")
    assert cmd == ("hf cache rm model/org/name" if Version(huggingface_hub.__version__) >= Version("1.0")
                   else "hf cache delete")
    rules = (ROOT / "scanner" / "data" / "rules" / "hub.toml").read_text()
    assert "huggingface-cli delete-cache" not in rules and "{cache_cmd}" in rules


def test_rule_messages_say_what_the_bytes_say(tmp_path: Path):
    (tmp_path / "p.pkl").write_bytes(b"cposix\nsystem\n(S'echo x'\ntR.")
    proc = invoke("scan", str(tmp_path / "p.pkl"))
    assert "MS-PKL-001 The pickle imports posix.system (os.system on POSIX) (denied:" in proc.stdout


# -- conventions ------------------------------------------------------------------------------
def test_every_command_has_h_version_examples_and_plain_choices():
    commands = _commands()
    assert {tuple(c) for c in COMMANDS} <= {tuple(c) for c in commands}
    for path in commands:
        text = _invoke(*path, "-h").stdout
        assert text.startswith("Usage: modelshield"), path
        for bad in ("<bool>", "<str>", "list[", "<path>"):
            assert bad not in text, (path, bad)
        if path and path != ["version"]:
            assert "Examples:" in text, path
        version = _invoke(*path, "--version")
        assert version.exit_code == 0 and version.stdout.startswith("modelshield "), path
    scan_help = run_cli("scan", "-h").stdout  # and once as a user runs it
    assert "--format <text|columns|json|sarif|markdown|github|gitlab>" in scan_help
    assert "--phase <development|deployment>" in scan_help and "-h, --help" in scan_help
    assert "--phase <development|deployment|end-of-life>" in _invoke("sbom", "create", "-h").stdout


def test_fail_on_is_case_insensitive_and_the_same_set_as_the_policy(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(EVIL)
    (tmp_path / ".git").mkdir()
    assert invoke("scan", "a.pkl", "--fail-on", "CRITICAL", cwd=tmp_path).returncode == 1
    assert invoke("scan", "a.pkl", "--fail-on", "info", cwd=tmp_path).returncode == 2
    (tmp_path / "modelshield.toml").write_text('fail_on = "info"\n')
    proc = invoke("scan", "a.pkl", cwd=tmp_path)
    assert proc.returncode == 2 and "fail_on must be one of critical, high, medium, low" in proc.stderr
    (tmp_path / "modelshield.toml").write_text('fail_on = "Critical"\n')
    assert invoke("scan", "a.pkl", cwd=tmp_path).returncode == 1


def test_rules_explains_one_rule():
    proc = invoke("rules", "ms-pkl-001")
    assert proc.returncode == 0
    for heading in ("MS-PKL-001  Pickle imports a dangerous global", "What it reports:", "Why it matters:", "Fix:",
                    "References:", "CWE-502  Deserialization of Untrusted Data", "Example (text output):",
                    'rule = "MS-PKL-001"'):
        assert heading in proc.stdout, heading
    bad = invoke("rules", "MS-NOPE-001")
    assert bad.returncode == 2
    assert bad.stderr == "modelshield: error: unknown rule 'MS-NOPE-001'; `modelshield rules` lists them\n"


def _on_a_tty(args: list[str], env: dict[str, str], stderr: bool = False) -> str:
    main, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "modelshield", *args], stdout=secondary,
                            stderr=secondary if stderr else subprocess.DEVNULL, env={**os.environ, **env})
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_terminal_unless_no_color(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(EVIL)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    coloured = _on_a_tty(["scan", str(tmp_path)], env)
    assert "\x1b[1;31mCRITICAL" in coloured and "verdict: \x1b[1;31munsafe\x1b[0m" in coloured
    plain = _on_a_tty(["scan", str(tmp_path)], {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain and "verdict: unsafe" in plain
    piped = run_cli("scan", str(tmp_path))
    assert "\x1b[" not in piped.stdout


def test_progress_bar_on_a_terminal_escapes_names(tmp_path: Path):
    from gate_helpers import HOSTILE_NAME

    (tmp_path / HOSTILE_NAME).write_bytes(EVIL + b"\x00" * 3_000_000)
    screen = _on_a_tty(["scan", str(tmp_path)], {"TERM": "xterm", "NO_COLOR": "1"}, stderr=True)
    assert "\x1b[2J" not in screen and "\nverdict: clean" not in screen.replace("\r", "")
    assert "verdict: unsafe" in screen


def test_english_units_info_counts_and_final_newlines(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(EVIL)
    (tmp_path / "blob.dat2").write_bytes(b"\x00\xff" * 750_000)  # 1.5 MB, unknown binary: info only
    proc = invoke("scan", str(tmp_path))
    assert "(unknown, 1.5 MB) inventoried" in proc.stdout
    assert "2 files: 1 analysed, 1 inventoried, 0 skipped." in proc.stdout
    assert "findings: 2 critical; 1 info (shown with --verbose, or in --format json)" in proc.stdout
    assert "verdict: unsafe (2 findings at or above --fail-on high)" in proc.stdout
    assert "MS-GEN-001" in invoke("scan", str(tmp_path), "--verbose").stdout
    one = invoke("scan", str(tmp_path / "a.pkl"), "--format", "markdown").stdout
    assert "- findings: 2 critical" in one and one.endswith("\n") and not one.endswith("\n\n")
    assert f"1 file scanned, {len(EVIL)} B." in one
    from modelshield import scan
    from modelshield.scanner import output

    report = scan(str(tmp_path))
    for fmt in output.FORMATS:
        out = output.render(report, fmt)
        assert out.endswith("\n") and not out.endswith("\n\n"), fmt


def test_columns_layout_fits_the_width(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(EVIL)
    proc = invoke("scan", str(tmp_path), "--format", "columns", env={"COLUMNS": "100"})
    rows = proc.stdout.splitlines()
    header = rows.index(next(r for r in rows if r.startswith("SEVERITY")))
    assert rows[header].split() == ["SEVERITY", "RULE", "FILE", "MESSAGE"]
    assert all(len(r) <= 100 for r in rows[header:header + 3])
    assert rows[header + 1].startswith("CRITICAL  MS-PKL-001  a.pkl")


def test_errors_are_printed_once(tmp_path: Path):
    proc = invoke("scan", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.count("no such file or directory") == 1 and "no such file" not in proc.stdout
    out = tmp_path / "r.txt"
    proc = invoke("scan", str(tmp_path / "nope"), "-o", str(out))
    assert proc.stderr.count("no such file") == 1 and out.read_text().count("no such file") == 1


def test_sbom_validate_names_the_declared_version(tmp_path: Path):
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}))
    proc = invoke("sbom", "validate", str(bom), "--spec-version", "1.7")
    assert proc.returncode == 1 and "declares CycloneDX 1.6, not 1.7" in proc.stdout
    assert "valid CycloneDX 1.7" not in proc.stdout


def test_readme_ci_recipe_runs_as_written(tmp_path: Path):
    readme = (ROOT / "README.md").read_text()
    workflow = yaml.safe_load(re.search(r"### Gating CI\n```yaml\n(.*?)```", readme, re.S).group(1))
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[0].startswith("actions/checkout@") and uses[1].startswith("actions/setup-python@")
    assert uses[-1].startswith("github/codeql-action/upload-sarif@") and steps[-1]["if"] == "always()"
    runs = [s["run"] for s in steps if "run" in s]
    install, commands = runs[0], runs[1:]
    from packaging.requirements import Requirement

    requirement = Requirement(install.split("pip install ", 1)[1].strip().strip('"'))
    assert requirement.name == "modelshield" and requirement.url.startswith("git+https://")  # not PyPI yet
    models = tmp_path / "models"
    models.mkdir()
    (models / "config.json").write_text('{"model_type": "bert"}')
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, (command, proc.stderr)
    assert json.loads((tmp_path / steps[-1]["with"]["sarif_file"]).read_text())["version"] == "2.1.0"
    (models / "evil.pkl").write_bytes(EVIL)
    proc = subprocess.run(["bash", "-c", commands[0]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1  # the gate blocks


@pytest.mark.parametrize("script, args", [("benign_wide.py", ["OUT", "nosuchfamily"]),
                                          ("run_loaders.py", ["CORPUS", "nosuchfamily", "OUT.json"])])
def test_fixture_scripts_fail_with_one_line_on_an_unknown_family(tmp_path: Path, script: str, args: list[str]):
    proc = subprocess.run([sys.executable, str(ROOT / "fixtures" / script), *[str(tmp_path / a) if a.isupper() else a
                                                                                for a in args]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "unknown family" in proc.stderr
    assert "test extras" in (ROOT / "fixtures" / script).read_text()


def test_one_progress_bar_for_all_targets(tmp_path: Path):
    """`--from` with several targets: one bar counting targets done (not one bar per target)."""
    listing = tmp_path / "targets.txt"
    names = []
    for i in range(3):
        (tmp_path / f"t{i}").mkdir()
        (tmp_path / f"t{i}" / "weights.bin").write_bytes(b"\x00" * 2_000_000)
        names.append(str(tmp_path / f"t{i}"))
    listing.write_text("\n".join(names) + "\n")
    screen = _on_a_tty(["scan", "--from", str(listing)], {"TERM": "xterm", "NO_COLOR": "1"}, stderr=True)
    assert "/3 targets" in screen, screen[-2000:]
    assert "scanning " + names[1] not in screen  # no bar of its own per target
