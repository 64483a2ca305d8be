"""Every tamper case with its exact outcome and reason: key and certificate signatures made here
with real cryptography (`modelshield sign` or hand-built bundles for statements wrong on purpose)."""
from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.scanner.findings import SignatureOutcome as O
from modelshield.scanner.signatures.signing import sign_folder
from modelshield.scanner.signatures.trust import TrustSet, load_certificates, load_public_keys
from modelshield.scanner.signatures.verify import verify_folder

from sig_helpers import Pki, craft_bundle, make_model, new_key, statement, write_bundle, write_key

runner = CliRunner()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[Pki, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("pki")
    p = Pki()
    return p, p.write(folder)


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    out = {}
    for name in ("signer", "other"):
        out[name], out[f"{name}.pub"] = write_key(new_key(), tmp_path, name)
    return out


def key_trust(*pubs: Path) -> TrustSet:
    t = TrustSet(source="test")
    for p in pubs:
        t.keys += load_public_keys(str(p), "release key")
    return t


def signed(tmp_path: Path, keys: dict[str, Path], **kw) -> Path:
    root = make_model(tmp_path)
    sign_folder(str(root), str(keys["signer"]), **kw)
    return root


def check(root: Path, trust: TrustSet, **kw):
    return verify_folder(str(root), None, trust, expected_name=root.name, **kw)


def test_valid_key_signature_names_the_key(tmp_path, keys):
    root = signed(tmp_path, keys)
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.VALID, res.reason
    assert res.signer.startswith("release key (key sha256:") and res.method == "key"
    assert res.covered == ["config.json", "empty.txt", "tokenizer/vocab.txt", "weights.raw"]
    assert res.uncovered == [] and res.differences == {} and len(res.bundle_sha256) == 64


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_p384_and_p521_keys(tmp_path, curve):
    priv, pub = write_key(new_key(curve), tmp_path, "k")
    root = make_model(tmp_path)
    sign_folder(str(root), str(priv))
    assert check(root, key_trust(pub)).outcome is O.VALID


def test_flipped_byte(tmp_path, keys):
    root = signed(tmp_path, keys)
    data = bytearray((root / "weights.raw").read_bytes())
    data[100] ^= 1
    (root / "weights.raw").write_bytes(bytes(data))
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "weights.raw differs from its signed digest"
    assert res.differences == {"changed": ["weights.raw"]}


def test_deleted_file(tmp_path, keys):
    root = signed(tmp_path, keys)
    (root / "tokenizer" / "vocab.txt").unlink()
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "tokenizer/vocab.txt is signed but missing"


def test_added_file(tmp_path, keys):
    root = signed(tmp_path, keys)
    (root / "extra.py").write_text("import os\n")
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "extra.py is not covered by the signature (added)"
    assert res.uncovered == ["extra.py"]


def test_renamed_file(tmp_path, keys):
    root = signed(tmp_path, keys)
    (root / "weights.raw").rename(root / "weights2.raw")
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "weights.raw -> weights2.raw was renamed"


def test_symlink_added(tmp_path, keys):
    root = signed(tmp_path, keys)
    os.symlink("weights.raw", root / "alias.bin")
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID
    assert res.reason == "alias.bin is a symbolic link, which the signature does not allow"


def test_file_added_under_git_is_valid_but_listed(tmp_path, keys):
    root = signed(tmp_path, keys)
    (root / ".git").mkdir()
    (root / ".git" / "payload.pkl").write_bytes(b"\x80\x02.")
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.VALID and res.uncovered == [".git/payload.pkl"]


def test_edited_statement_payload(tmp_path, keys):
    root = signed(tmp_path, keys)
    doc = json.loads((root / "model.sig").read_bytes())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).replace(b"tiny-model", b"tiny-modex")
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    write_bundle(root, doc)
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID
    assert res.reason.startswith("the DSSE signature does not verify with the trusted key it names")


def test_swapped_signature(tmp_path, keys):
    a = signed(tmp_path / "a", keys)
    b = make_model(tmp_path / "b")
    (b / "config.json").write_text('{"model_type": "gpt2"}')
    sign_folder(str(b), str(keys["signer"]))
    doc_a, doc_b = (json.loads((r / "model.sig").read_bytes()) for r in (a, b))
    doc_a["dsseEnvelope"]["signatures"] = doc_b["dsseEnvelope"]["signatures"]
    write_bundle(a, doc_a)
    res = check(a, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and "does not verify" in res.reason


def test_wrong_key_is_untrusted(tmp_path, keys):
    root = signed(tmp_path, keys)
    res = check(root, key_trust(keys["other.pub"]))
    assert res.outcome is O.UNTRUSTED
    assert res.reason.endswith("that key is not among the trusted public keys")


def test_no_trust_configured_is_untrusted_and_still_compares(tmp_path, keys):
    root = signed(tmp_path, keys)
    (root / "config.json").write_text("{}")
    res = check(root, TrustSet())
    assert res.outcome is O.UNTRUSTED and "no trusted public key is configured" in res.reason
    assert "config.json differs from its signed digest" in res.reason
    assert res.differences == {"changed": ["config.json"]}


def test_signature_over_a_different_model_name(tmp_path, keys):
    root = make_model(tmp_path)
    sign_folder(str(root), str(keys["signer"]), model_name="other-model")
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID
    assert res.reason == "the signature was made for model 'other-model', not 'tiny-model'"
    trust = key_trust(keys["signer.pub"])
    trust.model_name = "other-model"  # the policy may state the name when the folder was renamed
    assert check(root, trust).outcome is O.VALID


def test_resource_list_reordered(tmp_path, keys):
    root = make_model(tmp_path)
    stmt = statement(root)
    stmt["predicate"]["resources"].reverse()
    items = stmt["predicate"]["resources"]
    import hashlib

    stmt["subject"][0]["digest"]["sha256"] = hashlib.sha256(b"".join(bytes.fromhex(r["digest"])
                                                                    for r in items)).hexdigest()
    write_bundle(root, craft_bundle(stmt, ec_key(keys["signer"])))
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID
    assert res.reason == ("the signed statement is inconsistent: the resources are not sorted by name "
                          "('weights.raw' before 'tokenizer/vocab.txt'): not a canonical OMS manifest")


def test_root_digest_mismatch(tmp_path, keys):
    root = make_model(tmp_path)
    stmt = statement(root)
    stmt["subject"][0]["digest"]["sha256"] = "0" * 64
    write_bundle(root, craft_bundle(stmt, ec_key(keys["signer"])))
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason.startswith(
        "the signed statement is inconsistent: the root digest 0000000000000000... does not match the resources")


def test_signature_covering_nothing_is_invalid(tmp_path, keys):
    root = make_model(tmp_path)
    stmt = statement(root, items=[])
    stmt["predicate"]["serialization"]["ignore_paths"] = ["."]
    write_bundle(root, craft_bundle(stmt, ec_key(keys["signer"])))
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "the signature covers no file of the model"
    assert "config.json" in res.uncovered


@pytest.mark.parametrize("content,reason", [
    (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {"publicKey"',
     "the signature file is not JSON"),
    (b"\xff\xfe\x00binary", "the signature file is not UTF-8 JSON"),
    (b"", "the signature file is empty"),
    (b"[1, 2]", "the signature file is JSON but not a bundle object"),
    (b"not json at all", "the signature file is not JSON"),
])
def test_truncated_or_non_json_signature_file(tmp_path, keys, content, reason):
    root = make_model(tmp_path)
    write_bundle(root, content)
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.UNVERIFIABLE and res.reason.startswith(reason)


def test_oversized_signature_file(tmp_path, keys):
    root = make_model(tmp_path)
    with open(root / "model.sig", "wb") as fh:
        fh.truncate((32 << 20) + 1)  # sparse: no 32 MB written
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.UNVERIFIABLE
    assert res.reason == f"the signature file is {(32 << 20) + 1} bytes, over the {32 << 20}-byte cap"


def test_unsigned(tmp_path, keys):
    res = check(make_model(tmp_path), key_trust(keys["signer.pub"]))
    assert res.outcome is O.UNSIGNED and res.bundle is None


def test_shards_are_reread_and_said_so(tmp_path, keys):
    from modelshield import Policy, scan
    from modelshield.scanner.signatures.trust import TrustPolicy

    root = signed(tmp_path, keys, method="shards", shard_size=4096)
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.VALID and res.serialization["shard_size"] == 4096
    assert res.covered == ["config.json", "tokenizer/vocab.txt", "weights.raw"]  # an empty file has no shard
    policy = Policy.default()
    policy.trust = TrustPolicy.from_mapping({"signer": [{"public_keys": [str(keys["signer.pub"])]}]})
    target = scan(str(root), policy=policy).targets[0]
    assert target.signature.outcome is O.VALID
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "model.sig")
    assert target.signature.reread_bytes == size
    reread = [f for f in target.findings if f.rule_id == "MS-SIG-011"]
    assert reread and reread[0].message.startswith(f"The signature check read {size} bytes a second time (shards")
    data = bytearray((root / "weights.raw").read_bytes())
    data[-1] ^= 1
    (root / "weights.raw").write_bytes(bytes(data))
    res = check(root, key_trust(keys["signer.pub"]))
    assert res.outcome is O.INVALID and res.reason == "weights.raw differs from its signed digest"


def test_non_ec_trusted_key_is_unverifiable(tmp_path, keys):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    root = make_model(tmp_path)
    ed = ed25519.Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization as s

    (tmp_path / "ed.pub").write_bytes(ed.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
    stmt = statement(root)
    bundle = craft_bundle(stmt, ec_key(keys["signer"]))
    from sig_helpers import hint

    bundle["verificationMaterial"]["publicKey"]["hint"] = hint(ed.public_key())
    write_bundle(root, bundle)
    res = check(root, key_trust(tmp_path / "ed.pub"))
    assert res.outcome is O.UNVERIFIABLE and "Ed25519PublicKey keys are not OMS signing keys" in res.reason


# Certificates -------------------------------------------------------------------------------------


def cert_trust(paths: dict[str, Path], *identities: str, root: str = "root") -> TrustSet:
    t = TrustSet(source="test", identities=list(identities))
    t.cas = load_certificates(str(paths[root]))
    return t


def test_certificate_chain_valid_with_pinned_identity(tmp_path, pki):
    _, paths = pki
    root = make_model(tmp_path)
    sign_folder(str(root), str(paths["leaf"]), certificate_chain=str(paths["leaf-chain"]))
    res = check(root, cert_trust(paths, "release@example.org"))
    assert res.outcome is O.VALID, res.reason
    assert res.method == "certificate" and res.signer == "CN=Release signer (release@example.org)"


def test_expired_certificate(tmp_path, pki):
    _, paths = pki
    root = make_model(tmp_path)
    sign_folder(str(root), str(paths["expired"]), certificate_chain=str(paths["expired-chain"]))
    res = check(root, cert_trust(paths, "release@example.org"))
    assert res.outcome is O.UNTRUSTED
    assert res.reason.endswith("its certificate chain is not trusted: the signing certificate expired on "
                               f"{pki[0].expired.cert.not_valid_after_utc.date().isoformat()}")


def test_wrong_identity(tmp_path, pki):
    _, paths = pki
    root = make_model(tmp_path)
    sign_folder(str(root), str(paths["other-san"]), certificate_chain=str(paths["other-san-chain"]))
    res = check(root, cert_trust(paths, "release@example.org"))
    assert res.outcome is O.UNTRUSTED
    assert res.reason == ("the certificate identity (intruder@example.org) is not a trusted identity "
                          "(release@example.org)")


def test_unconfigured_ca(tmp_path, pki):
    _, paths = pki
    root = make_model(tmp_path)
    sign_folder(str(root), str(paths["rogue"]), certificate_chain=str(paths["rogue-chain"]))
    res = check(root, cert_trust(paths, "release@example.org"))
    assert res.outcome is O.UNTRUSTED and res.reason.endswith("it does not chain to a trusted CA")
    assert check(root, TrustSet()).reason.endswith("no trusted CA is configured for this target")


def test_certificate_tampered_file_is_invalid_even_when_untrusted(tmp_path, pki):
    _, paths = pki
    root = make_model(tmp_path)
    sign_folder(str(root), str(paths["leaf"]), certificate_chain=str(paths["leaf-chain"]))
    (root / "config.json").write_text("{}")
    res = check(root, TrustSet())
    assert res.outcome is O.INVALID and res.reason == "config.json differs from its signed digest"


def test_certificate_signature_not_matching_leaf(tmp_path, pki):
    p, paths = pki
    root = make_model(tmp_path)
    stmt = statement(root)
    bundle = craft_bundle(stmt, p.other_san.key, chain=[p.leaf.cert, p.intermediate])
    write_bundle(root, bundle)
    res = check(root, cert_trust(paths))
    assert res.outcome is O.INVALID
    assert res.reason == "the DSSE signature does not verify with the signing certificate's key"


# The CLI ------------------------------------------------------------------------------------------


def test_cli_sign_and_verify_exit_codes(tmp_path, keys, pki):
    _, paths = pki
    root = make_model(tmp_path)
    res = runner.invoke(app, ["sign", str(root), "--private-key", str(keys["signer"])])
    assert res.exit_code == 0 and (root / "model.sig").is_file()
    ok = runner.invoke(app, ["verify", str(root), "--public-key", str(keys["signer.pub"])])
    assert ok.exit_code == 0 and ok.stdout.startswith("signature: valid by ")
    wrong = runner.invoke(app, ["verify", str(root), "--public-key", str(keys["other.pub"])])
    assert wrong.exit_code == 1 and wrong.stdout.startswith("signature: untrusted")
    (root / "weights.raw").write_bytes(b"changed")
    bad = runner.invoke(app, ["verify", str(root), "--public-key", str(keys["signer.pub"]), "-f", "json"])
    doc = json.loads(bad.stdout)
    assert bad.exit_code == 1 and doc["outcome"] == "invalid" and doc["differences"] == {"changed": ["weights.raw"]}
    cert_root = make_model(tmp_path / "c")
    assert runner.invoke(app, ["sign", str(cert_root), "--private-key", str(paths["leaf"]),
                               "--certificate-chain", str(paths["leaf-chain"])]).exit_code == 0
    res = runner.invoke(app, ["verify", str(cert_root), "--certificate-chain", str(paths["root"]),
                              "--identity", "release@example.org"])
    assert res.exit_code == 0, res.stdout
    res = runner.invoke(app, ["verify", str(cert_root), "--certificate-chain", str(paths["root"]),
                              "--identity", "someone@example.org"])
    assert res.exit_code == 1 and "not a trusted identity" in res.stdout
    unsigned = make_model(tmp_path / "u")
    assert runner.invoke(app, ["verify", str(unsigned)]).exit_code == 1


def test_cli_sign_refuses_symlinks_and_bad_keys(tmp_path, keys):
    root = make_model(tmp_path)
    os.symlink("weights.raw", root / "alias.bin")
    res = runner.invoke(app, ["sign", str(root), "--private-key", str(keys["signer"])])
    assert res.exit_code == 2 and "alias.bin is a symbolic link" in res.stderr
    assert runner.invoke(app, ["sign", str(root), "--private-key", str(keys["signer"]),
                               "--allow-symlinks"]).exit_code == 0
    (tmp_path / "junk.pem").write_text("junk")
    res = runner.invoke(app, ["sign", str(root), "--private-key", str(tmp_path / "junk.pem")])
    assert res.exit_code == 2 and "not a PEM private key" in res.stderr
    shutil.rmtree(root)


def ec_key(path: Path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), None)
