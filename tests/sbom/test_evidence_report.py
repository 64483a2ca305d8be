"""ETSI EN 304 223 evidence report: statuses derived from evidence only, per provision, on fixtures
built through the public result model; JSON schema, Markdown (GFM), declarations in the BOM, the
CLI (`report`, `--from-bom`, roles and phases, policy attestations and justifications)."""
from __future__ import annotations

import json

import jsonschema
import pytest
from evidence_fixtures import advisory, inconclusive, model, threat, torch_runtime
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.sbom import build_bom, evidence, evidence_render, schema_errors
from modelshield.scanner.findings import Suppression

REQUIRED = ["5.1.2-3", "5.1.2-4", "5.1.2-7", "5.2.1-1", "5.2.1-2", "5.2.3-1", "5.2.3-2", "5.2.3-2.1", "5.2.3-3",
            "5.2.4-1.2", "5.2.4-2", "5.2.4-2.1", "5.2.4-3", "5.2.5-1", "5.2.5-3", "5.4.1-2"]


@pytest.fixture(autouse=True)
def _epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def derive(report, bom_phase: str = "deployment", etsi: dict | None = None, **kw) -> dict[str, evidence.Row]:
    bom = build_bom(report, spec_version="1.7", phase=bom_phase)
    result = evidence.derive(bom, etsi=etsi, **kw)
    return {row.id: row for row in result.rows}


def test_every_required_provision_has_a_row_with_its_fields() -> None:
    rows = derive(model(runtime=torch_runtime()))
    assert set(REQUIRED) <= set(rows)
    for row in rows.values():
        assert row.status in ("evidenced", "partial", "gap", "needs-human-attestation", "n/a")
        assert row.modal in ("shall", "should", "not captured") and row.roles and row.phase and row.limitation
        assert row.reasoning and row.title


def test_clean_signed_model() -> None:
    rows = derive(model(runtime=torch_runtime()))
    assert rows["5.2.4-1.2"].status == "evidenced"  # release hashes for every shipped file
    assert rows["5.2.1-2"].status == "evidenced"  # valid signature from a trusted signer
    assert rows["5.2.3-1"].status == "evidenced"
    assert rows["5.2.3-2"].status == "n/a" and "nothing to justify" in rows["5.2.3-2"].reasoning
    assert rows["5.2.5-1"].status == "evidenced"
    assert rows["5.2.3-3"].status == "needs-human-attestation"
    hashes = [e for e in rows["5.2.4-1.2"].evidence if e.kind == "hash"][0]
    assert hashes.pointer == "/metadata/component/components" and "model.safetensors" in hashes.ids


def test_unsigned_model_is_partial_with_the_reason() -> None:
    rows = derive(model(sig="unsigned", runtime=torch_runtime()))
    assert rows["5.2.1-2"].status == "partial" and "tiny is unsigned" in rows["5.2.1-2"].reasoning
    assert rows["5.2.3-1"].status == "partial" and "no valid signature" in rows["5.2.3-1"].reasoning
    assert rows["5.2.4-1.2"].status == "evidenced"  # the hashes are there either way
    invalid = derive(model(sig="invalid", runtime=torch_runtime()))
    assert invalid["5.2.1-2"].status == "gap" and invalid["5.2.3-1"].status == "gap"
    assert any(e.counter and e.kind == "signature" for e in invalid["5.2.1-2"].evidence)


def test_malicious_model_is_a_supply_chain_gap_with_the_rule_id() -> None:
    rows = derive(model(findings=[threat()], runtime=torch_runtime()))
    row = rows["5.2.3-1"]
    assert row.status == "gap" and "MS-PKL-001" in row.reasoning
    assert any(e.kind == "finding" and e.ids == ["MS-PKL-001"] and e.pointer.startswith("/vulnerabilities/")
               for e in row.evidence)
    assert rows["5.2.5-1"].status == "evidenced"  # the release was security-tested: it found the threat
    assert "1 active threat finding(s): MS-PKL-001" in rows["5.1.2-4"].reasoning  # the assessment's result, named


def test_missing_card_and_provenance_need_a_justification() -> None:
    rows = derive(model(card=None, runtime=torch_runtime()))
    assert rows["5.2.3-2"].status == "gap"
    assert "no model card, no licence, no training-data provenance" in rows["5.2.3-2"].reasoning
    assert rows["5.2.3-2.1"].status == "gap"
    etsi = {"justification": [{"provision": "5.2.3-2", "reason": "internal model, card in our wiki",
                               "mitigation": "loaded only in a sandbox without network", "expires": "2099-01-01",
                               "risk_assessment": "RA-2026-14"}]}
    rows = derive(model(card=None, runtime=torch_runtime()), etsi=etsi)
    assert rows["5.2.3-2"].status == "needs-human-attestation"
    assert "internal model, card in our wiki" in rows["5.2.3-2"].reasoning
    assert rows["5.2.3-2.1"].status == "needs-human-attestation" and "sandbox" in rows["5.2.3-2.1"].reasoning
    expired = {"justification": [dict(etsi["justification"][0], expires="2020-01-01")]}
    rows = derive(model(card=None, runtime=torch_runtime()), etsi=expired)
    assert rows["5.2.3-2"].status == "gap" and "expired on 2020-01-01" in rows["5.2.3-2"].reasoning
    assert rows["5.2.3-2"].justification.expired is True


def test_waived_and_expired_findings() -> None:
    live = Suppression(reason="only the safetensors file is loaded", expires="2099-01-01", vex_state="not_affected",
                       vex_justification="code_not_reachable")
    rows = derive(model(findings=[threat(waiver=live)], runtime=torch_runtime()))
    assert rows["5.2.3-1"].status == "partial" and "waived by policy" in rows["5.2.3-1"].reasoning
    assert any(e.kind == "waiver" and "only the safetensors" in e.text for e in rows["5.2.3-1"].evidence)
    # An expired waiver does not waive: the scanner leaves the finding active (noting the expiry).
    active = threat()
    active.evidence["expired_suppression"] = "2020-01-01"
    rows = derive(model(findings=[active], runtime=torch_runtime()))
    assert rows["5.2.3-1"].status == "gap"


def test_vulnerable_loader_pinned_is_a_gap_with_the_advisory_id() -> None:
    rows = derive(model(runtime=torch_runtime(), target_findings=[advisory()]))
    row = rows["5.2.3-1"]
    assert row.status == "gap" and "GHSA-53q9-r3pm-6pq6" in row.reasoning
    adv = [e for e in row.evidence if e.kind == "advisory"]
    assert adv and adv[0].ids == ["GHSA-53q9-r3pm-6pq6"] and "torch" in adv[0].text


def test_inconclusive_artefact_never_yields_evidenced() -> None:
    rows = derive(model(extra=[inconclusive()], runtime=torch_runtime()))
    assert "evidenced" not in {row.status for row in rows.values()}
    assert rows["5.2.4-1.2"].status == "partial" and "extra.bin" in rows["5.2.4-1.2"].reasoning


def test_roles_and_phases_select_rows() -> None:
    rows = derive(model(runtime=torch_runtime()), roles=["system-operator"], phase="operation")
    assert rows["5.2.4-1.2"].status == "n/a" and rows["5.2.4-1.2"].reasoning.startswith("Falls on Developer")
    assert rows["5.4.1-2"].selected and rows["5.4.1-2"].status == "needs-human-attestation"
    assert not rows["5.2.3-2"].selected  # a development/deployment duty, not maintenance
    with pytest.raises(evidence.EvidenceInputError):
        derive(model(), roles=["auditor"])
    with pytest.raises(evidence.EvidenceInputError):
        derive(model(), phase="operating")


def test_json_schema_markdown_and_wording(tmp_path) -> None:
    etsi = {"attestation": [{"provision": "5.2.3-3", "name": "Jane Doe", "role": "ML security lead",
                             "date": "2026-11-20", "statement": "Evaluations re-run on the release: EVAL-42."}]}
    bom = build_bom(model(card=None, findings=[threat()], runtime=torch_runtime(), target_findings=[advisory()]),
                    spec_version="1.7", phase="deployment")
    result = evidence.derive(bom, etsi=etsi)
    data = json.loads(evidence_render.render(result, "json"))
    jsonschema.validate(data, evidence_render.schema())
    broken = dict(data, rows=[dict(data["rows"][0], status="compliant")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, evidence_render.schema())
    row = next(r for r in data["rows"] if r["id"] == "5.2.3-3")
    assert row["status"] == "needs-human-attestation" and row["attestations"][0]["name"] == "Jane Doe"
    md = evidence_render.render(result, "md")
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    tables = [i for i, t in enumerate(tokens) if t.type == "table_open"]
    assert len(tables) == 3  # summary, provisions, artefacts
    body_rows = sum(1 for t in tokens[tables[1]:] if t.type == "tr_open") - 1
    assert body_rows >= len(result.rows)
    assert "attested by a person, not by the tool" in md and "Jane Doe" in md
    html = evidence_render.render(result, "html")
    for text in (md, html, json.dumps(data)):
        lowered = text.lower()
        assert "compliant" not in lowered and "conformant" not in lowered
        assert "not a conformity assessment" in lowered


def test_declarations_in_the_bom_follow_the_same_rows() -> None:
    report = model(card=None, runtime=torch_runtime(), target_findings=[advisory()])
    etsi = {"attestation": [{"provision": "5.2.3-3", "name": "Jane Doe", "role": "ML lead", "date": "2026-11-20",
                             "statement": "Re-evaluated."}]}
    for version in ("1.6", "1.7"):
        bom = build_bom(report, spec_version=version, phase="deployment", declarations=True, etsi_policy=etsi)
        assert schema_errors(bom, version) == []
        mapping = {m["requirement"]: m for m in bom["declarations"]["attestations"][0]["map"]}
        rows = {r.id: r for r in evidence.derive(bom, phase="deployment", etsi=etsi).rows if r.selected}
        assert set(mapping) == {f"req-etsi-{i}" for i in rows}
        for ident, row in rows.items():
            rationale = mapping[f"req-etsi-{ident}"]["conformance"]["rationale"]
            assert rationale.split(":")[0] == row.status, ident
        gap = mapping["req-etsi-5.2.3-1"]
        assert gap["counterClaims"] == ["claim-etsi-5.2.3-1"] and gap["conformance"]["score"] == 0
        claims = {c["bom-ref"]: c for c in bom["declarations"]["claims"]}
        evidence_refs = {e["bom-ref"]: e for e in bom["declarations"]["evidence"]}
        against = [evidence_refs[r] for r in claims["claim-etsi-5.2.3-1"]["counterEvidence"]]
        assert any("GHSA-53q9-r3pm-6pq6" in e["description"] for e in against)
        people = [e for e in bom["declarations"]["evidence"] if e["propertyName"] == "modelshield:attestation:person"]
        assert people[0]["author"] == {"name": "Jane Doe"}
        assert people[0]["bom-ref"] in claims["claim-etsi-5.2.3-3"]["evidence"]
        assert "compliant" not in json.dumps(bom).lower()


def test_report_cli_scan_and_from_bom(tmp_path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "README.md").write_text("---\nlicense: mit\ndatasets: [acme/corpus]\n---\n# M\n")
    (target / "weights.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00" + b"{'descr': '<f4', 'fortran_order': False, "
                                         b"'shape': (2,), }" + b" " * 70 + b"\n" + b"\x00" * 8)
    policy = tmp_path / "modelshield.toml"
    policy.write_text('[[etsi.attestation]]\nprovision = "5.2.3-3"\nname = "Jane Doe"\nrole = "ML lead"\n'
                      'date = 2026-11-20\nstatement = "Evaluated EVAL-42."\n')
    html = tmp_path / "evidence.html"
    result = CliRunner().invoke(app, ["report", str(target), "--standard", "etsi-en-304-223", "-o", str(html),
                                      "--role", "system-operator", "--phase", "deployment", "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "Jane Doe" in text and "Attested by a person, not by the tool" in text
    bom = tmp_path / "bom.json"
    assert CliRunner().invoke(app, ["sbom", str(target), "--phase", "deployment", "-o", str(bom)]).exit_code == 0
    out = tmp_path / "from-bom.json"
    result = CliRunner().invoke(app, ["report", "--from-bom", str(bom), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    jsonschema.validate(data, evidence_render.schema())
    assert data["bom_phase"] == "deployment" and data["subject"]["name"] == "M"
    for args, needle in ((["report", str(target), "--role", "auditor"], "unknown role"),
                         (["report", str(target), "-o", str(tmp_path / "x.pdf")], "cannot tell the report format"),
                         (["report", "--from-bom", str(tmp_path / "missing.json")], "cannot read"),
                         (["report"], "give targets")):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.output, args
    bad = tmp_path / "bad.toml"
    bad.write_text('[[etsi.attestation]]\nprovision = "5.2.3-3"\nname = "X"\n')
    result = CliRunner().invoke(app, ["report", "--from-bom", str(bom), "--policy", str(bad)])
    assert result.exit_code == 2 and "etsi.attestation[0] needs 'role'" in result.stderr


def test_report_cli_signature_outcomes_end_to_end(tmp_path) -> None:
    """A model signed with `modelshield sign` and a trust file: valid + trusted -> 5.2.1-2 evidenced;
    the same signature without the trust file -> partial, saying why; one flipped byte -> gap."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    target = tmp_path / "m"
    target.mkdir()
    (target / "README.md").write_text("---\nlicense: mit\ndatasets: [acme/corpus]\n---\n# M\n")
    (target / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    (target / "weights.bin").write_bytes(bytes(range(256)) * 4)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tmp_path / "k.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    trust = tmp_path / "trust.toml"
    trust.write_text('[trust]\n[[trust.signer]]\nname = "release"\ntargets = ["*"]\npublic_keys = ["k.pub"]\n')
    signed = CliRunner().invoke(app, ["sign", str(target), "--private-key", str(tmp_path / "k.pem")])
    assert signed.exit_code == 0, signed.output

    def rows(*extra: str) -> dict[str, dict]:
        out = tmp_path / "r.json"
        result = CliRunner().invoke(app, ["report", str(target), "--phase", "deployment", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        return {r["id"]: r for r in json.loads(out.read_text())["rows"]}

    trusted = rows("--trust", str(trust))
    assert trusted["5.2.1-2"]["status"] == "evidenced", trusted["5.2.1-2"]
    assert "signature of M: valid, signer release" in json.dumps(trusted["5.2.1-2"]["evidence"])
    assert trusted["5.2.4-1.2"]["status"] == "evidenced"
    assert any(e["kind"] == "signature" for e in trusted["5.2.4-1.2"]["evidence"])
    # Still partial on the supply-chain row: no runtime was named for an advisory check.
    assert trusted["5.2.3-1"]["status"] == "partial" and "no runtime was named" in trusted["5.2.3-1"]["reasoning"]
    assert "signature" not in trusted["5.2.3-1"]["reasoning"]
    untrusted = rows()
    assert untrusted["5.2.1-2"]["status"] == "partial"
    assert "signed by a signer the trust policy does not trust" in untrusted["5.2.1-2"]["reasoning"]
    weights = target / "weights.bin"
    weights.write_bytes(b"\x01" + weights.read_bytes()[1:])
    tampered = rows("--trust", str(trust))
    assert tampered["5.2.1-2"]["status"] == "gap" and "does not verify" in tampered["5.2.1-2"]["reasoning"]
    assert tampered["5.2.3-1"]["status"] == "gap"
    result = CliRunner().invoke(app, ["report", "--from-bom", str(tmp_path / "r.json"), "--trust", str(trust)])
    assert result.exit_code == 2 and "--trust applies to a scan" in result.stderr
