"""A `model.sig` published in an hf:// repo is fetched and verified like a local one."""
from __future__ import annotations

import pytest

from hub_repos import signed_repos
from hub_server import HubServer
from test_hub_remote import scan_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("hub-keys")
    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "release.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    (folder / "release.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (folder / "trust.toml").write_text('[trust]\n[[trust.signer]]\nname = "org release"\ntargets = ["hf://org/*"]\n'
                                       'public_keys = ["release.pub"]\n')
    with HubServer() as server:
        for repo in signed_repos(str(folder / "release.pem"), folder):
            server.add_repo(repo)
        server.trust = folder / "trust.toml"  # type: ignore[attr-defined]
        yield server


def test_hub_signature_valid(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/signed", "--trust", str(hub.trust), "--require-signature")
    sig = target["signature"]
    assert code == 0, sig
    assert sig["outcome"] == "valid" and sig["signer"].startswith("org release (key sha256:")
    assert sig["covered"] == ["README.md", "config.json", "model.safetensors"] and sig["reread_bytes"] == 0
    assert sig["model_name"] == "signed"


def test_hub_signature_files_changed_after_signing(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/drifted", "--trust", str(hub.trust))
    sig = target["signature"]
    assert code == 1 and sig["outcome"] == "invalid"
    assert sig["reason"] == "config.json differs from its signed digest"


def test_hub_partial_download_lists_unchecked_files(hub, tmp_path):
    code, _, target = scan_hub(hub, tmp_path, "hf://org/signed", "--exclude", "*.safetensors",
                               "--trust", str(hub.trust))
    sig = target["signature"]
    assert sig["outcome"] == "valid" and sig["unchecked"] == ["model.safetensors"]
    assert any(f["rule_id"] == "MS-SIG-012" for f in target["findings"])
    code, _, target = scan_hub(hub, tmp_path, "hf://org/signed", "--exclude", "model.sig",
                               "--trust", str(hub.trust), "--require-signature")
    assert code == 1 and target["signature"]["outcome"] == "unverifiable"
    assert target["signature"]["reason"] == "the repo has a model.sig, but it was not fetched"


def test_hub_bom_references_the_hub_signature(hub, tmp_path):
    import json

    from helpers.cli import run_cli
    from test_hub_remote import hub_env

    bom = tmp_path / "bom.json"
    proc = run_cli("sbom", "hf://org/signed", "--trust", str(hub.trust), "-o", str(bom), env=hub_env(hub, tmp_path))
    assert proc.returncode == 0, proc.stderr
    model = json.loads(bom.read_text())["metadata"]["component"]
    refs = [r for r in model["externalReferences"] if r["type"] == "digital-signature"]
    repo = hub.repos[("model", "org/signed")]
    assert refs and refs[0]["url"] == f"{hub.endpoint}/org/signed/resolve/{repo.commit}/model.sig"
