"""Worker processes: a memory cap, a wall-clock kill, crashes contained, the scan goes on, results exact."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import time

import pytest
from limits_helpers import ROOT, hostile, policy, scan_measured

from modelshield import Policy, scan
from modelshield.scanner.engine import analyse_file
from modelshield.scanner.findings import Kind
from modelshield.scanner.output import json as json_out

BENIGN = pickle.dumps({"weights": [1.0, 2.0, 3.0]}, protocol=4)
MEMO_SCALE = 0.05  # 245,000 memoized lists: far more than STRICT, well within the default cap
STRICT = 16 << 20


def _low(**budgets) -> Policy:
    pol = Policy.default()
    for key, value in budgets.items():
        setattr(pol.budgets, key, value)
    return pol


def _by_path(report) -> dict:
    return {a.path: a for a in report.artefacts}


# The memory-cap scenarios run in a fresh process: RLIMIT_AS caps the address space a worker adds
# to what it inherited, and a worker forked (through the zygote) from a large long-lived process
# such as pytest inherits its free heap, which it may reuse without growing; the CLI's lean
# process is what users run.
MEMORY_SCENARIOS = """
import json, os, sys
from modelshield import Policy, scan
from modelshield.scanner.engine import analyse_open_file
from modelshield.scanner.worker import WorkerPool

folder, strict = sys.argv[1], int(sys.argv[2])
def low():
    policy = Policy.default()
    policy.budgets.max_memory = strict
    return policy
def view(artefact):
    return {"rules": [f.rule_id for f in artefact.findings], "kinds": [f.kind.value for f in artefact.findings],
            "messages": [f.message for f in artefact.findings], "sha256": artefact.sha256,
            "format": str(artefact.format)}
out = {}
report = scan(folder, low())
out["scan"] = {a.path: view(a) for a in report.artefacts}
out["exit"] = report.exit_code()
with WorkerPool(low(), analyse_open_file) as pool:
    outcomes = []
    for name in ("memo.pkl", "after.pkl"):
        fd = os.open(os.path.join(folder, name), os.O_RDONLY)
        outcome = pool.wait(pool.submit(fd, name))
        os.close(fd)
        outcomes.append({"limit": outcome.limit, "baseline": outcome.baseline_rss, "peak": outcome.peak_rss,
                         **view(outcome.artefact)})
out["pool"] = outcomes
memo = os.path.join(folder, "memo.pkl")
out["successive"] = [view(scan(memo, p).artefacts[0])["rules"] for p in (low(), Policy.default(), low())]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def memory_scenarios(tmp_path_factory) -> dict:
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("memory")
    hostile.pickle_memo(folder, scale=MEMO_SCALE)
    (folder / "after.pkl").write_bytes(BENIGN)
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCENARIOS, str(folder), str(STRICT)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_memory_cap_ends_the_worker_and_the_scan_goes_on(memory_scenarios):
    memo, after = memory_scenarios["scan"]["memo.pkl"], memory_scenarios["scan"]["after.pkl"]
    assert memo["rules"] == ["MS-LIM-001"], memo
    assert memo["kinds"] == [Kind.INCONCLUSIVE.value] and "16 MiB" in memo["messages"][0]
    assert memo["sha256"]  # hashed by the scanning process all the same
    assert after["rules"] == [] and after["format"] == "pickle"
    assert memory_scenarios["exit"] == 2


def test_peak_rss_is_measured_in_the_worker_and_stays_under_the_cap(memory_scenarios):
    memo, after = memory_scenarios["pool"]
    assert memo["limit"] == "memory" or memo["rules"] == ["MS-LIM-001"], memo
    # A fresh worker replaced the dead one and finished the job under the cap. The cap bounds the
    # address space the job adds; resident memory may also grow by pages that were already mapped
    # when the job started (module code, the pre-mapped analysis stack), hence the second STRICT.
    assert 0 < after["baseline"] < after["peak"] <= after["baseline"] + 2 * STRICT, after
    assert after["limit"] is None and after["format"] == "pickle"


def test_workers_serve_successive_policies(memory_scenarios):
    """The same idle workers, three scans with different budgets: each scan gets its own limits."""
    assert memory_scenarios["successive"] == [["MS-LIM-001"], [], ["MS-LIM-001"]]


def test_native_parser_hang_is_killed_at_max_native_seconds(tmp_path):
    mutants = hostile.h5_mutants()
    shutil.copy(mutants["h5py-hang-attribute"], tmp_path / "model.h5")
    shutil.copy(hostile.HERE / "h5-seed.h5", tmp_path / "seed.h5")
    started = time.monotonic()
    report = scan(str(tmp_path), _low(max_native_seconds=1.0))
    assert time.monotonic() - started < 20
    arts = _by_path(report)
    [finding] = arts["model.h5"].findings
    assert finding.rule_id == "MS-LIM-002" and "max_native_seconds" in finding.message and "h5py" in finding.message
    assert arts["seed.h5"].format == "hdf5" and not arts["seed.h5"].findings  # the next file is analysed


def test_wall_clock_kill_when_a_file_outlives_max_seconds(tmp_path):
    shutil.copy(hostile.h5_mutants()["h5py-hang-mutant"], tmp_path / "model.h5")
    started = time.monotonic()
    report = scan(str(tmp_path), _low(max_seconds=1.0, max_native_seconds=60))
    assert time.monotonic() - started < 20
    [finding] = report.artefacts[0].findings
    assert finding.rule_id == "MS-LIM-002" and "max_seconds limit of 1 s" in finding.message


def test_a_crashing_parser_is_contained(tmp_path):
    shutil.copy(hostile.h5_mutants()["h5py-segfault"], tmp_path / "crash.h5")
    (tmp_path / "z.pkl").write_bytes(BENIGN)
    report = scan(str(tmp_path))
    arts = _by_path(report)
    [finding] = arts["crash.h5"].findings
    assert finding.rule_id == "MS-LIM-003" and "SIGSEGV" in finding.message
    assert arts["z.pkl"].format == "pickle" and not arts["z.pkl"].findings
    assert report.exit_code() == 2


def test_a_limit_in_a_batch_of_small_files_is_pinned_on_its_file(tmp_path):
    """Small files go to a worker 16 at a time; a kill re-runs the batch one file per job."""
    for i in range(40):
        (tmp_path / f"m{i:02d}.pkl").write_bytes(BENIGN)
    shutil.copy(hostile.h5_mutants()["h5py-segfault"], tmp_path / "m17.h5")
    report = scan(str(tmp_path))
    bad = [a for a in report.artefacts if a.findings]
    assert [a.path for a in bad] == ["m17.h5"] and bad[0].findings[0].rule_id == "MS-LIM-003"
    assert len(report.artefacts) == 41 and all(a.sha256 for a in report.artefacts)


def test_workers_and_in_process_analysis_report_the_same(tmp_path):
    """The worker's answer crosses the process boundary as JSON and comes back exactly."""
    targets = [str(ROOT / "fixtures" / "demo"), str(hostile.tar_after_bad_checksum(tmp_path)),
               str(hostile.zip_overlapping(tmp_path)), str(hostile.pickle_imports(tmp_path, scale=0.003))]
    a, b = scan(targets), scan(targets, workers=0)
    for report in (a, b):
        report.started = report.finished = ""
    assert json_out.render(a) == json_out.render(b)
    args_a = [f.args for x in a.artefacts for f in x.findings if f.args]
    assert args_a and args_a == [f.args for x in b.artefacts for f in x.findings if f.args]


def test_analyse_file_api(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(BENIGN)
    artefact = analyse_file(str(path), "x.pkl", Policy.default())
    assert artefact.format == "pickle" and artefact.path == "x.pkl" and artefact.absolute_path == str(path)


def test_no_process_outlives_the_scanning_process(tmp_path):
    """Workers outlive a scan (the next scan reuses them) but never the process that started them."""
    import subprocess
    import sys

    (tmp_path / "a.pkl").write_bytes(BENIGN)
    shutil.copy(hostile.h5_mutants()["h5py-segfault"], tmp_path / "b.h5")
    code = ("import sys; from modelshield import scan; r = scan(sys.argv[1]); scan(sys.argv[1]); "
            "print(len(r.artefacts))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            start_new_session=True)
    assert proc.communicate(timeout=120)[0].strip() == b"2"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("a worker or the zygote outlived the scanning process")


def test_sigint_reaches_only_the_parent(tmp_path):
    """Ctrl-C: the workers ignore SIGINT; the CLI stops (its exit code is the CLI's convention) and
    leaves no process behind."""
    import subprocess
    import sys

    for i in range(200):
        (tmp_path / f"f{i}.pkl").write_bytes(BENIGN)
    shutil.copy(hostile.h5_mutants()["h5py-hang-attribute"], tmp_path / "zz.h5")
    proc = subprocess.Popen([sys.executable, "-m", "modelshield", "scan", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(_group(proc.pid)) < 3 and time.monotonic() < deadline:  # the CLI, the zygote, a worker
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"Traceback" not in err, err[-2000:]
    time.sleep(0.3)
    try:
        os.killpg(proc.pid, 0)
        leftover = True
    except ProcessLookupError:
        leftover = False
    assert not leftover


def test_budget_keys_are_policy_settable(tmp_path):
    path = policy(tmp_path, max_memory=1 << 28, max_native_seconds=5, max_spill=1 << 30, max_streams=10)
    pol = Policy.load(path)
    assert pol.budgets.max_native_seconds == 5.0 and isinstance(pol.budgets.max_native_seconds, float)
    assert pol.budgets.max_streams == 10
    json.dumps(pol.describe())


@pytest.mark.parametrize("workers", [0, 1])
def test_special_files_are_never_opened(tmp_path, workers):
    os.mkfifo(tmp_path / "model.pkl")
    os.mkfifo(tmp_path / "notes")
    report = scan(str(tmp_path), workers=workers)
    arts = _by_path(report)
    assert [f.rule_id for f in arts["model.pkl"].findings] == ["MS-LIM-004"]
    assert [f.rule_id for f in arts["notes"].findings] == ["MS-GEN-008"]
    assert report.exit_code() == 2


def _group(pgid: int) -> list[int]:
    """The processes of a process group (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def test_policy_travels_to_workers_without_the_trust_policy():
    """Signatures are verified in the scanning process: the trust policy (key objects) stays there."""
    from modelshield.scanner.worker.codec import decode_policy, encode_policy

    pol = _low(max_streams=7)
    pol.trust = object()  # stands for a TrustPolicy holding public keys
    sent = decode_policy(encode_policy(pol))
    assert sent.trust is None and sent.budgets.max_streams == 7


def test_h5py_that_does_not_fit_under_the_cap_is_not_called_missing(tmp_path):
    """Under a very low max_memory the HDF5 library cannot even be loaded in the worker: the file
    is inconclusive saying why, not "h5py is not installed"."""
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(hostile.HERE / "h5-seed.h5", folder / "model.h5")
    # From the CLI: a process that imported h5py before its workers started passes it on to them.
    run = scan_measured(str(folder), "--policy", str(policy(tmp_path, max_memory=STRICT)))
    [art] = run.artefacts()
    ids = [f["rule_id"] for f in art["findings"]]
    assert "MS-KERAS-008" not in ids and art["verdict"] == "inconclusive" and run.code == 2, art
    assert ids != ["MS-GEN-006"] or "max_memory" in art["findings"][0]["message"]
