"""Benign artefacts written by the real libraries scan clean: no finding above info (false alarms are
bugs). The full nn.Module is the one designed exception: high until a policy allows its class."""
from __future__ import annotations

import pytest
from corpus_helpers import benign_dir, describe

from fixtures import benign_models
from modelshield import Kind, Policy, Severity, Verdict, scan

ARTEFACTS = benign_models.artefacts()
PLAIN = [b.id for b in ARTEFACTS if not b.allow_globals]
NEEDS_POLICY = [b for b in ARTEFACTS if b.allow_globals]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return benign_dir(tmp_path_factory)


def _above_info(report):
    return [f for _t, _a, f in report.all_findings() if f.active and (f.severity > Severity.INFO
                                                                      or f.kind != Kind.INFO)]


@pytest.mark.parametrize("bid", PLAIN)
def test_benign_artefact_is_clean(bid, corpus):
    item = next(b for b in ARTEFACTS if b.id == bid)
    report = scan(str(corpus / item.file))
    assert not _above_info(report), describe(report)
    assert report.verdict == Verdict.CLEAN, describe(report)
    assert report.exit_code() == 0


def test_full_module_user_class_is_reported_high(corpus):
    item = NEEDS_POLICY[0]
    report = scan(str(corpus / item.file))
    assert report.verdict == Verdict.UNSAFE, describe(report)
    high = [f for _t, _a, f in report.all_findings() if f.severity == Severity.HIGH]
    assert high and all(f.rule_id in ("MS-PKL-002", "MS-PKL-004") for f in high), describe(report)
    assert any("fixtures.tiny_net.TinyNet" in (f.callable or "") for f in high), describe(report)
    assert not [f for _t, _a, f in report.all_findings() if f.severity == Severity.CRITICAL], describe(report)


def test_full_module_is_clean_when_the_policy_allows_its_class(corpus, tmp_path):
    item = NEEDS_POLICY[0]
    lines = ["[allow.globals]"] + [f'"{name}" = "our own model class, reviewed"' for name in item.allow_globals]
    (tmp_path / "modelshield.toml").write_text("\n".join(lines) + "\n")
    report = scan(str(corpus / item.file), policy=Policy.load(tmp_path / "modelshield.toml"))
    assert not _above_info(report), describe(report)
    assert report.verdict == Verdict.CLEAN


def test_whole_benign_folder_from_the_cli_with_policy(corpus, tmp_path):
    from helpers.cli import scan_json

    allow = sorted({g for b in NEEDS_POLICY for g in b.allow_globals})
    policy = tmp_path / "policy.toml"
    policy.write_text("[allow.globals]\n" + "".join(f'"{g}" = "reviewed user class"\n' for g in allow))
    code, data = scan_json("--policy", str(policy), str(corpus))
    bad = {a["path"]: a["verdict"] for t in data["targets"] for a in t["artefacts"] if a["verdict"] != "clean"}
    assert not bad and code == 0, bad
