"""Issue 20 class 6 for pickles: what cannot be decoded is inconclusive, never "not a pickle".

The trial run decides whether an unpickler runs anything; when it cannot tell (a text line longer
than the VM reads, which `_pickle.c` reads whatever its length; a failure inside the VM), the
content is analysed as a pickle and the analysis ends inconclusive, never clean.
"""
from __future__ import annotations

from modelshield import scan
from modelshield.scanner.analysis.picklevm import trial
from modelshield.scanner.analysis.picklevm.opcodes import LINE_CAP


def test_a_line_longer_than_the_vm_reads_is_inconclusive(tmp_path):
    path = tmp_path / "notes.txt"
    with path.open("wb") as fh:  # UNICODE with a line past the cap, then a payload _pickle.c would reach
        fh.write(b"V")
        fh.write(b"a" * (LINE_CAP + (4 << 20)))
        fh.write(b"\n0cos\nsystem\n(S'id'\ntR.")
    [art] = scan(str(path)).artefacts
    assert art.verdict.value == "inconclusive", [(f.rule_id, f.message) for f in art.findings]
    assert any(f.rule_id == "MS-PKL-008" for f in art.findings)


def test_a_vm_failure_in_the_trial_counts_as_a_pickle(monkeypatch):
    def broken(self):
        raise RuntimeError("simulated VM bug")

    monkeypatch.setattr(trial._Trial, "run", broken)
    start = trial.start_of_bytes(b"(N.")
    assert start is not None and start.executes and "internally" in start.reason


def test_truncation_after_an_import_still_executes():
    start = trial.start_of_bytes(b"cos\nsystem\n(S'id")  # imported, then the data ends
    assert start is not None and start.executes and not start.complete
