"""The gate end to end on the simplest inputs: exit codes, missing targets, unknown content."""
from __future__ import annotations

from helpers.cli import run_cli, scan_json_process

from modelshield import Verdict, scan


def test_unknown_text_file_is_inventoried_and_passes(tmp_path):
    (tmp_path / "notes.txt").write_text("just words\n")
    code, report = scan_json_process(str(tmp_path))
    assert code == 0
    [art] = report["targets"][0]["artefacts"]
    assert art["status"] == "inventoried" and art["verdict"] == "clean"
    assert len(art["sha256"]) == 64 and len(art["sha512"]) == 128


def test_missing_target_is_one_line_error_exit_2(tmp_path):
    proc = run_cli("scan", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_unrecognised_file_a_loader_opens_is_inconclusive(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"\x00\x01garbage that no module knows")
    report = scan(str(tmp_path))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert report.exit_code() == 2


def test_unrecognised_content_under_an_unpickler_name_is_inventoried_saying_why(tmp_path):
    # torch.load reads zip, tar or a pickle at offset 0: none here, and the unpickler stops at byte 0
    # (issue 20: the name words the message, the content decides).
    (tmp_path / "model.bin").write_bytes(b"\x00\x01garbage that no module knows")
    report = scan(str(tmp_path))
    assert report.verdict is Verdict.CLEAN and report.exit_code() == 0
    assert [f.rule_id for _, _, f in report.all_findings()] == ["MS-PKL-016"]


def test_symlink_outside_target_is_a_finding(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "weights.bin").symlink_to(outside)
    report = scan(str(repo))
    ids = [f.rule_id for _, _, f in report.all_findings()]
    assert "MS-GEN-004" in ids and report.verdict is Verdict.UNSAFE


def test_hashes_match_coreutils(tmp_path):
    import subprocess

    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 70_000)  # 17.9 MB: several chunks
    report = scan(str(blob))
    [art] = report.artefacts
    for tool, digest in (("sha256sum", art.sha256), ("sha512sum", art.sha512)):
        out = subprocess.run([tool, str(blob)], capture_output=True, text=True, check=True).stdout
        assert out.split()[0] == digest
    assert art.size == blob.stat().st_size


def test_text_and_json_data_are_inventoried_without_findings(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "WordPiece"}}')
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    report = scan(str(tmp_path))
    formats = {a.path: a.format for a in report.artefacts}
    assert formats == {"tokenizer.json": "json", "vocab.txt": "text"}
    assert all(a.status.value == "inventoried" and not a.findings for a in report.artefacts)


def test_text_named_for_a_loader_says_what_the_loader_does(tmp_path):
    (tmp_path / "pytorch_model.bin").write_text('{"not": "a checkpoint"}')  # torch.load: invalid load key '{'
    report = scan(str(tmp_path))
    assert report.verdict is Verdict.CLEAN
    [finding] = [f for _, _, f in report.all_findings()]
    assert finding.rule_id == "MS-PKL-016" and "'{'" in finding.message
    (tmp_path / "model.h5").write_text('{"not": "an HDF5 file"}')  # a loader modelshield cannot follow
    assert scan(str(tmp_path / "model.h5")).verdict is Verdict.INCONCLUSIVE


def test_text_output_keeps_info_observations_out_of_the_details(tmp_path):
    (tmp_path / "blob.dat2").write_bytes(b"\x00\xff" * 50)  # unknown binary, no loader name: info only
    proc = run_cli("scan", str(tmp_path))
    assert proc.returncode == 0
    assert "MS-GEN-001" not in proc.stdout
    assert "1 info (shown with --verbose, or in --format json)" in proc.stdout


def test_dangling_symlink_is_reported_not_silently_dropped(tmp_path):
    (tmp_path / "weights.bin").symlink_to(tmp_path / "gone.bin")
    report = scan(str(tmp_path))
    [art] = report.artefacts
    assert art.status.value == "skipped" and art.reason == "dangling symlink"
    assert [f.rule_id for f in art.findings] == ["MS-GEN-003"]
    assert report.exit_code() == 2
