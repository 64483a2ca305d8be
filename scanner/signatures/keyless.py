"""Keyless Sigstore method: a Fulcio certificate plus a Rekor transparency-log entry, verified
fully offline by the `sigstore` library against a trust-root file (`trusted_root.json`).

Optional: `pip install modelshield[sigstore]`. Without it, or without a trust root, such a
bundle is `unverifiable`, never valid. The signer is the certificate's identity (SAN) and OIDC
issuer; the trust policy pins both. Keyless signing needs an identity provider and is out of
scope: `modelshield sign` signs with keys and certificates only.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
from typing import Any, Iterator

from ..findings import SignatureOutcome as O
from . import dsse
from .bundle import Bundle
from .interface import MethodResult
from .trust import TrustSet

ISSUER_OID = "1.3.6.1.4.1.57264.1.8"  # Fulcio: OIDC issuer (v2)
ISSUER_OID_V1 = "1.3.6.1.4.1.57264.1.1"


class KeylessMethod:
    NAME = "sigstore"

    def accepts(self, bundle: Bundle) -> bool:
        return bundle.material == "certificate" and bundle.tlog_entries > 0

    def verify(self, bundle: Bundle, trust: TrustSet, now: _dt.datetime) -> MethodResult:
        try:
            from sigstore.errors import Error as SigstoreError
            from sigstore.models import Bundle as SigstoreBundle, TrustedRoot
            from sigstore.verify import Verifier
            from sigstore.verify.policy import UnsafeNoOp
        except ImportError:
            return MethodResult(O.UNVERIFIABLE, "a keyless Sigstore signature: install modelshield[sigstore] "
                                "(the sigstore package) to verify it offline")
        signer = identity_of(bundle)
        if not trust.sigstore_trust_root:
            return MethodResult(O.UNVERIFIABLE, "a keyless Sigstore signature, but no Sigstore trust root file is "
                                "configured (--sigstore-trust-root or trust.signer.sigstore_trust_root)",
                                signer=signer)
        try:
            from cryptography import x509

            leaf = x509.load_der_x509_certificate(bundle.certificates[0])
            ok, _legacy = dsse.verify(leaf.public_key(), bundle)  # type: ignore[arg-type]
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return MethodResult(O.UNVERIFIABLE, f"the signing certificate cannot be read ({exc})", signer=signer)
        if not ok:
            return MethodResult(O.INVALID, "the DSSE signature does not verify with the signing certificate's key",
                                signer=signer)
        try:
            root = TrustedRoot.from_file(trust.sigstore_trust_root)
            parsed = SigstoreBundle.from_json(bundle.raw)
            with _quiet("sigstore"):  # the identity is checked below, against the trust policy
                Verifier(trusted_root=root).verify_dsse(parsed, UnsafeNoOp())
        except SigstoreError as exc:
            return MethodResult(O.UNTRUSTED, f"signed by {signer}, but Sigstore verification against "
                                f"{trust.sigstore_trust_root} failed: {_line(exc)}", signer=signer, authentic=True)
        except Exception as exc:  # noqa: BLE001 - the library raises many kinds on malformed input
            return MethodResult(O.UNVERIFIABLE, f"the Sigstore bundle or trust root cannot be used: {_line(exc)}",
                                signer=signer)
        ident, issuer = _identity(leaf)
        if not trust.identities:
            return MethodResult(O.UNTRUSTED, f"signed by {signer}; no trusted identity is configured for this "
                                "target", signer=signer, authentic=True)
        if ident not in trust.identities:
            return MethodResult(O.UNTRUSTED, f"the signer identity {ident!r} is not a trusted identity "
                                f"({', '.join(trust.identities)})", signer=signer, authentic=True)
        if trust.issuers and issuer not in trust.issuers:
            return MethodResult(O.UNTRUSTED, f"the identity was issued by {issuer!r}, not by "
                                f"{', '.join(trust.issuers)}", signer=signer, authentic=True)
        return MethodResult(O.VALID, "", signer=signer, authentic=True)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library logger's warnings for the duration (its no-op policy warning)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def identity_of(bundle: Bundle) -> str:
    """`identity (issuer)` from the bundle's leaf certificate, or a placeholder."""
    try:
        from cryptography import x509

        ident, issuer = _identity(x509.load_der_x509_certificate(bundle.certificates[0]))
    except (ValueError, IndexError):
        return "an unreadable certificate"
    return f"{ident or 'no identity'} (issuer {issuer or 'unknown'})"


def trust_root_age(path: str) -> str | None:
    """The newest `validFor.start` in a trust root: how fresh its keys are (roots go stale)."""
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(4 << 20))
    except (OSError, ValueError):
        return None
    starts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            start = (node.get("validFor") or {}).get("start") if isinstance(node.get("validFor"), dict) else None
            if isinstance(start, str):
                starts.append(start)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return max(starts) if starts else None


def _identity(cert: Any) -> tuple[str | None, str | None]:
    from cryptography import x509

    from .certificate import san_values

    sans = san_values(cert)
    issuer = None
    for oid in (ISSUER_OID, ISSUER_OID_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        raw = getattr(ext, "value", b"")
        issuer = _der_string(raw) if oid == ISSUER_OID else raw.decode("utf-8", "replace")
        break
    return (sans[0] if sans else None), issuer


def _der_string(raw: bytes) -> str:
    """The UTF8String inside a DER TLV (Fulcio's v2 extensions), or the bytes as text."""
    if len(raw) >= 2 and raw[0] == 0x0C:
        length, offset = raw[1], 2
        if length & 0x80:
            n = length & 0x7F
            length, offset = int.from_bytes(raw[2:2 + n], "big"), 2 + n
        return raw[offset:offset + length].decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
