"""Every input the fuzzing campaign found past the bounds ends in time, under 300 MB, with a finding
or inconclusive. Built at test time, smaller than found and with the matching budget lowered where
the full size would take more than seconds (the full sizes run in bench/bench_hostile.py).

The inputs share one CLI scan (one folder, one policy holding every lowered budget): the peak
resident size measured is the largest of any process of the scan (the CLI, the zygote, each
worker), so each input is held to the bound, and a start-up is paid once instead of per input.
Inputs whose budgets would interfere (the spill cap counts across the scan) get their own run.
"""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from limits_helpers import assert_bounded, hostile, policy, scan_measured

from modelshield import Policy, scan
from modelshield.scanner.output import render

H5 = ["h5py-hang-attribute", "h5py-hang-mutant", "h5py-segfault", "h5py-balloon"]
BUDGETS = {"max_native_seconds": 1, "max_members": 1_000, "max_streams": 2_000}
# The 4.9M-entry memo pickle (MS-LIM-001 under a lowered max_memory) is in test_limits_worker.py:
# h5py cannot even be imported under such a cap.


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "set"
    folder.mkdir()
    for name in H5:
        shutil.copy(hostile.h5_mutants()[name], folder / f"{name}.h5")
    hostile.tar_long_name(folder)  # the full-size 1 GiB record (sparse file)
    hostile.tar_pax_huge(folder, scale=1 / 128)  # 8 MiB pax header; 1 GiB in the bench
    hostile.safetensors_big_header(folder, scale=0.003)  # 4,800 tensors; 1.6M in the bench
    hostile.gguf_many_metadata(folder, scale=0.002)  # 6,000 keys; 3M in the bench
    hostile.gguf_many_tensors(folder, scale=0.002)  # 4,000 tensors; 2M in the bench
    hostile.pickle_imports(folder, scale=0.03)  # 3,000 distinct imports; 100,000 in the bench
    hostile.pickle_concatenated(folder, scale=0.02)  # 20,000 streams; 10^6 in the bench
    hostile.empty_files(folder, scale=0.03)  # 3,000 files; 100,000 in the bench
    return folder


@pytest.fixture(scope="module")
def run(inputs, tmp_path_factory):
    """One measured CLI scan of every input under the lowered budgets."""
    result = scan_measured(str(inputs), "--policy", str(policy(tmp_path_factory.mktemp("policy"), **BUDGETS)))
    assert_bounded(result, seconds=120)
    assert result.code == 1  # unsafe pickles among them (and inconclusive artefacts)
    return result


def _artefact(run, path: str) -> dict:
    [artefact] = [a for a in run.artefacts() if a["path"] == path]
    return artefact


def _findings(artefact: dict, rule_id: str) -> list[dict]:
    return [f for f in artefact["findings"] if f["rule_id"] == rule_id]


def _budget(artefact: dict, budget: str) -> bool:
    return any(f["evidence"].get("budget") == budget for f in _findings(artefact, "MS-GEN-005"))


@pytest.mark.parametrize("name", H5)
def test_hdf5_mutants(run, name):
    """Two hang h5py's attribute reader, one crashes it, one makes it ask for ~270 MB."""
    artefact = _artefact(run, f"{name}.h5")
    if name == "h5py-balloon":  # under the worker's cap the allocation fails and h5py reads on
        assert artefact["format"] in ("hdf5", "unknown")
    else:
        assert artefact["verdict"] == "inconclusive"
        assert {f["rule_id"] for f in artefact["findings"]} & {"MS-LIM-002", "MS-LIM-003"}


def test_tar_long_name_record_of_a_gibibyte(run):
    """tarfile and GNU tar allocate 1 GiB for the record; read here 64 KiB of it."""
    artefact = _artefact(run, "longname.tar")
    assert _findings(artefact, "MS-ARC-013")  # the record runs past the end
    assert any("1073741824 bytes" in f["message"] for f in _findings(artefact, "MS-ARC-012"))


def test_tar_pax_header_is_read_record_by_record(run, inputs):
    """An 8 MiB pax header hides no member and costs no memory; past the header budget, inconclusive."""
    artefact = _artefact(run, "pax.tar")
    assert artefact["verdict"] == "unsafe" and _findings(artefact, "MS-PKL-003")  # the pickle after it
    pol = Policy.default()
    pol.budgets.max_header_bytes = 1 << 20
    [budget] = scan(str(inputs / "pax.tar"), pol).artefacts
    rules = {f.rule_id for f in budget.findings}
    assert {"MS-ARC-012", "MS-GEN-005", "MS-PKL-003"} <= rules  # not parsed: its overrides are unknown


def test_safetensors_header_with_many_entries(run, inputs):
    assert _budget(_artefact(run, "big-header.safetensors"), "max_members")
    [clean] = scan(str(inputs / "big-header.safetensors")).artefacts  # within the default budget: valid
    assert not clean.findings and clean.properties["safetensors"]["tensors"] == 4_800


@pytest.mark.parametrize("name", ["many-kv.gguf", "many-tensors.gguf"])
def test_gguf_with_millions_of_entries(run, inputs, name):
    assert _budget(_artefact(run, name), "max_members")
    [clean] = scan(str(inputs / name)).artefacts
    assert not clean.findings and clean.format == "gguf"


def test_pickle_with_distinct_imports_is_aggregated(run):
    import json

    artefact = _artefact(run, "imports.pkl")
    unverified = _findings(artefact, "MS-PKL-002")
    assert len(unverified) == 100  # 99 listed one by one, the 100th carries the rest
    folded = unverified[-1]
    assert folded["occurrences"] == 3_000 - 99 and len(folded["sites"]) == 50
    assert len(folded["evidence"]["folded_callables"]) == 50
    assert len(json.dumps(artefact)) < 300_000 and artefact["verdict"] == "unsafe"


def test_text_and_sarif_reports_show_the_count(tmp_path):
    import json

    report = scan(str(hostile.pickle_imports(tmp_path, scale=0.003)))
    assert "occurrences: 201 in this file (next at offset" in render(report, "text")
    results = json.loads(render(report, "sarif"))["runs"][0]["results"]
    folded = [r for r in results if r.get("occurrenceCount")]
    assert folded and folded[0]["occurrenceCount"] == 201 and len(folded[0]["relatedLocations"]) == 50


def test_many_concatenated_pickles(run):
    assert _budget(_artefact(run, "concatenated.pkl"), "max_streams")


def test_folder_of_empty_files(run):
    empty = [a for a in run.artefacts() if a["path"].startswith("empty-files/")]
    assert len(empty) == 3_000 and all(a["verdict"] == "clean" for a in empty)


def test_xz_of_concatenated_streams_ends_with_a_ratio_finding(tmp_path):
    """16 streams, each under the per-stream floor: only counting both sides across them catches it."""
    path = hostile.xz_streams(tmp_path, scale=1 / 32)  # 16 x 2 MiB of zeros from ~5 KB
    result = scan_measured(str(path), "--policy", str(policy(tmp_path, ratio_floor=4 << 20)))
    assert_bounded(result, seconds=30)
    [cap] = _findings(result.artefacts()[0], "MS-ARC-006")
    assert "max_ratio" in cap["message"] and result.code == 2
    assert cap["evidence"]["consumed"] < 200_000 < cap["evidence"]["produced"]


def test_spill_to_temporary_files_is_capped_per_scan(tmp_path):
    for i in range(3):
        (tmp_path / f"part{i}.bin.gz").write_bytes(gzip.compress(bytes(range(256)) * (80_000 + i)))
    pol = Policy.default()
    pol.budgets.max_spill = 40 << 20
    report = scan(str(tmp_path), pol)
    caps = [f for a in report.artefacts for f in a.findings
            if f.rule_id == "MS-ARC-006" and f.evidence["cap"] == "max_spill"]
    assert caps and report.exit_code() == 2  # 3 x 20 MB decompressed: the third spill passes 40 MiB
