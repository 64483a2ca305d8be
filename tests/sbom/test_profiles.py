"""`modelshield sbom check --profile ntia|cisa-2025|bsi-tr-03183-2` on our BOMs (every element the
evidence allows passes; what it cannot is named with the reason) and on deliberately incomplete ones."""
from __future__ import annotations

import json

import pytest
from evidence_fixtures import CARD, model
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.sbom import build_bom, profiles
from modelshield.sbom.context import Attribution

WHO = Attribution(supplier=None, manufacturer="https://acme.example", author_name="Jane Doe",
                  author_email="jane@acme.example")


@pytest.fixture
def ours(monkeypatch) -> dict:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    card = {k: v for k, v in CARD.items() if k != "datasets"}  # no card-named datasets: every component was seen
    return build_bom(model(card=card), spec_version="1.6", phase="deployment", attribution=WHO)


def _results(result: profiles.ProfileResult) -> dict[str, str]:
    return {e.id: e.result for e in result.elements}


def test_our_bom_passes_what_the_evidence_allows(ours) -> None:
    assert set(_results(profiles.check(ours, "ntia")).values()) == {"pass"}
    assert set(_results(profiles.check(ours, "cisa-2025")).values()) == {"pass"}
    bsi = profiles.check(ours, "bsi-tr-03183-2")
    failed = {e.id for e in bsi.elements if e.result == "fail"}
    # A concluded distribution licence is the BOM creator's decision: the BOM says so instead of inventing it.
    assert failed == {"distribution-licences"}
    assert any(n.startswith("concluded licence of model tiny") for n in bsi.notes)
    assert _results(bsi)["original-licences"] == "pass" and _results(bsi)["hash"] == "pass"
    assert _results(bsi)["creator"] == "pass" and _results(bsi)["sbom-creator"] == "pass"


def test_incomplete_boms_fail_the_missing_elements(ours, tmp_path) -> None:
    bare = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "components": [{"type": "library", "name": "thing", "bom-ref": "a"}]}
    ntia = _results(profiles.check(bare, "ntia"))
    assert ntia == {"supplier": "fail", "name": "pass", "version": "fail", "identifiers": "fail",
                    "dependencies": "fail", "author": "fail", "timestamp": "fail"}
    bsi = _results(profiles.check(bare, "bsi-tr-03183-2"))
    assert bsi["format"] == "fail" and bsi["executable"] == "fail" and bsi["sbom-uri"] == "warn"
    flat = dict(bare, components=bare["components"] + [{"type": "library", "name": "other", "bom-ref": "b"}],
                dependencies=[{"ref": "a", "dependsOn": []}, {"ref": "b", "dependsOn": []}])
    [deps] = [e for e in profiles.check(flat, "ntia").elements if e.id == "dependencies"]
    assert deps.result == "fail" and "no edge between the 2 components" in deps.detail
    flat["dependencies"][0]["dependsOn"] = ["b"]
    assert _results(profiles.check(flat, "ntia"))["dependencies"] == "pass"
    cisa = profiles.check(bare, "cisa-2025")
    assert {e.id for e in cisa.elements if e.result == "fail"} >= {"hash", "license", "tool", "context", "producer"}
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(bare))
    result = CliRunner().invoke(app, ["sbom", "check", str(path), "--profile", "ntia"])
    assert result.exit_code == 1 and "FAIL  Supplier name" in result.stdout and "missing: thing" in result.stdout
    good = tmp_path / "ours.json"
    good.write_text(json.dumps(ours))
    result = CliRunner().invoke(app, ["sbom", "check", str(good), "--profile", "ntia", "--profile", "cisa-2025",
                                      "--format", "json"])
    assert result.exit_code == 0 and [r["failed"] for r in json.loads(result.stdout)] == [False, False]
    result = CliRunner().invoke(app, ["sbom", "check", str(tmp_path / "missing.json"), "--profile", "ntia"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["sbom", "check", str(good), "--profile", "iso"])
    assert result.exit_code == 2


def test_local_folder_without_attribution_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "README.md").write_text("---\nlicense: mit\n---\n# Local\n")
    (tmp_path / "m" / "weights.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                                                 b"'shape': (2,), }" + b" " * 70 + b"\n" + b"\x00" * 8)
    from modelshield import scan

    bom = build_bom(scan(str(tmp_path / "m")), spec_version="1.6")
    ntia = profiles.check(bom, "ntia")
    assert _results(ntia)["supplier"] == "fail" and _results(ntia)["version"] == "fail"
    text = profiles.text(ntia)
    assert "supplier of model Local: not stated by the files (pass --supplier)" in text
    assert "version of model Local: no commit or version is stated" in text


def _mutants(doc: object, path: tuple = ()):
    """(path, BOM) with one value replaced by a value of the wrong type: every object key and the
    first item of every list, each replaced by a string, a number, a list and an object."""
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc[:1]))
    else:
        return
    for key, value in items:
        for wrong in ("x", 5, [1], {"k": 1}):
            if type(wrong) is not type(value):
                yield path + (key,), wrong
        yield from _mutants(value, path + (key,))


def _replaced(doc: dict, path: tuple, value: object) -> dict:
    out = json.loads(json.dumps(doc))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def test_malformed_boms_are_scored_or_refused_never_a_traceback(ours) -> None:
    """Another tool's BOM may be malformed anywhere: profiles, `sbom diff` and the evidence report read
    it without raising (a wrong-typed value counts as absent)."""
    import jsonschema

    from modelshield.sbom import evidence, evidence_render
    from modelshield.sbom.diff import diff as bom_diff

    validator = jsonschema.validators.validator_for(evidence_render.schema())(evidence_render.schema())
    mutants = list(_mutants(ours))
    assert len(mutants) > 200
    for path, wrong in mutants:
        doc = _replaced(ours, path, wrong)
        for profile in ("ntia", "cisa-2025", "bsi-tr-03183-2", "diff"):
            try:
                profiles.check(doc, profile) if profile != "diff" else (bom_diff(ours, doc), bom_diff(doc, ours))
            except Exception as exc:  # noqa: BLE001 - the test reports which path broke it
                raise AssertionError(f"{profile}: {'/'.join(map(str, path))} = {wrong!r}: {exc!r}") from exc
        try:
            result = evidence.derive(doc)
            validator.validate(json.loads(evidence_render.render(result, "json")))
            evidence_render.render(result, "md")
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"evidence: {'/'.join(map(str, path))} = {wrong!r}: {exc!r}") from exc
