"""Small pure pieces: hf:// parsing, git blob ids, cache folder detection, error lines."""
from __future__ import annotations

import hashlib

import pytest

from modelshield.scanner.sources import hf, hf_cache, hub_verify


@pytest.mark.parametrize("target,expected", [
    ("hf://org/name", ("org/name", "model", None)),
    ("hf://org/name@main", ("org/name", "model", "main")),
    ("hf://org/name@refs/pr/1", ("org/name", "model", "refs/pr/1")),
    ("hf://datasets/org/name@" + "a" * 40, ("org/name", "dataset", "a" * 40)),
    ("hf://models/org/name", ("org/name", "model", None)),
    ("hf://gpt2", ("gpt2", "model", None)),
])
def test_parse(target, expected):
    assert hf.parse(target) == expected


@pytest.mark.parametrize("bad", ["hf://", "hf://org/name/extra/x", "hf://-bad/name", "hf://org/na me"])
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        hf.parse(bad)


def test_git_blob_sha1_matches_git(tmp_path):
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert hub_verify.git_blob_sha1(str(empty), 0) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob
    data = b"hello\n"
    f = tmp_path / "h"
    f.write_bytes(data)
    assert hub_verify.git_blob_sha1(str(f), len(data)) == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_blob_names():
    sha = hashlib.sha256(b"x").hexdigest()
    assert hub_verify.expected_from_blob_name(sha) == {"lfs_sha256": sha}
    assert hub_verify.expected_from_blob_name("a" * 40) == {"blob_id": "a" * 40}
    assert hub_verify.expected_from_blob_name("x.incomplete") == {}


def test_cache_folder_detection(tmp_path):
    repo = tmp_path / "models--org--a--b"
    (repo / "snapshots" / ("c" * 40)).mkdir(parents=True)
    assert hf_cache.locate(str(repo)) == (str(repo), None)
    assert hf_cache.locate(str(repo / "snapshots" / ("c" * 40))) == (str(repo), "c" * 40)
    assert hf_cache.repo_identity(str(repo)) == ("org/a/b", "model")
    assert not hf_cache.accepts(str(tmp_path))
    assert not hf_cache.accepts(str(repo / "snapshots"))
