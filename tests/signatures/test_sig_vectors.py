"""Signatures made by the real tools, verified offline: a keyless Sigstore bundle (model_signing
1.1.0, production Sigstore) against a shipped trust root, and a legacy v0.2 certificate bundle.
Provenance: tests/signatures/data/PROVENANCE.md."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshield.cli import app
from modelshield.scanner.findings import SignatureOutcome as O
from modelshield.scanner.signatures import keyless
from modelshield.scanner.signatures.bundle import read
from modelshield.scanner.signatures.trust import TrustSet, load_certificates
from modelshield.scanner.signatures.verify import verify_folder

DATA = Path(__file__).resolve().parent / "data"
ROOT_FILE = DATA / "sigstore-python-4.5.1-prod-trusted_root.json"
IDENTITY, ISSUER = "stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2"
runner = CliRunner()


@pytest.fixture
def keyless_model(tmp_path) -> Path:
    return Path(shutil.copytree(DATA / "v1.1.0-sigstore", tmp_path / "v1.1.0-sigstore"))


def trust(**kw) -> TrustSet:
    return TrustSet(sigstore_trust_root=str(ROOT_FILE), source="test", **kw)


def test_keyless_bundle_verifies_offline(keyless_model):
    pytest.importorskip("sigstore")
    res = verify_folder(str(keyless_model), None, trust(identities=[IDENTITY], issuers=[ISSUER]),
                        expected_name="v1.1.0-sigstore")
    assert res.outcome is O.VALID and res.method == "sigstore", res.reason
    assert res.signer == f"{IDENTITY} (issuer {ISSUER})"
    assert res.covered == ["signme-1", "signme-2"] and res.uncovered == ["ignore-me"]
    assert "newest key valid from 2025-09-23" in res.reason


def test_keyless_identity_issuer_and_tampering(keyless_model):
    pytest.importorskip("sigstore")
    res = verify_folder(str(keyless_model), None, trust(identities=["someone@example.org"]))
    assert res.outcome is O.UNTRUSTED
    assert res.reason.startswith(f"the signer identity '{IDENTITY}' is not a trusted identity")
    res = verify_folder(str(keyless_model), None, trust(identities=[IDENTITY], issuers=["https://accounts.google.com"]))
    assert res.outcome is O.UNTRUSTED and f"issued by '{ISSUER}'" in res.reason
    res = verify_folder(str(keyless_model), None, trust())
    assert res.outcome is O.UNTRUSTED and "no trusted identity is configured" in res.reason
    (keyless_model / "signme-1").write_text("tampered")
    res = verify_folder(str(keyless_model), None, trust(identities=[IDENTITY]))
    assert res.outcome is O.INVALID and res.reason == "signme-1 differs from its signed digest"


def test_keyless_without_trust_root_or_library_is_unverifiable(keyless_model, monkeypatch):
    res = verify_folder(str(keyless_model), None, TrustSet(identities=[IDENTITY]))
    assert res.outcome is O.UNVERIFIABLE
    import builtins

    real = builtins.__import__

    def no_sigstore(name, *args, **kwargs):
        if name == "sigstore" or name.startswith("sigstore."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sigstore)
    res = verify_folder(str(keyless_model), None, trust(identities=[IDENTITY]))
    assert res.outcome is O.UNVERIFIABLE and "install modelshield[sigstore]" in res.reason


def test_keyless_trust_root_not_matching_is_untrusted(keyless_model, tmp_path):
    """A trust root that does not hold the bundle's CA and log keys (staging): not trusted."""
    pytest.importorskip("sigstore")
    import sigstore

    staging = Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / \
        "trusted_root.json"
    res = verify_folder(str(keyless_model), None, TrustSet(sigstore_trust_root=str(staging), identities=[IDENTITY]))
    assert res.outcome is O.UNTRUSTED and "Sigstore verification against" in res.reason


def test_keyless_cli(keyless_model):
    pytest.importorskip("sigstore")
    res = runner.invoke(app, ["verify", str(keyless_model), "--sigstore-trust-root", str(ROOT_FILE),
                              "--identity", IDENTITY, "--issuer", ISSUER])
    assert res.exit_code == 0 and res.stdout.startswith(f"signature: valid by {IDENTITY}")
    res = runner.invoke(app, ["verify", str(keyless_model), "--identity", IDENTITY])
    assert res.exit_code == 2 and "no Sigstore trust root file is configured" in res.stdout
    assert keyless.identity_of(read(str(keyless_model / "model.sig"))) == f"{IDENTITY} (issuer {ISSUER})"


def test_legacy_v02_certificate_bundle(tmp_path):
    model = Path(shutil.copytree(DATA / "v0.2.0-certificate", tmp_path / "v0.2.0-certificate"))
    res = verify_folder(str(model), None, TrustSet())
    assert res.legacy and res.outcome is O.UNTRUSTED and res.method == "certificate"
    assert res.covered == ["signme-1", "signme-2"]
    cas = TrustSet(cas=load_certificates(str(DATA / "model-transparency-ca-cert.pem")))
    res = verify_folder(str(model), None, cas)
    # model_signing 0.2 signed with its intermediate CA certificate; a CA is no end-entity signer.
    assert res.outcome is O.UNTRUSTED and "basicConstraints.cA must not be asserted" in res.reason
    (model / "signme-3").write_text("added")
    res = verify_folder(str(model), None, TrustSet())
    assert res.outcome is O.INVALID and res.reason == "signme-3 is not covered by the signature (added)"
