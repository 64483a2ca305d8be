"""Containers read the way every reader reads them: what a streaming unzip or GNU tar extracts is
analysed even where zipfile, torch.load or tarfile see nothing, and the disagreement is reported.
The real readers (java.util.zip.ZipInputStream, GNU tar) prove in subprocesses that they extract
the payload and that loading it runs the marker."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from limits_helpers import hostile

from modelshield import scan

LOAD = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"


def _rules(path) -> list[str]:
    return [f.rule_id for a in scan(str(path)).artefacts for f in a.findings]


def _marker_runs(pickle_path, tmp_path) -> bool:
    marker = tmp_path / "marker"
    subprocess.run([sys.executable, "-c", LOAD, str(pickle_path)], env=hostile.marker_env(marker), timeout=60,
                   capture_output=True)
    return marker.exists()


def test_zip_directory_pointed_at_offset_zero(tmp_path):
    path = hostile.zip_directory_at_zero(tmp_path)
    assert zipfile.ZipFile(path).namelist() == []  # what zipfile and torch.load see
    rules = _rules(path)
    assert "MS-PKL-003" in rules and rules.count("MS-ARC-007") == 2  # both entries hidden from the directory
    report = scan(str(path))
    assert report.exit_code() == 1


JAVA_UNZIP = """
import java.io.*; import java.util.zip.*;
public class Unzip { public static void main(String[] a) throws Exception {
  try (ZipInputStream z = new ZipInputStream(new FileInputStream(a[0]))) {
    ZipEntry e; while ((e = z.getNextEntry()) != null) {
      if (e.getName().endsWith("data.pkl")) { try (OutputStream o = new FileOutputStream(a[1])) { z.transferTo(o); } }
    } } } }
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime for the streaming-unzip proof")
def test_a_streaming_reader_extracts_and_loads_it(tmp_path):
    path = hostile.zip_directory_at_zero(tmp_path)
    source = tmp_path / "Unzip.java"
    source.write_text(JAVA_UNZIP)
    out = tmp_path / "extracted.pkl"
    proc = subprocess.run(["java", str(source), str(path), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _marker_runs(out, tmp_path)


def test_zip_entry_the_local_headers_never_reach(tmp_path):
    path = hostile.zip_overlapping(tmp_path)
    assert zipfile.ZipFile(path).namelist() == ["cover.dat", "hidden.pkl"]
    rules = _rules(path)
    assert "MS-ARC-017" in rules and "MS-PKL-003" in rules
    with zipfile.ZipFile(path) as zf:
        (tmp_path / "hidden.pkl").write_bytes(zf.read("hidden.pkl"))
    assert _marker_runs(tmp_path / "hidden.pkl", tmp_path)


def test_benign_zips_agree_in_both_views(tmp_path):
    import torch

    torch.save({"w": torch.arange(4)}, tmp_path / "model.pt")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", "x" * 1000)
        zf.writestr("nested/inner.zip", _stored_zip())  # PK signatures inside a stored member
    for name in ("model.pt", "plain.zip"):
        rules = _rules(tmp_path / name)
        assert not {"MS-ARC-007", "MS-ARC-017", "MS-ARC-009"} & set(rules), (name, rules)


def _stored_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.bin", b"\0" * 100)
        zf.writestr("y.bin", b"\1" * 100)
    return buf.getvalue()


def test_tar_read_past_a_bad_checksum_as_gnu_tar_does(tmp_path):
    path = hostile.tar_after_bad_checksum(tmp_path)
    assert [m.name for m in tarfile.open(path)] == ["readme.txt"]  # tarfile stops at the bad header
    report = scan(str(path))
    rules = [f.rule_id for f in report.artefacts[0].findings]
    assert "MS-PKL-003" in rules and "MS-ARC-007" in rules and "MS-ARC-012" in rules
    assert report.exit_code() == 1


@pytest.mark.skipif(shutil.which("tar") is None, reason="no GNU tar")
def test_gnu_tar_extracts_it_and_the_pickle_runs(tmp_path):
    path = hostile.tar_after_bad_checksum(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(["tar", "-xf", str(path), "-C", str(out)], capture_output=True, text=True, timeout=60)
    assert "Skipping to next header" in proc.stderr  # exits 2, after extracting what follows
    assert (out / "data.pkl").exists() and _marker_runs(out / "data.pkl", tmp_path)


def test_tar_members_only_tarfile_reads(tmp_path):
    """A symlink entry with a size: tarfile reads its 'data' as the next header, GNU tar skips it."""
    inner = tarfile.TarInfo("hidden.pkl")
    payload = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    inner.size = len(payload)
    inner_block = inner.tobuf(format=tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512)
    folder = tarfile.TarInfo("link")
    folder.type = tarfile.SYMTYPE
    folder.linkname = "target"
    folder.size = len(inner_block)
    data = folder.tobuf(format=tarfile.USTAR_FORMAT) + inner_block + b"\0" * 1024
    path = tmp_path / "dirsize.tar"
    path.write_bytes(data)
    assert [m.name for m in tarfile.open(path)] == ["link", "hidden.pkl"]
    if shutil.which("tar"):
        listed = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True, timeout=60).stdout
        assert listed.split() == ["link"]
    art = scan(str(path)).artefacts[0]
    hidden = [f for f in art.findings if f.rule_id == "MS-ARC-017"]
    assert hidden and "tarfile (torch.load) reads it where GNU tar skips" in hidden[0].message
    assert any(f.rule_id == "MS-PKL-001" for f in art.findings)


def test_tar_after_the_end_marker_and_long_names(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("d/" + "n" * 150 + ".txt")  # a GNU long name
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    late = tarfile.TarInfo("late.pkl")
    payload = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    late.size = len(payload)
    raw = buf.getvalue() + b"\0" * 4096 + late.tobuf() + payload + b"\0" * (-len(payload) % 512) + b"\0" * 1024
    (tmp_path / "late.tar").write_bytes(raw)
    art = scan(str(tmp_path / "late.tar")).artefacts[0]
    assert "d/" + "n" * 150 + ".txt" in art.members
    why = [f.message for f in art.findings if f.rule_id == "MS-ARC-007"]
    assert why and "end-of-archive marker" in why[0]


def test_gnu_tar_skip_scan_stays_fast_on_large_members(tmp_path):
    """After a bad header GNU tar reads block by block; 64 MiB of data must not take long here."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("big.bin")
        info.size = 64 << 20
        tf.addfile(info, io.BytesIO(os.urandom(1 << 20) * 64))
    raw = bytearray(buf.getvalue())
    raw[148] ^= 1
    raw[:0] = tarfile.TarInfo("a").tobuf()  # a valid first header (size 0) so it sniffs as tar
    (tmp_path / "big.tar").write_bytes(raw)
    import time

    started = time.monotonic()
    scan(str(tmp_path / "big.tar"))
    assert time.monotonic() - started < 30
