"""How the pool hands out jobs (issue 18): a worker stuck on one file never holds work another
worker could do, and the parent never blocks sending to a busy worker; results stay in order."""
from __future__ import annotations

import json
import os
import pickle
import time

from limits_helpers import hostile

from modelshield import Policy, scan
from modelshield.scanner.engine import analyse_open_file
from modelshield.scanner.worker import WorkerPool
from modelshield.scanner.worker.pool import DEPTH


def _hang_policy(seconds: float) -> Policy:
    policy = Policy.default()
    policy.budgets.max_native_seconds = seconds
    return policy


def test_a_stuck_worker_holds_no_more_than_its_next_job():
    """One worker hangs in h5py until max_native_seconds; the small jobs submitted after it (each a
    1 MiB message, more than a socket buffer holds) all finish on the other worker meanwhile."""
    stuck = os.open(hostile.h5_mutants()["h5py-hang-mutant"], os.O_RDONLY)
    content = json.dumps({"model_type": "bert", "pad": "x" * 60_000}).encode()
    with WorkerPool(_hang_policy(4.0), analyse_open_file, size=2) as pool:
        try:
            started = time.monotonic()
            hang = pool.submit(stuck, "model.h5")
            smalls = [pool.submit_many([(content, f"c{i}-{k}.json", None) for k in range(16)]) for i in range(8)]
            free = [job for job in smalls if job.worker is not hang.worker or job.outcomes is not None]
            while any(job.outcomes is None for job in free) and time.monotonic() - started < 3.0:
                pool.pump(0.1)
                free = [job for job in smalls if job.worker is not hang.worker or job.outcomes is not None]
            elapsed = time.monotonic() - started
            assert hang.outcomes is None, "the small jobs waited for the stuck worker"
            assert len(smalls) - len(free) <= DEPTH - 1  # only the job sent next to it before it got stuck
            assert all(job.outcomes is not None for job in free) and elapsed < 3.0, elapsed
            outcomes = [pool.wait_many(job) for job in smalls]
            assert {(o.artefact.format, o.limit) for out in outcomes for o in out} == {("json", None)}
            [finding] = pool.wait(hang).artefact.findings
            assert finding.rule_id == "MS-LIM-002"
        finally:
            os.close(stuck)


def test_large_files_overlap_and_the_report_keeps_the_listing_order(tmp_path):
    """Files over the inline size are queued ahead like small ones (not analysed one at a time):
    the order of the report is the listing's, and the artefacts are those of an in-process scan."""
    rows = [{"id": i, "name": f"n{i}"} for i in range(60_000)]
    for i in range(3):
        (tmp_path / f"big{i}.pkl").write_bytes(pickle.dumps(rows + [i], protocol=4))  # > 1 MiB each
        (tmp_path / f"small{i}.json").write_text(json.dumps({"i": i}))
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    assert (tmp_path / "big0.pkl").stat().st_size > 1 << 20
    pooled = scan(str(tmp_path), workers=2)
    here = scan(str(tmp_path), workers=0)

    def view(report) -> list:
        return [(a.path, a.format, a.verdict.value, a.sha256, sorted(f.rule_id for f in a.findings))
                for a in report.artefacts]

    assert view(pooled) == view(here)
    assert [a.path for a in pooled.artefacts] == sorted(a.path for a in pooled.artefacts)
    assert {a.path for a in pooled.artefacts if a.verdict.value == "unsafe"} == {"evil.pkl"}
