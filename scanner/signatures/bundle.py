"""Reading `model.sig`: a Sigstore bundle (v0.1 to v0.3) holding a DSSE envelope, under hard caps.

Only the structure is checked here (media type, envelope, base64, verification material); no
cryptography. Everything malformed raises `BundleError` with a one-line reason, which the
orchestrator reports as `unverifiable`. The JSON field names are the protobuf JSON names of
`sigstore.bundle.v1.Bundle` (camelCase), as sigstore-python and model-signing write them.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any
from ..errors import BundleError

SIGNATURE_FILE = "model.sig"  # where OMS puts the signature, inside the model folder
MAX_BUNDLE_BYTES = 32 << 20  # a files manifest of ~100k resources still fits
MAX_SIGNATURES = 8
BUNDLE_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass
class Bundle:
    """The parts of a bundle the verification methods need."""

    media_type: str
    payload_type: str
    payload: bytes  # the decoded DSSE payload (the in-toto statement, JSON)
    signatures: list[bytes]  # DER ECDSA signatures over the DSSE PAE
    material: str  # "public-key" | "x509-chain" | "certificate"
    key_hint: str | None = None  # hex SHA-256 of the signer's PEM SubjectPublicKeyInfo
    raw_public_key: bytes | None = None  # pre-1.0 bundles carried the PEM key itself
    certificates: list[bytes] = field(default_factory=list)  # DER, leaf first
    tlog_entries: int = 0
    document: dict[str, Any] = field(default_factory=dict)  # the parsed JSON (for sigstore)
    raw: bytes = b""
    sha256: str = ""


def read(path: str) -> Bundle:
    """Read and parse the bundle at `path` (size-capped, no symlink leaving its folder)."""
    try:
        size = os.stat(path).st_size
        if size > MAX_BUNDLE_BYTES:
            raise BundleError(f"the signature file is {size} bytes, over the {MAX_BUNDLE_BYTES}-byte cap")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise BundleError(f"the signature file cannot be read: {exc.strerror or exc}") from None
    return parse(raw)


def parse(raw: bytes) -> Bundle:
    """Parse bundle bytes; raise BundleError with the reason when they are not an OMS bundle."""
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the signature file is over the {MAX_BUNDLE_BYTES}-byte cap")
    if not raw.strip():
        raise BundleError("the signature file is empty")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BundleError("the signature file is not UTF-8 JSON") from None
    except RecursionError:
        raise BundleError("the signature file nests JSON too deeply") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"the signature file is not JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(doc, dict):
        raise BundleError("the signature file is JSON but not a bundle object")
    media_type = doc.get("mediaType")
    if media_type not in BUNDLE_MEDIA_TYPES:
        raise BundleError(f"unknown bundle media type {_show(media_type)} (expected a Sigstore bundle v0.1 to v0.3)")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        what = "a message signature, not a DSSE envelope" if "messageSignature" in doc else "no DSSE envelope"
        raise BundleError(f"the bundle holds {what}; OMS signatures sign an in-toto statement")
    payload_type = envelope.get("payloadType")
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise BundleError(f"DSSE payload type {_show(payload_type)} is not {IN_TOTO_PAYLOAD_TYPE}")
    payload = _b64(envelope.get("payload"), "DSSE payload")
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise BundleError("the DSSE envelope has no signature")
    if len(sigs) > MAX_SIGNATURES:
        raise BundleError(f"the DSSE envelope has {len(sigs)} signatures (at most {MAX_SIGNATURES} are read)")
    signatures = [_b64(s.get("sig") if isinstance(s, dict) else None, "DSSE signature") for s in sigs]
    bundle = Bundle(media_type=media_type, payload_type=payload_type, payload=payload, signatures=signatures,
                    material="", document=doc, raw=raw, sha256=hashlib.sha256(raw).hexdigest())
    _material(doc.get("verificationMaterial"), bundle)
    return bundle


def _material(material: Any, bundle: Bundle) -> None:
    if not isinstance(material, dict):
        raise BundleError("the bundle has no verification material")
    tlog = material.get("tlogEntries")
    bundle.tlog_entries = len(tlog) if isinstance(tlog, list) else 0
    if "publicKey" in material:
        key = material["publicKey"]
        if not isinstance(key, dict):
            raise BundleError("verificationMaterial.publicKey is not an object")
        hint = key.get("hint")
        if hint is not None:
            if not isinstance(hint, str) or len(hint) > 256:
                raise BundleError("verificationMaterial.publicKey.hint is not a short string")
            bundle.key_hint = hint.lower()
        if key.get("rawBytes") is not None:
            bundle.raw_public_key = _b64(key.get("rawBytes"), "verificationMaterial.publicKey.rawBytes")
        bundle.material = "public-key"
    elif "x509CertificateChain" in material:
        chain = material["x509CertificateChain"]
        certs = chain.get("certificates") if isinstance(chain, dict) else None
        if not isinstance(certs, list) or not certs:
            raise BundleError("verificationMaterial.x509CertificateChain has no certificate")
        if len(certs) > 10:
            raise BundleError(f"the certificate chain has {len(certs)} certificates (at most 10)")
        bundle.certificates = [_b64(c.get("rawBytes") if isinstance(c, dict) else None, "certificate")
                               for c in certs]
        bundle.material = "x509-chain"
    elif "certificate" in material:
        cert = material["certificate"]
        bundle.certificates = [_b64(cert.get("rawBytes") if isinstance(cert, dict) else None, "certificate")]
        bundle.material = "certificate"
    else:
        raise BundleError("the verification material is neither a public key nor certificates")


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise BundleError(f"{what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # protobuf JSON also accepts URL-safe base64
            return base64.urlsafe_b64decode(value)
        except (binascii.Error, ValueError):
            raise BundleError(f"{what} is not valid base64") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
