"""Real keys, a small CA and hand-built OMS bundles for the signature tests (no model-signing needed).

`Pki`: a root CA, an intermediate, a code-signing leaf with an email SAN, an expired leaf, a
leaf with another SAN, and a leaf from a CA nobody trusts. `craft_bundle` builds a bundle from an
arbitrary statement dict, so the tests can sign statements that are wrong on purpose.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.timezone.utc)
MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
CURVE_HASH = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}


def new_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def write_key(key: Any, folder: Path, name: str) -> tuple[Path, Path]:
    """PEM private and public key files."""
    priv = folder / f"{name}.pem"
    pub = folder / f"{name}.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def hint(key: Any) -> str:
    pub = key.public_key() if hasattr(key, "public_key") else key
    return hashlib.sha256(pub.public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _cert(subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *, ca: bool,
          san: str | None = None, not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
          path_length: int | None = None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - dt.timedelta(days=1))
               .not_valid_after(not_after or NOW + dt.timedelta(days=365))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                        critical=False)
    if ca:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True))
    else:
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(san)]), critical=False)
    return builder.sign(issuer_key if issuer is not None else key, hashes.SHA256())


@dataclass
class Leaf:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


class Pki:
    """root -> intermediate -> leaves; plus an untrusted root with its own leaf."""

    def __init__(self) -> None:
        self.root_key, self.int_key = new_key(), new_key()
        self.root = _cert("Test Root CA", self.root_key, None, None, ca=True, path_length=1)
        self.intermediate = _cert("Test Intermediate CA", self.int_key, self.root, self.root_key, ca=True,
                                  path_length=0)
        self.leaf = self._leaf("Release signer", "release@example.org")
        self.expired = self._leaf("Old signer", "release@example.org", NOW - dt.timedelta(days=30),
                                  NOW - dt.timedelta(days=1))
        self.other_san = self._leaf("Other signer", "intruder@example.org")
        rogue_key = new_key()
        self.rogue_root = _cert("Rogue Root CA", rogue_key, None, None, ca=True)
        key = new_key()
        self.rogue_leaf = Leaf(key, _cert("Rogue signer", key, self.rogue_root, rogue_key, ca=False,
                                          san="release@example.org"))

    def _leaf(self, cn: str, san: str, nb: dt.datetime | None = None, na: dt.datetime | None = None) -> Leaf:
        key = new_key()
        return Leaf(key, _cert(cn, key, self.intermediate, self.int_key, ca=False, san=san, not_before=nb,
                               not_after=na))

    def write(self, folder: Path) -> dict[str, Path]:
        """root.pem, rogue-root.pem, and for each leaf NAME.pem (key) + NAME-chain.pem (leaf, intermediate)."""
        out = {"root": folder / "root.pem", "rogue-root": folder / "rogue-root.pem"}
        out["root"].write_bytes(pem(self.root))
        out["rogue-root"].write_bytes(pem(self.rogue_root))
        for name, leaf, chain in (("leaf", self.leaf, [self.intermediate]), ("expired", self.expired,
                                  [self.intermediate]), ("other-san", self.other_san, [self.intermediate]),
                                  ("rogue", self.rogue_leaf, [])):
            key_path, _ = write_key(leaf.key, folder, name)
            out[name] = key_path
            out[f"{name}-chain"] = folder / f"{name}-chain.pem"
            out[f"{name}-chain"].write_bytes(b"".join(pem(c) for c in [leaf.cert, *chain]))
        return out


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_model(folder: Path, name: str = "tiny-model") -> Path:
    """A small model folder: config, weights, tokenizer in a subfolder, an empty file."""
    root = folder / name
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    (root / "weights.raw").write_bytes(bytes(range(256)) * 64)
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (root / "empty.txt").write_bytes(b"")
    return root


def resources(root: Path, ignore: tuple[str, ...] = ("model.sig",)) -> list[dict[str, str]]:
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not any(rel == i or rel.startswith(i + "/") for i in ignore):
            out.append({"name": rel, "algorithm": "sha256", "digest": hashlib.sha256(p.read_bytes()).hexdigest()})
    return sorted(out, key=lambda r: r["name"])


def root_digest(items: list[dict[str, str]]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in items)).hexdigest()


def statement(root: Path, name: str | None = None, items: list[dict[str, str]] | None = None) -> dict[str, Any]:
    items = resources(root) if items is None else items
    return {"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name or root.name, "digest": {"sha256": root_digest(items)}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                                            "ignore_paths": ["model.sig", ".git", ".gitattributes", ".github",
                                                             ".gitignore"]},
                          "resources": items}}


def pae(payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def craft_bundle(stmt: dict[str, Any] | bytes, key: ec.EllipticCurvePrivateKey, *,
                 chain: list[x509.Certificate] | None = None) -> dict[str, Any]:
    """A bundle signing `stmt` with `key` (material: key hint, or the certificate chain)."""
    payload = stmt if isinstance(stmt, bytes) else json.dumps(stmt, indent=2).encode()
    algo = CURVE_HASH[key.curve.key_size]()
    sig = key.sign(pae(payload), ec.ECDSA(algo))
    if chain:
        material: dict[str, Any] = {"x509CertificateChain": {"certificates": [
            {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()} for c in chain]},
            "tlogEntries": []}
    else:
        material = {"publicKey": {"hint": hint(key)}, "tlogEntries": []}
    return {"mediaType": MEDIA_TYPE, "verificationMaterial": material,
            "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                             "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}]}}


def write_bundle(root: Path, bundle: dict[str, Any] | bytes) -> Path:
    path = root / "model.sig"
    path.write_bytes(bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode())
    return path
