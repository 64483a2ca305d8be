"""Creating `model.sig` (OMS v1.0) with an EC private key, optionally with its certificate chain.

The output is what model-signing 1.x writes for `sign key` / `sign certificate`: a Sigstore bundle
v0.3 whose verification material is the key hint (SHA-256 of the PEM SubjectPublicKeyInfo) or
the certificate chain (leaf first), no transparency-log entry, and a DSSE envelope over the
in-toto statement. Keyless (Sigstore) signing needs an identity provider and is not offered.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import dsse, manifest, statement
from .bundle import IN_TOTO_PAYLOAD_TYPE
from .trust import key_hint, key_problem
from ..errors import SigningError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
DEFAULT_SHARD_SIZE = 1_000_000_000


@dataclass
class Signed:
    path: str
    files: int
    root_digest: str
    signer: str
    bundle_sha256: str


def sign_folder(folder: str, private_key: str, *, certificate_chain: str | None = None, password: bytes | None = None,
                signature: str | None = None, method: str = "files", shard_size: int = DEFAULT_SHARD_SIZE,
                ignore_paths: list[str] | None = None, allow_symlinks: bool = False,
                model_name: str | None = None) -> Signed:
    """Hash `folder` per OMS, sign the statement and write the bundle (default folder/model.sig)."""
    if not os.path.isdir(folder):
        raise SigningError(f"{folder}: not a folder (OMS signs a model folder)")
    key = _private_key(private_key, password)
    chain = _chain(certificate_chain, key) if certificate_chain else None
    signature = signature or os.path.join(folder, "model.sig")
    inside = os.path.abspath(signature).startswith(os.path.abspath(folder) + os.sep)
    ignores = list(statement.DEFAULT_IGNORES) + [p.strip("/") for p in ignore_paths or []]
    if inside:
        ignores.append(os.path.relpath(signature, folder).replace(os.sep, "/"))
    ignores = sorted(set(manifest.normalise_ignores(ignores)))
    listing = manifest.walk(folder)
    links = [r for r, e in listing.entries.items() if e.kind == "symlink" and not manifest.ignored(r, ignores)]
    bad = [r for r, e in listing.entries.items() if e.kind in ("outside", "special", "unavailable")
           and not manifest.ignored(r, ignores)]
    if links and not allow_symlinks:
        raise SigningError(f"{links[0]} is a symbolic link; pass --allow-symlinks to sign the file it points to")
    if bad:
        raise SigningError(f"{bad[0]} is not a regular file inside the folder (a link leaving it, or a special file)")
    serialization_params: dict[str, object] = {"method": method, "hash_type": "sha256",
                                               "allow_symlinks": allow_symlinks}
    if method == "shards":
        if shard_size <= 0:
            raise SigningError("the shard size must be a positive number of bytes")
        serialization_params["shard_size"] = shard_size
    elif method != "files":
        raise SigningError(f"unknown serialisation method {method!r} (files or shards)")
    serialization_params["ignore_paths"] = ignores
    stmt = statement.Statement(model_name=None, root_digest=None, method=method, hash_type="sha256",
                               allow_symlinks=allow_symlinks, shard_size=shard_size if method == "shards" else None,
                               ignore_paths=ignores)
    digests, _ = manifest.local_resources(listing, stmt, ignores, workers=os.cpu_count() or 2)
    algorithm = "sha256" if method == "files" else f"sha256-sharded-{shard_size}"
    resources = [statement.Resource(name, algorithm, digests[name]) for name in sorted(digests)]
    if not resources:
        raise SigningError(f"{folder}: no file to sign")
    name = model_name or os.path.basename(os.path.abspath(folder))
    payload = statement.build(name, resources, serialization_params)
    sig = dsse.sign(key, payload, IN_TOTO_PAYLOAD_TYPE)
    public = key.public_key()
    if chain:
        material: dict[str, object] = {"x509CertificateChain": {"certificates": [
            {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain]}, "tlogEntries": []}
        from .certificate import describe

        signer = describe(chain[0])
    else:
        material = {"publicKey": {"hint": key_hint(public)}, "tlogEntries": []}
        signer = f"key sha256:{key_hint(public)}"
    doc = {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material,
           "dsseEnvelope": {"payload": _b64(payload), "payloadType": IN_TOTO_PAYLOAD_TYPE,
                            "signatures": [{"sig": _b64(sig), "keyid": ""}]}}
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    _write(signature, raw)
    return Signed(path=signature, files=len({manifest._file_of(r.name, method) for r in resources}),
                  root_digest=statement.root_digest(resources), signer=signer,
                  bundle_sha256=hashlib.sha256(raw).hexdigest())


def _private_key(path: str, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except OSError as exc:
        raise SigningError(f"{path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        raise SigningError(f"{path}: the key is encrypted: give its password (MODELSHIELD_KEY_PASSWORD)") from None
    except ValueError as exc:
        raise SigningError(f"{path}: not a PEM private key, or a wrong password ({exc})") from None
    problem = key_problem(key.public_key())
    if problem or not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningError(f"{path}: {problem or 'not an EC key'}")
    return key


def _chain(path: str, key: ec.EllipticCurvePrivateKey) -> list[x509.Certificate]:
    """The certificates of `path`, the one holding the key's public half first."""
    try:
        with open(path, "rb") as fh:
            certs = x509.load_pem_x509_certificates(fh.read(1 << 20))
    except OSError as exc:
        raise SigningError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SigningError(f"{path}: not a PEM certificate chain ({exc})") from None
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf = [c for c in certs if c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public]
    if not leaf:
        raise SigningError(f"{path}: no certificate in the chain holds the private key's public key")
    return leaf[:1] + [c for c in certs if c is not leaf[0]]


def _write(path: str, raw: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".model.sig.", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except OSError as exc:
        raise SigningError(f"cannot write {path}: {exc.strerror or exc}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

