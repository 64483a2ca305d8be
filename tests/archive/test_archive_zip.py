"""Zip read as PyTorch's miniz reader reads it: evasions still analysed, hazards reported, bounded."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile

import pytest
import torch
from archive_zipcraft import (append_entry, deflate_zeros, hide, make_zip, patch_central, patch_local,
                              zip_with_raw_deflate)

from modelshield import Verdict, scan
from modelshield.scanner.blob import FileBlob
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact, Kind, Severity
from modelshield.scanner.formats import zip as zipmod
from modelshield.scanner.policy import Policy

PKL = "ckpt/data.pkl"


def _ids(art) -> list[str]:
    return [f.rule_id for f in art.findings]


def _one(path, policy=None):
    report = scan(str(path), policy)
    [art] = report.targets[0].artefacts
    return art


def _at(art, rule_id):
    return [f for f in art.findings if f.rule_id == rule_id]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("torch")
    path = folder / "ckpt.pt"
    torch.save({"w": torch.arange(4), "b": torch.ones(2)}, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def evasions(ckpt, tmp_path_factory) -> dict[str, str]:
    """Mutated checkpoints, each proven loadable by the real torch.load in ONE subprocess."""
    folder = tmp_path_factory.mktemp("evasions")
    variants = {
        "crc": patch_central(ckpt, PKL, crc=0xDEADBEEF),
        "name": patch_local(ckpt, PKL, new_name="ckpt/dXta.pkl"),
        "flags": patch_local(patch_central(ckpt, PKL, flags=0x0808 | 0x1010), PKL, flags=0x0808 | 0x1010),
        "hidden": hide(append_entry(ckpt, "ckpt/extra.pkl", b"\x80\x04K\x01."), "ckpt/extra.pkl"),
    }
    paths = {}
    for key, data in variants.items():
        paths[key] = str(folder / f"{key}.pt")
        with open(paths[key], "wb") as fh:
            fh.write(data)
    proof = subprocess.run([sys.executable, "-c", (
        "import json, sys, torch\n"
        "out = {}\n"
        "for k, p in json.loads(sys.argv[1]).items():\n"
        "    out[k] = sorted(torch.load(p, weights_only=True))\n"
        "print(json.dumps(out))\n"), json.dumps(paths)], capture_output=True, text=True, timeout=120)
    assert proof.returncode == 0, proof.stderr
    assert json.loads(proof.stdout) == {k: ["b", "w"] for k in variants}  # torch still loads every variant
    return paths


def test_real_torch_checkpoint_is_read_with_its_pickle_and_storages_inventoried(ckpt, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(ckpt)
    art = _one(path)
    assert art.format == "torch-zip"
    assert art.properties["zip"]["flavour"] == "torch-zip"
    tz = art.properties["torch_zip"]
    assert tz["pickles"] == [PKL] and tz["storages"] == 2 and tz["storage_bytes"] == 4 * 8 + 2 * 4
    assert tz["archive_name"] == "ckpt" and tz["byteorder"] == "little" and not tz["torchscript"]
    assert PKL in art.members
    assert not any(m.startswith("ckpt/data/") for m in art.members)  # tensor bytes never parsed
    # The container itself adds nothing above info on a file torch wrote.
    arc = [f for f in art.findings if f.rule_id.startswith("MS-ARC")]
    assert arc == []
    # Whatever the pickle engine says, it says it about data.pkl.
    assert all(f.location.member == PKL for f in art.findings)


def test_every_pkl_member_goes_to_the_pickle_engine(ckpt, tmp_path):
    path = tmp_path / "two.pt"
    path.write_bytes(append_entry(ckpt, "ckpt/other.pkl", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."))
    art = _one(path)
    assert art.properties["torch_zip"]["pickles"] == [PKL, "ckpt/other.pkl"]
    assert "ckpt/other.pkl" in art.members


def test_torchscript_archive_is_noted_and_its_code_dispatched(tmp_path):
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    art = _one(path)
    [note] = _at(art, "MS-ARC-016")
    assert note.kind is Kind.INFO and note.severity is Severity.LOW and "CVE-2022-45907" in note.cve
    assert any(m.endswith("linear.py") for m in art.members)
    assert art.properties["torch_zip"]["torchscript"] is True
    # __torch__.* classes come from the compiled code/ tree: no "unverified import" false alarm
    assert all(f.severity <= Severity.LOW for f in art.findings), [f.rule_id for f in art.findings]
    assert art.verdict.value == "clean"


def test_torch_classes_outside_torchscript_are_still_unverified(tmp_path):
    from modelshield.scanner.analysis.picklevm import analyse_pickle
    from modelshield.scanner.blob import BytesBlob
    from modelshield.scanner.context import ScanContext
    from modelshield.scanner.findings import Artefact
    from modelshield.scanner.policy import Policy

    data = b"\x80\x02c__torch__.evil\nThing\n)\x81."
    for flavour, expected in (("torch-zip", {"MS-PKL-002", "MS-PKL-004"}), ("torchscript", set())):
        ctx = ScanContext(artefact=Artefact(path="x"), policy=Policy.default(), dispatcher=analyse_blob)
        analyse_pickle(BytesBlob(data), ctx, flavour=flavour)
        assert {f.rule_id for f in ctx.artefact.findings if f.severity >= Severity.HIGH} == expected, flavour


@pytest.mark.parametrize("variant,rule,cve", [
    ("crc", "MS-ARC-010", "CVE-2025-10156"),
    ("name", "MS-ARC-009", "CVE-2025-1944"),
    ("flags", "MS-ARC-011", "CVE-2025-1945"),
])
def test_evasions_torch_loads_are_analysed_not_skipped(evasions, variant, rule, cve):
    art = _one(evasions[variant])
    [f] = _at(art, rule)
    assert f.location.member == PKL and cve in f.cve and f.kind is Kind.INFO
    assert PKL in art.members  # the pickle was analysed
    assert not _at(art, "MS-ARC-013") and not _at(art, "MS-GEN-006") or \
        all("VM" in f.message for f in _at(art, "MS-GEN-006"))


def test_hidden_local_only_entry_is_found_and_analysed(evasions):
    art = _one(evasions["hidden"])
    [f] = _at(art, "MS-ARC-007")
    assert f.location.member == "ckpt/extra.pkl" and f.kind is Kind.THREAT
    assert "ckpt/extra.pkl" in art.members
    assert art.properties["zip"]["hidden_entries"] == 1
    assert art.verdict is Verdict.UNSAFE


def test_encrypted_member_is_inconclusive(tmp_path):
    data = make_zip([("a.txt", b"x" * 10), ("secret.pkl", b"\x80\x04K\x01.")])
    data = patch_local(patch_central(data, "secret.pkl", flags=0x1), "secret.pkl", flags=0x1)
    (tmp_path / "enc.zip").write_bytes(data)
    art = _one(tmp_path / "enc.zip")
    [f] = _at(art, "MS-ARC-005")
    assert f.location.member == "secret.pkl" and art.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize("name,why", [
    ("../../etc/cron.d/x", "'..'"), ("/etc/passwd", "absolute"), ("C:\\Windows\\x.dll", "drive letter"),
    ("a/..\\..\\b", "'..'"),
])
def test_zip_slip_names(tmp_path, name, why):
    (tmp_path / "slip.zip").write_bytes(make_zip([(name, b"hello")]))
    art = _one(tmp_path / "slip.zip")
    [f] = _at(art, "MS-ARC-001")
    assert why in f.message and f.severity is Severity.HIGH and art.verdict is Verdict.UNSAFE


def test_symlink_entry(tmp_path):
    info = zipfile.ZipInfo("weights.bin")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    (tmp_path / "link.zip").write_bytes(make_zip([(info, b"../../../../home/user/.ssh/id_rsa"), ("ok.txt", b"x")]))
    art = _one(tmp_path / "link.zip")
    [f] = _at(art, "MS-ARC-002")
    assert f.location.member == "weights.bin" and f.severity is Severity.HIGH
    assert "id_rsa" in f.evidence["link_target"]
    assert "weights.bin" not in art.members  # a link is not content


def test_duplicate_names_are_reported_and_both_analysed(tmp_path):
    buf = io.BytesIO()
    with pytest.warns(UserWarning):
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("x.txt", b"one")
            zf.writestr("x.txt", b"two")
    (tmp_path / "dup.zip").write_bytes(buf.getvalue())
    art = _one(tmp_path / "dup.zip")
    [f] = _at(art, "MS-ARC-008")
    assert f.evidence["count"] == 2 and f.kind is Kind.INFO


def test_declared_1gb_members_are_bounded(tmp_path):
    stored = patch_central(make_zip([("big.bin", b"\x80\x04K\x01.")]), "big.bin", usize=1 << 30, csize=1 << 30)
    deflated = zip_with_raw_deflate("big.pkl", b"\x03\x00", usize=1 << 30)  # empty stream, 1 GB declared
    (tmp_path / "a.zip").write_bytes(stored)
    (tmp_path / "b.zip").write_bytes(deflated)
    tracemalloc.start()
    t0 = time.monotonic()
    a, b = _one(tmp_path / "a.zip"), _one(tmp_path / "b.zip")
    elapsed = time.monotonic() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5 and peak < 64 << 20
    assert any("1073741824" in f.message for f in _at(a, "MS-ARC-013"))
    assert any("not the declared 1073741824" in f.message for f in _at(b, "MS-ARC-012"))


def test_real_deflate_bomb_hits_the_ratio_cap(tmp_path):
    (tmp_path / "bomb.zip").write_bytes(zip_with_raw_deflate("zeros.bin", deflate_zeros(1), usize=1 << 30))
    t0 = time.monotonic()
    art = _one(tmp_path / "bomb.zip")
    assert time.monotonic() - t0 < 10
    [f] = _at(art, "MS-ARC-006")
    assert f.evidence["cap"] == "max_ratio" and f.evidence["produced"] < 1 << 30
    assert art.verdict is Verdict.INCONCLUSIVE


def test_total_decompressed_cap_is_named(tmp_path):
    (tmp_path / "bomb.zip").write_bytes(zip_with_raw_deflate("zeros.bin", deflate_zeros(1), usize=1 << 30))
    art = _one(tmp_path / "bomb.zip", Policy.from_mapping({"budgets": {"max_decompressed": 8 << 20}}))
    assert [f.evidence["cap"] for f in _at(art, "MS-ARC-006")] == ["max_decompressed"]


def test_nesting_depth_budget(tmp_path):
    data = make_zip([("leaf.txt", b"deep")])
    for level in range(8):
        data = make_zip([(f"level{level}.zip", data)])
    (tmp_path / "deep.zip").write_bytes(data)
    art = _one(tmp_path / "deep.zip")
    budget = [f for f in art.findings if f.rule_id == "MS-GEN-005"]
    assert budget and budget[0].evidence["budget"] == "max_container_depth"
    assert art.verdict is Verdict.INCONCLUSIVE


def test_member_count_budget(tmp_path):
    (tmp_path / "many.zip").write_bytes(make_zip([(f"f{i}.txt", b"x") for i in range(20)]))
    art = _one(tmp_path / "many.zip", Policy.from_mapping({"budgets": {"max_members": 10}}))
    assert [f.evidence["budget"] for f in _at(art, "MS-GEN-005")] == ["max_members"]


def test_truncated_zip_walks_local_headers(tmp_path):
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("b.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"beta"))
    data = make_zip([("a.txt", b"alpha"), ("inner.tar", tar.getvalue())])
    cut = data[:zipfile.ZipFile(io.BytesIO(data)).start_dir]  # the outer central directory is gone
    (tmp_path / "cut.zip").write_bytes(cut)
    art = _one(tmp_path / "cut.zip")
    [missing] = _at(art, "MS-ARC-013")
    assert "no end-of-central-directory" in missing.message and art.verdict is Verdict.INCONCLUSIVE
    assert {"a.txt", "inner.tar", "inner.tar!/b.txt"} <= set(art.members)
    assert not _at(art, "MS-ARC-007")  # no directory, so nothing is "hidden" from it


def test_deflated_members_and_numpy_npz_are_clean(tmp_path):
    import numpy as np

    np.savez_compressed(tmp_path / "arrays.npz", a=np.arange(10), b=np.ones((3, 3)))
    (tmp_path / "docs.zip").write_bytes(make_zip([("readme.txt", b"hello " * 1000), ("d/", b"")],
                                                 zipfile.ZIP_DEFLATED))
    report = scan(str(tmp_path))
    for art in report.targets[0].artefacts:
        assert art.format == "zip"
        assert not [f for f in art.findings if f.rule_id.startswith("MS-ARC")], art.findings
    npz = next(a for a in report.targets[0].artefacts if a.path == "arrays.npz")
    assert set(npz.members) == {"a.npy", "b.npy"}


def test_torch_zip_reads_only_headers_and_pickles(tmp_path):
    """A large checkpoint: only the directory, local headers and data.pkl are read."""
    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(16 << 20, dtype=torch.uint8), "v": torch.zeros(8 << 20, dtype=torch.uint8)}, path)

    class Counting(FileBlob):
        read = 0

        def read_at(self, offset, n):
            out = super().read_at(offset, n)
            Counting.read += len(out)
            return out

    with Counting(path) as blob:
        ctx = ScanContext(artefact=Artefact(path="big.pt"), policy=Policy.default(), dispatcher=analyse_blob)
        zipmod.analyse(blob, ctx)
    assert blob.size > 24 << 20
    assert Counting.read < 256 << 10, Counting.read


def test_cli_end_to_end_exit_codes(evasions, tmp_path):
    from helpers.cli import scan_json

    code, report = scan_json(evasions["hidden"])
    assert code in (0, 1) and report["verdict"] == "unsafe"
    [art] = report["targets"][0]["artefacts"]
    assert "MS-ARC-007" in [f["rule_id"] for f in art["findings"]]
    (tmp_path / "slip.zip").write_bytes(make_zip([("../x", b"y")]))
    code, report = scan_json(str(tmp_path / "slip.zip"))
    assert code == 1 and report["targets"][0]["artefacts"][0]["findings"][0]["rule_id"] == "MS-ARC-001"
    assert os.path.exists(tmp_path / "slip.zip")
