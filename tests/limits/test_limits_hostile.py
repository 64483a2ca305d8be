"""Every input the fuzzing campaign found past the bounds ends in time, under 300 MB, with a finding
or inconclusive. Built at test time, smaller than found and with the matching budget lowered where
the full size would take more than seconds (the full sizes run in bench/bench_hostile.py)."""
from __future__ import annotations

import shutil

import pytest
from limits_helpers import assert_bounded, hostile, policy, scan_measured


def _findings(run, rule_id):
    return [f for a in run.artefacts() for f in a["findings"] if f["rule_id"] == rule_id]


@pytest.mark.parametrize("name", ["h5py-hang-attribute", "h5py-hang-mutant", "h5py-segfault", "h5py-balloon"])
def test_hdf5_mutants(tmp_path, name):
    shutil.copy(hostile.h5_mutants()[name], tmp_path / "model.h5")
    run = scan_measured(str(tmp_path / "model.h5"), "--policy", str(policy(tmp_path, max_native_seconds=1)))
    assert_bounded(run, seconds=30)
    [artefact] = run.artefacts()
    if name != "h5py-balloon":
        assert artefact["verdict"] == "inconclusive" and run.code == 2
        assert {f["rule_id"] for f in artefact["findings"]} & {"MS-LIM-002", "MS-LIM-003"}


def test_tar_long_name_record_of_a_gibibyte(tmp_path):
    """The full-size record: tarfile and GNU tar allocate 1 GiB for it; read here 64 KiB of it."""
    run = scan_measured(str(hostile.tar_long_name(tmp_path)))
    assert_bounded(run, seconds=20)
    assert run.code == 2 and _findings(run, "MS-ARC-013")  # the record runs past the end
    assert any("1073741824 bytes" in f["message"] for f in _findings(run, "MS-ARC-012"))


def test_tar_pax_header_is_read_record_by_record(tmp_path):
    """An 8 MiB pax header (a 1 GiB one in the bench) hides no member and costs no memory."""
    run = scan_measured(str(hostile.tar_pax_huge(tmp_path, scale=1 / 128)))
    assert_bounded(run, seconds=30)
    assert run.code == 1 and _findings(run, "MS-PKL-003")  # the pickle after it was analysed
    budget = scan_measured(str(hostile.tar_pax_huge(tmp_path, scale=1 / 128)), "--policy",
                           str(policy(tmp_path, max_header_bytes=1 << 20)))
    # Too large for the budget: not parsed, so its overrides are unknown: inconclusive besides the payload.
    assert budget.code == 1 and _findings(budget, "MS-ARC-012") and _findings(budget, "MS-GEN-005")


def test_xz_of_concatenated_streams_ends_with_a_ratio_finding(tmp_path):
    """16 streams, each under the per-stream floor: only counting both sides across them catches it."""
    path = hostile.xz_streams(tmp_path, scale=1 / 16)  # 16 x 4 MiB of zeros from ~10 KB
    run = scan_measured(str(path), "--policy", str(policy(tmp_path, ratio_floor=8 << 20)))
    assert_bounded(run, seconds=30)
    [cap] = _findings(run, "MS-ARC-006")
    assert "max_ratio" in cap["message"] and run.code == 2
    assert cap["evidence"]["consumed"] < 200_000 < cap["evidence"]["produced"]


def test_spill_to_temporary_files_is_capped_per_scan(tmp_path):
    import gzip

    for i in range(3):
        (tmp_path / f"part{i}.bin.gz").write_bytes(gzip.compress(bytes(range(256)) * (80_000 + i)))
    run = scan_measured(str(tmp_path), "--policy", str(policy(tmp_path, max_spill=40 << 20)))
    assert_bounded(run, seconds=30)
    caps = [f for f in _findings(run, "MS-ARC-006") if f["evidence"]["cap"] == "max_spill"]
    assert caps and run.code == 2  # 3 x 20 MB decompressed: the third spill passes 40 MiB


def test_safetensors_header_with_many_entries(tmp_path):
    path = hostile.safetensors_big_header(tmp_path, scale=0.003)  # 4,800 tensors; 1.6M in the bench
    run = scan_measured(str(path), "--policy", str(policy(tmp_path, max_members=4_000)))
    assert_bounded(run, seconds=20)
    assert any(f["evidence"].get("budget") == "max_members" for f in _findings(run, "MS-GEN-005"))
    clean = scan_measured(str(path))  # within the default budget it is analysed, and valid
    assert clean.code == 0 and clean.artefacts()[0]["properties"]["safetensors"]["tensors"] == 4_800


@pytest.mark.parametrize("builder", [hostile.gguf_many_metadata, hostile.gguf_many_tensors])
def test_gguf_with_millions_of_entries(tmp_path, builder):
    path = builder(tmp_path, scale=0.002)  # 6,000 / 4,000; 3M / 2M in the bench
    run = scan_measured(str(path), "--policy", str(policy(tmp_path, max_members=1_000)))
    assert_bounded(run, seconds=20)
    assert any(f["evidence"].get("budget") == "max_members" for f in _findings(run, "MS-GEN-005"))
    assert scan_measured(str(path)).code == 0


def test_pickle_with_millions_of_memo_entries(tmp_path):
    path = hostile.pickle_memo(tmp_path, scale=0.15)
    run = scan_measured(str(path), "--policy", str(policy(tmp_path, max_memory=32 << 20)))
    assert_bounded(run, seconds=30)
    assert run.code == 2 and _findings(run, "MS-LIM-001")


def test_pickle_with_distinct_imports_is_aggregated(tmp_path):
    path = hostile.pickle_imports(tmp_path, scale=0.03)  # 3,000 distinct imports
    run = scan_measured(str(path))
    assert_bounded(run, seconds=30)
    unverified = _findings(run, "MS-PKL-002")
    assert len(unverified) == 100  # 99 listed one by one, the 100th carries the rest
    folded = unverified[-1]
    assert folded["occurrences"] == 3_000 - 99 and len(folded["sites"]) == 50
    assert len(folded["evidence"]["folded_callables"]) == 50
    assert len(run.stdout) < 400_000 and run.code == 1
    text = scan_measured(str(path))  # the text report says so too
    assert text.code == 1


def test_text_report_shows_the_count(tmp_path):
    import subprocess
    import sys

    path = hostile.pickle_imports(tmp_path, scale=0.003)
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert "occurrences: 201 in this file (next at offset" in proc.stdout, proc.stdout[-1500:]


def test_sarif_counts_occurrences(tmp_path):
    import json
    import subprocess
    import sys

    path = hostile.pickle_imports(tmp_path, scale=0.003)
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", "--format", "sarif", str(path)],
                          capture_output=True, text=True, timeout=60)
    results = json.loads(proc.stdout)["runs"][0]["results"]
    folded = [r for r in results if r.get("occurrenceCount")]
    assert folded and folded[0]["occurrenceCount"] == 201 and len(folded[0]["relatedLocations"]) == 50


def test_many_concatenated_pickles(tmp_path):
    path = hostile.pickle_concatenated(tmp_path, scale=0.02)  # 20,000 streams
    run = scan_measured(str(path), "--policy", str(policy(tmp_path, max_streams=2_000)))
    assert_bounded(run, seconds=30)
    assert any(f["evidence"].get("budget") == "max_streams" for f in _findings(run, "MS-GEN-005"))


def test_folder_of_empty_files(tmp_path):
    folder = hostile.empty_files(tmp_path, scale=0.03)  # 3,000; 100,000 in the bench
    run = scan_measured(str(folder))
    assert_bounded(run, seconds=60)
    assert run.code == 0 and len(run.artefacts()) == 3_000
