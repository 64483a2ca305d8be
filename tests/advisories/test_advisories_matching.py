"""OSV range semantics over full PEP 440 ordering: the edge cases the spec and PyPI produce."""
from __future__ import annotations

import pytest

from modelshield.advisories import osv
from modelshield.advisories.errors import RecordError
from modelshield.advisories.database import merge
from modelshield.advisories.matching import match


def record(*ranges, versions=None, withdrawn=None, ident="GHSA-aaaa-bbbb-cccc", aliases=(), name="torch"):
    entry = {"package": {"ecosystem": "PyPI", "name": name},
             "ranges": [{"type": "ECOSYSTEM", "events": [dict([e]) for e in events]} for events in ranges]}
    if versions:
        entry["versions"] = versions
    data = {"id": ident, "modified": "2026-01-01T00:00:00Z", "aliases": list(aliases), "affected": [entry]}
    if withdrawn:
        data["withdrawn"] = withdrawn
    return osv.parse(data)


def status(adv, version, name="torch"):
    m = match(adv, name, version)
    return None if m is None else m.status


@pytest.mark.parametrize("version,expected", [
    ("2.5.1", "affected"), ("2.6.0", None), ("2.6.0rc1", "affected"), ("2.6.0.dev20241101", "affected"),
    ("2.5.1+cu121", "affected"), ("2.6.0+cpu", None), ("2.5.1.post1", "affected"), ("0.1", "affected"),
    ("1!0.1", None), ("3.0", None)])
def test_introduced_zero_fixed(version, expected):
    adv = record([("introduced", "0"), ("fixed", "2.6.0")])
    assert status(adv, version) == expected


@pytest.mark.parametrize("version,expected", [("3.0.0", "affected"), ("2.99", None), ("3.0.0rc1", None),
                                              ("3.8.0", "affected"), ("3.9.0", None), ("3.12.0", None)])
def test_introduced_at_a_release(version, expected):
    assert status(record([("introduced", "3.0.0"), ("fixed", "3.9.0")]), version, ) == expected


@pytest.mark.parametrize("version,expected", [("2.5.1", "affected"), ("2.5.1+cu121", "affected"),
                                              ("2.5.1.post1", None), ("2.5.2", None), ("2.5.0", "affected")])
def test_last_affected_includes_the_version_and_its_local_builds(version, expected):
    assert status(record([("introduced", "0"), ("last_affected", "2.5.1")]), version) == expected


def test_limit_bounds_the_range():
    adv = record([("introduced", "1.0"), ("limit", "2.0")])
    assert status(adv, "1.5") == "affected"
    assert status(adv, "2.0") is None
    assert status(adv, "0.9") is None


def test_several_ranges_and_unsorted_events():
    # Backported fixes: <2.3.4, [2.4.0, 2.4.3), [2.5.0, 2.5.1), events listed out of order.
    adv = record([("fixed", "2.3.4"), ("introduced", "0")], [("introduced", "2.4.0"), ("fixed", "2.4.3")],
                 [("fixed", "2.5.1"), ("introduced", "2.5.0")], name="tensorflow")
    expected = {"2.3.3": "affected", "2.3.4": None, "2.4.0": "affected", "2.4.3": None, "2.4.9": None,
                "2.5.0": "affected", "2.5.1": None, "2.6.0": None}
    for version, want in expected.items():
        assert status(adv, version, "tensorflow") == want, version


def test_reintroduced_after_a_fix():
    adv = record([("introduced", "0"), ("fixed", "1.0"), ("introduced", "2.0"), ("fixed", "2.1")])
    assert [status(adv, v) for v in ("0.5", "1.5", "2.0.1", "2.1")] == ["affected", None, "affected", None]


def test_epochs_order_above_everything_without_one():
    adv = record([("introduced", "1!1.0"), ("fixed", "1!2.0")])
    assert status(adv, "1!1.5") == "affected"
    assert status(adv, "9999.0") is None


def test_versions_list_matches_parsed_versions():
    adv = record(versions=["1.4.2"], name="joblib")
    adv_entries = adv.affected[0]
    assert adv_entries.versions == ("1.4.2",)
    assert status(adv, "1.4.2", "joblib") == "affected"
    assert status(adv, "1.4.2.0", "joblib") == "affected"  # same PEP 440 version, different string
    assert status(adv, "1.4.20", "joblib") is None


def test_withdrawn_records_never_match():
    adv = record([("introduced", "0")], withdrawn="2026-02-01T00:00:00Z")
    assert status(adv, "1.0") is None


def test_unknown_and_invalid_versions_are_reported_never_guessed():
    adv = record([("introduced", "0"), ("fixed", "2.6.0")])
    assert match(adv, "torch", None).status == "unknown"
    m = match(adv, "torch", "not-a-version")
    assert m.status == "unknown" and "PEP 440" in m.reason


def test_names_are_canonicalised_on_both_sides():
    adv = record([("introduced", "0")], name="Llama_CPP.Python")
    assert status(adv, "0.2.71", "llama-cpp-python") == "affected"


def test_git_only_ranges_say_so():
    data = {"id": "PYSEC-2099-1", "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"},
                          "ranges": [{"type": "GIT", "repo": "https://github.com/pytorch/pytorch",
                                      "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]}]}
    m = match(osv.parse(data), "torch", "2.0")
    assert m.status == "unknown" and "GIT" in m.reason


def test_fix_version_is_the_first_fixed_above_the_installed_one():
    adv = record([("introduced", "0"), ("fixed", "0.3.81")], [("introduced", "1.0.0"), ("fixed", "1.2.5")],
                 name="langchain-core")
    assert match(adv, "langchain-core", "0.3.50").fix == "0.3.81"
    assert match(adv, "langchain-core", "1.1.0").fix == "1.2.5"
    assert match(adv, "langchain-core", "0.3.81") is None


def test_malformed_records_raise():
    with pytest.raises(RecordError):
        osv.parse({"id": "GHSA-x", "modified": "2026-01-01T00:00:00Z",
                   "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"},
                                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}]}]})
    with pytest.raises(RecordError):
        osv.loads(b"{not json")
    with pytest.raises(RecordError):
        osv.parse({"modified": "2026-01-01T00:00:00Z"})


def test_an_imported_newer_twin_replaces_the_shipped_record_but_keeps_its_ml_fields():
    shipped = osv.parse({"id": "GHSA-aaaa-bbbb-cccc", "modified": "2026-01-01T00:00:00Z", "aliases": ["CVE-2099-1"],
                         "affected": [{"package": {"ecosystem": "PyPI", "name": "keras"},
                                       "ranges": [{"type": "ECOSYSTEM",
                                                   "events": [{"introduced": "0"}, {"fixed": "3.9.0"}]}],
                                       "database_specific": {"ml": {"formats": ["keras"], "trigger": "load"}}}]})
    newer = osv.parse({"id": "PYSEC-2099-9", "modified": "2026-06-01T00:00:00Z", "aliases": ["CVE-2099-1"],
                       "affected": [{"package": {"ecosystem": "PyPI", "name": "keras"},
                                     "ranges": [{"type": "ECOSYSTEM",
                                                 "events": [{"introduced": "0"}, {"fixed": "3.10.0"}]}]}]},
                      origin="imported")
    [merged] = merge([shipped], [newer])
    assert merged.id == "PYSEC-2099-9" and merged.affected[0].ml.formats == ("keras",)
    assert {"GHSA-aaaa-bbbb-cccc", "CVE-2099-1"} <= set(merged.aliases)
    older = osv.parse({**newer.raw, "modified": "2025-01-01T00:00:00Z"}, origin="imported")
    assert merge([shipped], [older])[0].id == "GHSA-aaaa-bbbb-cccc"
