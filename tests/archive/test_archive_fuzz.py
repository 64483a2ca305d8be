"""Hypothesis mutations of valid archives: never an uncaught exception, an internal error or a hang."""
from __future__ import annotations

import gzip
import io
import tarfile
import time
import zipfile

import py7zr
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.scanner.blob import BytesBlob
from modelshield.scanner.budgets import Budgets
from modelshield.scanner.context import ScanContext
from modelshield.scanner.dispatch import analyse_blob
from modelshield.scanner.findings import Artefact
from modelshield.scanner.policy import Policy


def _seeds() -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3)}, buf)
    ckpt = buf.getvalue()
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"hello " * 50)
        zf.writestr("b/inner.bin", b"\x00\x01" * 40)
    t = io.BytesIO()
    with tarfile.open(fileobj=t, mode="w") as tf:
        info = tarfile.TarInfo("x.txt")
        info.size = 300
        tf.addfile(info, io.BytesIO(b"x" * 300))
    s = io.BytesIO()
    with py7zr.SevenZipFile(s, "w") as sz:
        sz.writestr(b"content" * 20, "c.txt")
    return {"torch": ckpt, "zip": z.getvalue(), "tar": t.getvalue(), "tgz": gzip.compress(t.getvalue()),
            "7z": s.getvalue()}


SEEDS = _seeds()


@st.composite
def mutated(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "big"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[:pos]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "big" and len(data) > pos + 4:
            data[pos:pos + 4] = b"\xff\xff\xff\x7f"  # huge declared size or offset
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_archives_fail_cleanly(data):
    budgets = Budgets(max_seconds=10)
    ctx = ScanContext(artefact=Artefact(path="fuzz.bin"), policy=Policy.default(), budgets=budgets)
    t0 = time.monotonic()
    analyse_blob(BytesBlob(data, "fuzz.bin"), ctx, "fuzz.bin")
    assert time.monotonic() - t0 < 10
    internal = [f for f in ctx.artefact.findings if "internal error" in f.message]
    archive_bugs = [f for f in internal if f.evidence.get("format") in ("zip", "tar", "compressed", "sevenzip")]
    assert not archive_bugs, archive_bugs[0].message


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_prefix_of_a_seed_fails_cleanly(seed):
    data = SEEDS[seed]
    for cut in range(0, len(data), max(1, len(data) // 64)):
        ctx = ScanContext(artefact=Artefact(path="cut.bin"), policy=Policy.default())
        analyse_blob(BytesBlob(data[:cut], "cut.bin"), ctx, "cut.bin")
        bugs = [f for f in ctx.artefact.findings if "internal error" in f.message]
        assert not bugs, (cut, bugs[0].message)
