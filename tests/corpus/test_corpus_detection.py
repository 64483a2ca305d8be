"""Every malicious fixture is `unsafe` through the public API (with its expected rules, severity and
gadget names) and blocks the CLI with exit code 1; whatever picklescan calls dangerous, so do we."""
from __future__ import annotations

import json

import pytest
from corpus_helpers import attack_dir, describe, max_severity

from helpers.cli import run_cli
from fixtures import pickle_attacks
from modelshield import Severity, Verdict, scan
from modelshield.scanner.policy import normalise_module

TECHNIQUES = pickle_attacks.techniques()
IDS = [t.id for t in TECHNIQUES]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return attack_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def reports(corpus):
    return {t.id: scan(str(corpus / t.file)) for t in TECHNIQUES}


def _named(report) -> str:
    """Every gadget name the findings mention (callables normalised: posix.system -> os.system)."""
    names = []
    for _t, _a, f in report.all_findings():
        if f.callable:
            names += [f.callable, normalise_module(f.callable)]
        names.append(f.message)
        names.append(json.dumps(f.evidence, default=str))
    return "\n".join(names)


@pytest.mark.parametrize("tid", IDS)
def test_malicious_fixture_is_unsafe(tid, reports):
    tech = next(t for t in TECHNIQUES if t.id == tid)
    report = reports[tid]
    assert report.verdict == Verdict.UNSAFE, describe(report)
    assert max_severity(report) >= Severity.parse(tech.severity), describe(report)
    assert report.exit_code() == 1


@pytest.mark.parametrize("tid", IDS)
def test_malicious_fixture_reports_expected_rules(tid, reports):
    tech = next(t for t in TECHNIQUES if t.id == tid)
    seen = {f.rule_id for _t, _a, f in reports[tid].all_findings()}
    assert set(tech.rules) <= seen, describe(reports[tid])


@pytest.mark.parametrize("tid", [t.id for t in TECHNIQUES if t.callables])
def test_malicious_fixture_names_its_gadgets(tid, reports):
    tech = next(t for t in TECHNIQUES if t.id == tid)
    text = _named(reports[tid])
    missing = [name for name in tech.callables if name not in text]
    assert not missing, describe(reports[tid])


def test_findings_locate_the_payload(reports):
    """Pickle findings carry a byte offset (and opcode position) a person can go and look at."""
    for tid in ("reduce-os-system", "obj-pop", "stack-global-memo", "nullifai-broken-tail"):
        pkl = [f for _t, _a, f in reports[tid].all_findings() if f.rule_id.startswith("MS-PKL-00")]
        assert pkl and all(f.location.offset is not None for f in pkl), describe(reports[tid])
        assert any(f.location.position is not None for f in pkl), describe(reports[tid])


def test_cli_blocks_the_whole_corpus(corpus):
    proc = run_cli("scan", "--format", "json", str(corpus))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    verdicts = {a["path"]: a["verdict"] for t in data["targets"] for a in t["artefacts"]}
    not_unsafe = {t.file: verdicts.get(t.file) for t in TECHNIQUES if verdicts.get(t.file) != "unsafe"}
    assert not not_unsafe, not_unsafe


def test_cli_exit_code_one_on_a_single_file(corpus):
    proc = run_cli("scan", str(corpus / "reduce_os_system.pkl"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# --- picklescan oracle ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def picklescan_results(corpus):
    from picklescan.scanner import scan_file_path

    out = {}
    for t in TECHNIQUES:
        res = scan_file_path(str(corpus / t.file))
        out[t.id] = {"dangerous": res.issues_count > 0, "infected": res.infected_files, "error": res.scan_err}
    return out


def test_whatever_picklescan_flags_we_call_unsafe(picklescan_results, reports):
    flagged = [tid for tid, r in picklescan_results.items() if r["dangerous"]]
    assert flagged, "picklescan flagged nothing: the oracle is not working"
    ours_not_unsafe = [tid for tid in flagged if reports[tid].verdict != Verdict.UNSAFE]
    assert not ours_not_unsafe, ours_not_unsafe


def test_we_catch_what_picklescan_misses(picklescan_results, reports):
    """The peer bypasses of threats.md section 2: picklescan 1.0.5 misses some; we miss none."""
    missed_by_picklescan = [tid for tid, r in picklescan_results.items() if not r["dangerous"]]
    assert missed_by_picklescan, "picklescan 1.0.5 catches everything? the corpus lacks bypasses"
    ours = [tid for tid in missed_by_picklescan if reports[tid].verdict != Verdict.UNSAFE]
    assert not ours, ours
