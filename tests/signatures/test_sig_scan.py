"""The signature check inside `scan` (single pass, trust policy, --require-signature, outputs, BOM)
and hostile bundles that must never crash."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshield import Policy, scan
from modelshield.cli import app
from modelshield.scanner.signatures.signing import sign_folder

from sig_helpers import craft_bundle, make_model, new_key, statement, write_bundle, write_key

runner = CliRunner()
# The technique the corpus proves in a subprocess (tests/corpus): posix.system with a marker command.
EVIL = b"\x80\x02cposix\nsystem\nq\x00X\x18\x00\x00\x00echo pwned > ms_sig_markerq\x01\x85q\x02Rq\x03."


@pytest.fixture
def setup(tmp_path) -> dict[str, Path]:
    priv, pub = write_key(new_key(), tmp_path, "release")
    other, other_pub = write_key(new_key(), tmp_path, "other")
    root = make_model(tmp_path / "models")
    trust = tmp_path / "trust.toml"
    trust.write_text('[trust]\n[[trust.signer]]\nname = "release"\ntargets = ["*"]\npublic_keys = ["release.pub"]\n')
    return {"priv": priv, "pub": pub, "other": other, "root": root, "trust": trust}


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout


def sig_findings(doc: dict) -> list[str]:
    return sorted(f["rule_id"] for f in doc["targets"][0]["findings"] if f["rule_id"].startswith("MS-SIG"))


def test_scan_valid_signature_reuses_the_file_pass(setup):
    root = setup["root"]
    sign_folder(str(root), str(setup["priv"]))
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "--require-signature", "-f", "json")
    doc = json.loads(out)
    sig = doc["targets"][0]["signature"]
    assert code == 0, out
    assert sig["outcome"] == "valid" and sig["signer"].startswith("release (key sha256:")
    assert sig["reread_bytes"] == 0  # SHA-256 files manifest: the scan's digests, no second read
    assert sig["covered"] == ["config.json", "empty.txt", "tokenizer/vocab.txt", "weights.raw"]
    assert sig_findings(doc) == ["MS-SIG-001"]
    code, text = run("scan", str(root), "--trust", str(setup["trust"]))
    assert code == 0 and "  signature: valid by release (key sha256:" in text


def test_require_signature_blocks_unsigned_untrusted_invalid(setup):
    root = setup["root"]
    code, out = run("scan", str(root), "--require-signature", "-f", "json")
    assert code == 1 and sig_findings(json.loads(out)) == ["MS-SIG-007", "MS-SIG-008"]
    code, out = run("scan", str(root), "-f", "json")  # no policy: the outcome, and no finding
    assert code == 0 and json.loads(out)["targets"][0]["signature"]["outcome"] == "unsigned"
    assert sig_findings(json.loads(out)) == []
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "json")
    assert code == 0 and sig_findings(json.loads(out)) == ["MS-SIG-006"]  # the policy names signers: medium
    sign_folder(str(root), str(setup["other"]))
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "json")
    assert code == 0 and sig_findings(json.loads(out)) == ["MS-SIG-003"]  # medium: below fail-on high
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "--require-signature", "-f", "json")
    assert code == 1 and sig_findings(json.loads(out)) == ["MS-SIG-003", "MS-SIG-008"]
    sign_folder(str(root), str(setup["priv"]))
    (root / "config.json").write_text('{"model_type": "gpt2"}')
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "json")
    doc = json.loads(out)
    assert code == 1 and sig_findings(doc) == ["MS-SIG-002"]  # invalid is critical: blocks anyway
    finding = next(f for f in doc["targets"][0]["findings"] if f["rule_id"] == "MS-SIG-002")
    assert finding["severity"] == "critical" and "config.json differs from its signed digest" in finding["message"]


def test_policy_file_trust_table_and_require(setup, tmp_path, monkeypatch):
    root = setup["root"]
    sign_folder(str(root), str(setup["other"]))
    (tmp_path / "modelshield.toml").write_text(
        '[trust]\nrequire = true\n[[trust.signer]]\npublic_keys = ["release.pub"]\ntargets = ["*models*"]\n')
    monkeypatch.chdir(tmp_path)
    code, out = run("scan", str(root), "-f", "json")
    assert code == 1 and json.loads(out)["targets"][0]["signature"]["outcome"] == "untrusted"
    assert json.loads(out)["targets"][0]["signature"]["trust"].endswith("modelshield.toml")


def test_bad_trust_file_is_a_one_line_error(setup, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[trust]\n[[trust.signer]]\npublic_keys = ["missing.pub"]\n')
    res = runner.invoke(app, ["scan", str(setup["root"]), "--trust", str(bad)])
    assert res.exit_code == 2 and "missing.pub" in res.stderr and "Traceback" not in res.stderr


def test_signed_malicious_pickle_still_blocks(setup):
    root = setup["root"]
    (root / "pytorch_model.bin").write_bytes(EVIL)
    sign_folder(str(root), str(setup["priv"]))
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "--require-signature", "-f", "json")
    doc = json.loads(out)
    assert code == 1 and doc["targets"][0]["signature"]["outcome"] == "valid"
    art = next(a for a in doc["targets"][0]["artefacts"] if a["path"] == "pytorch_model.bin")
    assert art["verdict"] == "unsafe"


def test_uncovered_git_file_is_listed_and_scanned(setup):
    root = setup["root"]
    sign_folder(str(root), str(setup["priv"]))
    (root / ".git").mkdir()
    (root / ".git" / "hook.bin").write_bytes(EVIL)
    # .git/ is skipped by default: --include-vcs scans it
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "json", "--include-vcs")
    doc = json.loads(out)
    sig = doc["targets"][0]["signature"]
    assert sig["outcome"] == "valid" and sig["uncovered"] == [".git/hook.bin"]
    assert "MS-SIG-009" in sig_findings(doc)
    art = next(a for a in doc["targets"][0]["artefacts"] if a["path"] == ".git/hook.bin")
    assert art["verdict"] == "unsafe" and code == 1


def test_sarif_and_json_schema_carry_the_signature(setup, tmp_path):
    import jsonschema

    root = setup["root"]
    sign_folder(str(root), str(setup["priv"]))
    (root / "weights.raw").write_bytes(b"tampered")
    code, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    sig = [r for r in results if r["ruleId"] == "MS-SIG-002"]
    assert code == 1 and sig and sig[0]["level"] == "error"
    assert sig[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("model.sig")
    schema = json.loads((Path(__file__).resolve().parents[2] / "scanner" / "schemas" / "report.schema.json")
                        .read_text())
    _, out = run("scan", str(root), "--trust", str(setup["trust"]), "-f", "json")
    jsonschema.validate(json.loads(out), schema)


def test_bom_records_outcome_signer_digest_and_reference(setup, tmp_path):
    root = setup["root"]
    signed = sign_folder(str(root), str(setup["priv"]))
    bom = tmp_path / "bom.json"
    res = runner.invoke(app, ["sbom", str(root), "--phase", "deployment", "--trust", str(setup["trust"]),
                              "-o", str(bom)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(bom.read_text())
    model = doc["metadata"]["component"]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["modelshield:signature:status"] == "valid"
    assert props["modelshield:signature:bundle_sha256"] == signed.bundle_sha256
    assert props["modelshield:signature:signer"].startswith("release (key sha256:")
    refs = [r for r in model["externalReferences"] if r["type"] == "digital-signature"]
    assert refs == [{"comment": "OpenSSF model signature (OMS), outcome valid",
                     "hashes": [{"alg": "SHA-256", "content": signed.bundle_sha256}], "type": "digital-signature",
                     "url": "model.sig"}]
    meta = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert meta["modelshield:signature:status"] == "valid"


def test_single_file_target_is_not_checked(setup):
    report = scan(str(setup["root"] / "config.json"), policy=Policy.default())
    assert report.targets[0].signature.outcome.value == "not-checked"


# Hostile bundles ----------------------------------------------------------------------------------

def _hostile(root: Path, kind: str) -> None:
    key = new_key()
    good = craft_bundle(statement(root), key)
    if kind == "deep-json":
        write_bundle(root, b"[" * 200_000 + b"]" * 200_000)
    elif kind == "deep-payload":
        good["dsseEnvelope"]["payload"] = base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
        write_bundle(root, good)
    elif kind == "huge-base64":
        good["dsseEnvelope"]["payload"] = "QUFB" * (9 << 20)  # 36 MB of base64: over the cap
        write_bundle(root, good)
    elif kind == "bad-base64":
        good["dsseEnvelope"]["signatures"][0]["sig"] = "!!not base64!!"
        write_bundle(root, good)
    elif kind == "bundle-media-type":
        good["mediaType"] = "application/vnd.evil+json"
        write_bundle(root, good)
    elif kind == "payload-type":
        good["dsseEnvelope"]["payloadType"] = "text/plain"
        write_bundle(root, good)
    elif kind == "predicate-type":
        stmt = statement(root)
        stmt["predicateType"] = "https://slsa.dev/provenance/v1"
        write_bundle(root, craft_bundle(stmt, key))
    elif kind == "message-signature":
        del good["dsseEnvelope"]
        good["messageSignature"] = {"signature": "AAAA"}
        write_bundle(root, good)
    elif kind == "many-certs":
        good["verificationMaterial"] = {"x509CertificateChain": {"certificates": [{"rawBytes": "AAAA"}] * 50}}
        write_bundle(root, good)
    elif kind == "garbage-cert":
        good["verificationMaterial"] = {"x509CertificateChain": {"certificates": [{"rawBytes": "AAAA"}]}}
        write_bundle(root, good)
    elif kind == "wrong-types":
        good["verificationMaterial"] = {"publicKey": {"hint": ["x"]}}
        write_bundle(root, good)


HOSTILE = {
    "deep-json": "the signature file nests JSON too deeply",
    "huge-base64": "the signature file is",
    "bad-base64": "DSSE signature is not valid base64",
    "bundle-media-type": "unknown bundle media type 'application/vnd.evil+json'",
    "payload-type": "DSSE payload type 'text/plain' is not application/vnd.in-toto+json",
    "message-signature": "the bundle holds a message signature, not a DSSE envelope",
    "many-certs": "the certificate chain has 50 certificates (at most 10)",
    "garbage-cert": "a certificate in the bundle cannot be read",
    "wrong-types": "verificationMaterial.publicKey.hint is not a short string",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_bundles_are_unverifiable_with_one_line(setup, kind):
    root = setup["root"]
    _hostile(root, kind)
    code, out = run("verify", str(root), "--public-key", str(setup["pub"]))
    assert code == 2 and out.count("\n") == 1 and out.startswith("signature: unverifiable")
    assert HOSTILE[kind] in out
    code, out = run("scan", str(root), "--require-signature", "-f", "json")
    assert code == 1 and json.loads(out)["targets"][0]["signature"]["outcome"] == "unverifiable"


def test_hostile_statements_with_a_trusted_key(setup):
    """Untrusted-key statements never get further than the signature; with the trusted key, the
    statement's own problems are named (predicate type, deep JSON)."""
    from sig_helpers import hint
    from cryptography.hazmat.primitives import serialization

    root = setup["root"]
    key = serialization.load_pem_private_key(setup["priv"].read_bytes(), None)
    stmt = statement(root)
    stmt["predicateType"] = "https://slsa.dev/provenance/v1"
    write_bundle(root, craft_bundle(stmt, key))
    code, out = run("verify", str(root), "--public-key", str(setup["pub"]))
    assert code == 2 and "predicate type 'https://slsa.dev/provenance/v1' is not an OMS model signature" in out
    write_bundle(root, craft_bundle(b"[" * 100_000 + b"]" * 100_000, key))
    code, out = run("verify", str(root), "--public-key", str(setup["pub"]))
    assert code == 2 and "the signed statement nests JSON too deeply" in out
    assert hint(key)


def test_hostile_bundle_in_a_subprocess_has_no_traceback(setup):
    root = setup["root"]
    _hostile(root, "deep-json")
    proc = subprocess.run([sys.executable, "-m", "modelshield", "scan", str(root), "--require-signature"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "the signature file nests JSON too deeply" in proc.stdout
