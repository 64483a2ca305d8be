"""Tar, compression wrappers and 7z/rar: members dispatched by content, hazards, caps, truncation."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zlib

import joblib
import lz4.frame
import numpy as np
import py7zr
import pytest
import zstandard
from archive_zipcraft import deflate_zeros, make_zip

from modelshield import Verdict, scan
from modelshield.scanner.findings import Severity

PAYLOAD = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)


def _one(path, policy=None):
    [art] = scan(str(path), policy).targets[0].artefacts
    return art


def _at(art, rule_id):
    return [f for f in art.findings if f.rule_id == rule_id]


def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            if isinstance(info, str):
                info = tarfile.TarInfo(info)
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


# --- compression wrappers ---------------------------------------------------------------------

COMPRESSORS = {
    "gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "z": zlib.compress,
    "zst": lambda d: zstandard.ZstdCompressor().compress(d), "lz4": lz4.frame.compress,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_each_compression_round_trips_to_the_inner_pickle(tmp_path, suffix):
    path = tmp_path / f"model.pkl.{suffix}"
    path.write_bytes(COMPRESSORS[suffix](PAYLOAD))
    art = _one(path)
    assert art.format == "compressed" and art.members == ["model.pkl"]
    assert art.properties["compressed"]["decompressed_size"] == len(PAYLOAD)
    assert not [f for f in art.findings if f.rule_id.startswith("MS-ARC")]


def test_content_not_name_decides(tmp_path):
    (tmp_path / "weights.bin").write_bytes(gzip.compress(_tar([("inner.txt", b"hello")])))
    art = _one(tmp_path / "weights.bin")
    assert art.format == "compressed" and "weights.bin!/inner.txt" in art.members


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_real_joblib_compressed_files_are_unwrapped(tmp_path, compress):
    path = tmp_path / f"est.{compress}.joblib"
    joblib.dump({"coef": np.arange(5)}, path, compress=(compress, 3))
    art = _one(path)
    assert art.format == "compressed" and art.properties["compressed"]["compression"] in (
        compress, {"lzma": "lzma-alone", "bz2": "bzip2"}.get(compress))
    assert art.members and not [f for f in art.findings if f.rule_id.startswith("MS-ARC")]


def test_joblib_legacy_zfile(tmp_path):
    from joblib.numpy_pickle_compat import write_zfile

    with open(tmp_path / "old.pkl_01.npy.z", "wb") as fh:
        write_zfile(fh, PAYLOAD)
    art = _one(tmp_path / "old.pkl_01.npy.z")
    assert art.properties["compressed"]["compression"] == "zfile"
    assert art.properties["compressed"]["decompressed_size"] == len(PAYLOAD)


def test_weak_magic_is_confirmed_by_decoding(tmp_path):
    (tmp_path / "noise.bin").write_bytes(b"\x78\x9c" + bytes(range(256)) * 4)
    (tmp_path / "alone.bin").write_bytes(b"]\x00\x00\x80\x00" + b"\xff" * 8 + b"garbage" * 10)
    for name in ("noise.bin", "alone.bin"):
        assert _one(tmp_path / name).format != "compressed"


def test_concatenated_gzip_members_are_one_stream(tmp_path):
    tar = _tar([("a.txt", b"alpha" * 100), ("b.txt", b"beta" * 100)])
    half = len(tar) // 2
    (tmp_path / "x.tar.gz").write_bytes(gzip.compress(tar[:half]) + gzip.compress(tar[half:]) + b"\0" * 64)
    art = _one(tmp_path / "x.tar.gz")
    assert art.properties["compressed"]["streams"] == 2
    assert {"x.tar!/a.txt", "x.tar!/b.txt"} <= set(art.members)
    assert not _at(art, "MS-ARC-012")  # zero padding is normal


def test_truncated_stream_is_analysed_and_inconclusive(tmp_path):
    data = gzip.compress(_tar([("a.txt", b"x" * 5000), ("b.txt", bytes(range(256)) * 400)]))
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    art = _one(tmp_path / "cut.tar.gz")
    assert any("gzip stream truncated" in f.message and f.location.member is None for f in _at(art, "MS-ARC-013"))
    assert art.verdict is Verdict.INCONCLUSIVE
    assert "cut.tar!/a.txt" in art.members  # what was decompressed was analysed


def test_gzip_bomb_hits_the_ratio_cap(tmp_path):
    body = deflate_zeros(1)
    (tmp_path / "bomb.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + b"\0" * 8)
    art = _one(tmp_path / "bomb.gz")
    [f] = _at(art, "MS-ARC-006")
    assert f.evidence["cap"] == "max_ratio" and art.verdict is Verdict.INCONCLUSIVE


def test_nested_zip_in_tar_in_gzip(tmp_path):
    inner = make_zip([("deep/model.pkl", PAYLOAD)])
    (tmp_path / "bundle.tgz").write_bytes(gzip.compress(_tar([("pkg/inner.zip", inner)])))
    art = _one(tmp_path / "bundle.tgz")
    assert "bundle.tar!/pkg/inner.zip!/deep/model.pkl" in art.members
    assert not [f for f in art.findings if f.rule_id.startswith("MS-ARC")]


# --- tar --------------------------------------------------------------------------------------

def test_tar_hazards(tmp_path):
    dev = tarfile.TarInfo("dev/sda")
    dev.type = tarfile.CHRTYPE
    data = _tar([("../../evil.sh", b"echo"), _link("lnk", "/etc/passwd"), _link("hard", "../outside", tarfile.LNKTYPE),
                 (dev, None), ("ok.txt", b"fine")])
    (tmp_path / "bad.tar").write_bytes(data)
    art = _one(tmp_path / "bad.tar")
    assert [f.location.member for f in _at(art, "MS-ARC-001")] == ["../../evil.sh"]
    [sym] = _at(art, "MS-ARC-002")
    [hard] = _at(art, "MS-ARC-003")
    [device] = _at(art, "MS-ARC-004")
    assert sym.severity is Severity.HIGH and hard.severity is Severity.HIGH and "character device" in device.message
    assert {"../../evil.sh", "ok.txt"} <= set(art.members) and "lnk" not in art.members
    assert art.verdict is Verdict.UNSAFE


def test_relative_symlink_inside_tar_is_medium(tmp_path):
    (tmp_path / "l.tar").write_bytes(_tar([("a.txt", b"x"), _link("b.txt", "a.txt")]))
    [f] = _at(_one(tmp_path / "l.tar"), "MS-ARC-002")
    assert f.severity is Severity.MEDIUM


def test_member_after_end_of_archive_is_hidden_but_analysed(tmp_path):
    visible = _tar([("a.txt", b"alpha")])
    hidden = _tar([("sneaky.txt", b"hidden")])
    (tmp_path / "h.tar").write_bytes(visible + hidden)
    art = _one(tmp_path / "h.tar")
    [f] = _at(art, "MS-ARC-007")
    assert f.location.member == "sneaky.txt" and "sneaky.txt" in art.members


def test_truncated_tar(tmp_path):
    data = _tar([("a.txt", b"x" * 100), ("b.bin", b"y" * 5000)])
    (tmp_path / "t.tar").write_bytes(data[:1024 + 512 + 100])
    art = _one(tmp_path / "t.tar")
    assert _at(art, "MS-ARC-013") and art.verdict is Verdict.INCONCLUSIVE and "a.txt" in art.members


def test_legacy_torch_tar_layout_is_analysed(tmp_path):
    entries = [(n, pickle.dumps(n, protocol=2)) for n in ("sys_info", "pickle", "tensors", "storages")]
    (tmp_path / "old.pt").write_bytes(_tar(entries))
    art = _one(tmp_path / "old.pt")
    assert art.format == "tar" and art.properties["tar"]["torch_legacy"] is True
    # torch_legacy.analyse_tar reads the header pickles (or the sniffer does while it is missing).
    assert {"sys_info", "pickle"} <= set(art.members)


# --- 7z and rar -------------------------------------------------------------------------------

def test_7z_members_are_dispatched(tmp_path):
    with py7zr.SevenZipFile(tmp_path / "m.7z", "w") as z:
        z.writestr(PAYLOAD, "model.pkl")
        z.writestr(make_zip([("x.txt", b"y")]), "inner.zip")
    art = _one(tmp_path / "m.7z")
    assert art.format == "sevenzip" and {"model.pkl", "inner.zip", "inner.zip!/x.txt"} <= set(art.members)
    assert not [f for f in art.findings if f.rule_id.startswith("MS-ARC")]


def test_encrypted_7z_is_inconclusive(tmp_path):
    with py7zr.SevenZipFile(tmp_path / "e.7z", "w", password="secret") as z:
        z.writestr(PAYLOAD, "model.pkl")
    art = _one(tmp_path / "e.7z")
    assert _at(art, "MS-ARC-005") and art.verdict is Verdict.INCONCLUSIVE and not art.members


def test_7z_traversal_and_truncation(tmp_path):
    with py7zr.SevenZipFile(tmp_path / "s.7z", "w") as z:
        z.set_encoded_header_mode(False)
        z.writestr(b"x", "aa/escape.txt")  # py7zr refuses to write '..': patch the plain header
    data = bytearray((tmp_path / "s.7z").read_bytes())
    i = data.index("aa/escape".encode("utf-16-le"))
    data[i:i + 4] = "..".encode("utf-16-le")
    next_off, next_size = struct.unpack_from("<QQ", data, 12)
    header = bytes(data[32 + next_off:32 + next_off + next_size])
    struct.pack_into("<L", data, 28, zlib.crc32(header))
    struct.pack_into("<L", data, 8, zlib.crc32(bytes(data[12:32])))
    (tmp_path / "s.7z").write_bytes(bytes(data))
    [slip] = _at(_one(tmp_path / "s.7z"), "MS-ARC-001")
    assert slip.location.member == "../escape.txt"
    data = (tmp_path / "s.7z").read_bytes()
    (tmp_path / "cut.7z").write_bytes(data[: len(data) - 20])
    art = _one(tmp_path / "cut.7z")
    assert _at(art, "MS-ARC-013") and art.verdict is Verdict.INCONCLUSIVE


def test_rar_is_unsupported_and_inconclusive(tmp_path):
    (tmp_path / "a.rar").write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64)
    art = _one(tmp_path / "a.rar")
    assert _at(art, "MS-ARC-014") and art.verdict is Verdict.INCONCLUSIVE
