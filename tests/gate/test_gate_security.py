"""Issue 11, security defects 1-5, through the real CLI: no forged output, no silent policy from a
parent folder, no empty pass, no silent waivers, no VCS internals as artefacts."""
from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from urllib.parse import unquote_to_bytes

import jsonschema
import pytest
from helpers.cli import invoke, run_cli
from gate_helpers import (ANNOTATION_NAME, CONTROL, EVIL, HOSTILE_NAME, RAW_BYTES_NAME, SPACE_NAME, hostile_folder,
                          waiver)

from modelshield import scan
from modelshield.scanner.output.escape import text as esc, unescape

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return hostile_folder(tmp_path_factory.mktemp("hostile") / "models")


def _no_raw_controls(out: str) -> None:
    assert "\x1b" not in out
    assert not CONTROL.search(out), repr(CONTROL.search(out))


# -- 1. output injection -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "columns"])
def test_text_formats_escape_hostile_names_and_globals(hostile: Path, fmt: str):
    proc = run_cli("scan", str(hostile), "--format", fmt, "--verbose", env={"COLUMNS": "400"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    _no_raw_controls(proc.stdout)
    verdicts = [line for line in proc.stdout.splitlines() if line.startswith("verdict:")]
    assert verdicts == ["verdict: unsafe (10 findings at or above --fail-on high)"], verdicts
    assert esc(HOSTILE_NAME) in proc.stdout  # a\x1b[2Jb\nverdict: clean\n.pkl, on one line
    assert "bad\\xff\\xfe\\x1b[0m name.pkl" in proc.stdout  # non-UTF-8 bytes shown losslessly
    assert "evil\\x1b[2J\\x1b[31mmod.thing" in proc.stdout  # the ANSI pickle global, escaped
    assert proc.stdout.endswith("\n")


def test_escaping_is_lossless():
    for raw in (HOSTILE_NAME, ANNOTATION_NAME, SPACE_NAME, os.fsdecode(RAW_BYTES_NAME), "back\\slash\\x1b",
                "rtl\u202eexe.pkl", "nbsp\u00a0\u2028line", "\U0001F600 ok", "\ud800 lone"):
        shown = esc(raw)
        assert shown.isprintable() and unescape(shown) == raw, (raw, shown)


def test_markdown_cells_cannot_be_split_or_inject(hostile: Path):
    proc = run_cli("scan", str(hostile), "--format", "markdown")
    assert proc.returncode == 1
    _no_raw_controls(proc.stdout)
    lines = proc.stdout.splitlines()
    assert lines[0] == "## :x: modelshield: unsafe"
    for line in lines:
        if line.startswith("|"):
            header = next(h for h in lines if h.startswith("|") and lines.index(h) <= lines.index(line))
            cells = len(re.findall(r"(?<!\\)\|", line))
            assert cells in (5, 6), line  # 4 or 5 columns: never an extra cell from a name
            assert cells >= 5 and header
    assert "verdict: clean" not in proc.stdout.replace("\\nverdict: clean\\n", "")
    assert "<" not in re.sub(r"`[^`]*`", "", proc.stdout).replace("\\<", "")  # no raw HTML outside code spans


def test_github_annotations_cannot_be_forged(hostile: Path):
    proc = run_cli("scan", "models", "--format", "github", cwd=hostile.parent)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines), lines
    assert "\r" not in proc.stdout and "\x1b" not in proc.stdout
    for line in lines:
        head, sep, _message = line[2:].partition("::")
        assert sep
        level, _, props = head.partition(" ")
        parsed = dict(prop.partition("=")[::2] for prop in props.split(","))
        assert set(parsed) <= {"file", "title", "line"} and ":" not in "".join(parsed.values()), props
        assert parsed["title"].startswith(("MS-", "modelshield")), parsed  # never a forged title
    files = {re.search(r"file=([^,]*)", line).group(1) for line in lines if "file=" in line}
    assert "models/x%2Cy%3A%3Aerror title=forged%3A%3Az.pkl" in files
    assert "models/my model\\r\\n%25 weights.pkl" in files
    assert lines[-1].startswith("::notice title=modelshield%3A unsafe::")


def test_sarif_uris_are_rfc3986_and_decode_to_the_file_names(hostile: Path):
    proc = run_cli("scan", "models", "--format", "sarif", cwd=hostile.parent)
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema, cls=jsonschema.Draft4Validator)
    uris = [a["location"]["uri"] for a in sarif["runs"][0]["artifacts"]]
    assert all(re.fullmatch(r"[A-Za-z0-9\-._~%/]+", u) for u in uris), uris
    decoded = {unquote_to_bytes(u) for u in uris}
    for name in (HOSTILE_NAME, ANNOTATION_NAME, SPACE_NAME):
        assert b"models/" + name.encode() in decoded
    assert b"models/" + RAW_BYTES_NAME in decoded
    for result in sarif["runs"][0]["results"]:
        _no_raw_controls(result["message"]["text"])


def test_json_keeps_names_exact(hostile: Path):
    proc = run_cli("scan", str(hostile), "--format", "json")
    paths = {a["path"] for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    assert HOSTILE_NAME in paths and os.fsdecode(RAW_BYTES_NAME) in paths


# -- 2. policy discovery -------------------------------------------------------------------------
@pytest.fixture
def nested(tmp_path: Path) -> dict[str, Path]:
    """tmp/top/proj/work/models/evil.pkl, a waiving policy in tmp/top, HOME elsewhere."""
    top = tmp_path / "top"
    work = top / "proj" / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "evil.pkl").write_bytes(EVIL)
    (top / "modelshield.toml").write_text(waiver())
    home = tmp_path / "home"
    home.mkdir()
    return {"top": top, "proj": top / "proj", "work": work, "home": home}


def test_a_policy_in_a_parent_folder_outside_any_repo_is_ignored(nested):
    proc = invoke("scan", "models", cwd=nested["work"], env={"HOME": str(nested["home"])})
    assert proc.returncode == 1
    assert "policy: built-in defaults" in proc.stdout and "verdict: unsafe" in proc.stdout


def test_policy_search_stops_at_the_repository_root(nested):
    (nested["proj"] / ".git").mkdir()  # the repo is proj/; the policy in top/ is above it
    proc = invoke("scan", "models", cwd=nested["work"], env={"HOME": str(nested["home"])})
    assert proc.returncode == 1 and "policy: built-in defaults" in proc.stdout
    (nested["top"] / "modelshield.toml").rename(nested["proj"] / "modelshield.toml")
    proc = invoke("scan", "models", cwd=nested["work"], env={"HOME": str(nested["home"])})
    assert proc.returncode == 0
    assert f"policy: {nested['proj'] / 'modelshield.toml'} (2 findings waived)" in proc.stdout
    proc = invoke("scan", "models", "--no-policy", cwd=nested["work"], env={"HOME": str(nested["home"])})
    assert proc.returncode == 1 and "policy: none (--no-policy)" in proc.stdout


def test_policy_search_stops_at_the_home_folder(nested):
    proc = invoke("scan", "models", cwd=nested["work"], env={"HOME": str(nested["proj"])})
    assert proc.returncode == 1  # top/ is above HOME: never searched
    (nested["top"] / "modelshield.toml").rename(nested["proj"] / "modelshield.toml")
    proc = invoke("scan", "models", cwd=nested["work"], env={"HOME": str(nested["proj"])})
    assert proc.returncode == 0 and "2 findings waived" in proc.stdout


# -- 3. an empty gate never passes ----------------------------------------------------------------
def test_nothing_to_scan_exits_2(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = invoke("scan", str(empty))
    assert proc.returncode == 2 and "nothing scanned" in proc.stderr
    assert proc.stderr.count("nothing scanned") == 1 and "nothing scanned" not in proc.stdout
    assert "verdict: clean" not in proc.stdout
    only_vcs = tmp_path / "vcs"
    (only_vcs / ".git").mkdir(parents=True)
    (only_vcs / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert invoke("scan", str(only_vcs)).returncode == 2
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.pkl").write_bytes(EVIL)
    proc = invoke("scan", str(models), "--exclude", "*.pkl")
    assert proc.returncode == 2 and "nothing scanned" in proc.stderr
    report = scan(str(empty))
    assert report.exit_code() == 2 and "nothing scanned" in report.errors[0]


# -- 4. waivers say what they do ------------------------------------------------------------------
def test_waived_findings_never_read_clean(tmp_path: Path):
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / ".git").mkdir()
    (tmp_path / "modelshield.toml").write_text(waiver(path="evil.pkl"))
    proc = invoke("scan", "evil.pkl", cwd=tmp_path)
    assert proc.returncode == 0
    assert "verdict: waived" in proc.stdout and "clean" not in proc.stdout.replace("verdict: waived", "")
    assert "2 waived" in proc.stdout and "(2 findings waived)" in proc.stdout
    report = json.loads(invoke("scan", "evil.pkl", "--format", "json", cwd=tmp_path).stdout)
    schema = json.loads((resources.files("modelshield.scanner") / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["verdict"] == "waived" and report["targets"][0]["artefacts"][0]["verdict"] == "waived"
    assert report["policy"]["waived"] == 2


def test_allowing_a_denied_global_is_rejected_at_load(tmp_path: Path):
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / ".git").mkdir()
    (tmp_path / "modelshield.toml").write_text('[allow.globals]\n"posix.system" = "we trust it"\n')
    proc = invoke("scan", "evil.pkl", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "allow.globals.'posix.system' cannot be allowed" in proc.stderr and "deny list" in proc.stderr


def test_unknown_and_unused_suppressions_are_reported(tmp_path: Path):
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / ".git").mkdir()
    (tmp_path / "modelshield.toml").write_text(waiver(rule="MS-PKL-999") + waiver(rule="MS-GEN-004"))
    proc = invoke("scan", "evil.pkl", cwd=tmp_path)
    assert proc.returncode == 1
    notes = [line for line in proc.stdout.splitlines() if line.startswith("policy note:")]
    assert len(notes) == 2
    assert "no rule id matches 'MS-PKL-999'" in notes[0] and "matched nothing in this scan" in notes[1]


def test_unparseable_expires_names_the_key_and_format(tmp_path: Path):
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / ".git").mkdir()
    (tmp_path / "modelshield.toml").write_text(waiver(expires='"31/03/2027"'))
    proc = invoke("scan", "evil.pkl", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "suppress[0].expires" in proc.stderr and "YYYY-MM-DD" in proc.stderr


# -- 5. VCS metadata and local filters ------------------------------------------------------------
def test_vcs_folders_are_skipped_and_listed(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / ".git" / "hooks").mkdir(parents=True)
    (repo / ".git" / "hooks" / "pre-commit.sample").write_text("#!/bin/sh\nexit 0\n")
    (repo / ".git" / "index").write_bytes(b"DIRC\x00\x00\x00\x02" + b"\x00" * 64)
    (repo / ".hg").mkdir()
    (repo / "config.json").write_text('{"model_type": "bert"}')
    bom = tmp_path / "bom.json"
    proc = invoke("scan", str(repo), "--format", "json", "--sbom", str(bom))
    assert proc.returncode == 0, proc.stderr
    arts = {a["path"]: a for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    assert set(arts) == {".git", ".hg", "config.json"}
    assert arts[".git"]["status"] == "skipped" and "version-control" in arts[".git"]["reason"]
    names = re.findall(r'"name": "([^"]*)"', bom.read_text())
    assert "config.json" in names and not any(n.startswith((".git/", ".hg/")) for n in names)
    text = invoke("scan", str(repo)).stdout
    assert "skipped (version-control metadata (--include-vcs to scan it): 2)" in text
    arts = {a["path"] for a in json.loads(invoke("scan", str(repo), "--format", "json", "--include-vcs").stdout)
            ["targets"][0]["artefacts"]}
    assert ".git/index" in arts and ".git/hooks/pre-commit.sample" in arts


def test_include_and_exclude_work_for_local_targets(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "evil.pkl").write_bytes(EVIL)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    proc = invoke("scan", str(tmp_path), "--format", "json", "--exclude", "sub/")
    assert proc.returncode == 0
    arts = {a["path"]: a for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    assert arts["sub/evil.pkl"]["status"] == "skipped"
    assert arts["sub/evil.pkl"]["reason"] == "excluded by --include/--exclude"
    proc = invoke("scan", str(tmp_path), "--format", "json", "--include", "sub/*")
    assert proc.returncode == 1
    arts = {a["path"]: a for a in json.loads(proc.stdout)["targets"][0]["artefacts"]}
    assert arts["config.json"]["status"] == "skipped" and arts["sub/evil.pkl"]["verdict"] == "unsafe"
