"""Checking the DSSE signature of a bundle with one ECDSA public key."""
from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .bundle import Bundle
from .statement import pae, pae_legacy

CURVE_HASH: dict[str, type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]] = {
    "secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}


def curve_hash(key: Any) -> hashes.HashAlgorithm:
    """The hash OMS pairs with the key's curve (P-256: SHA-256, P-384: SHA-384, P-521: SHA-512)."""
    return CURVE_HASH[key.curve.name]()


def verify(key: ec.EllipticCurvePublicKey, bundle: Bundle) -> tuple[bool, bool]:
    """(verified, legacy): any of the envelope's signatures verifies over the PAE with `key`.

    `legacy` when only the pre-1.0 model_signing encoding verifies (it hashed with SHA-256
    whatever the curve)."""
    current = pae(bundle.payload, bundle.payload_type)
    for sig in bundle.signatures:
        try:
            key.verify(sig, current, ec.ECDSA(curve_hash(key)))
            return True, False
        except InvalidSignature:
            pass
    old = pae_legacy(bundle.payload, bundle.payload_type)
    for sig in bundle.signatures:
        for algorithm in (curve_hash(key), hashes.SHA256()):
            try:
                key.verify(sig, old, ec.ECDSA(algorithm))
                return True, True
            except InvalidSignature:
                pass
    return False, False


def sign(private_key: ec.EllipticCurvePrivateKey, payload: bytes, payload_type: str) -> bytes:
    """DER ECDSA signature over the PAE, with the curve's hash."""
    return private_key.sign(pae(payload, payload_type), ec.ECDSA(curve_hash(private_key.public_key())))
