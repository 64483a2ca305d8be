"""Certificate method: a leaf certificate (and intermediates) in the bundle, chained to a CA the
trust policy lists, valid at verification time, with a pinnable identity (SAN).

The chain is validated with `cryptography.x509.verification` against the listed roots only
(never system or web-PKI roots), at the current time (an expired leaf is not trusted, unlike
model-signing 1.1.1 which validates at the leaf's notBefore). The leaf must be usable for code
signing: extended key usage codeSigning, or no EKU and key usage digitalSignature.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..findings import SignatureOutcome as O
from . import dsse
from .bundle import Bundle
from .interface import MethodResult
from .trust import TrustSet, key_problem


class CertificateMethod:
    NAME = "certificate"

    def accepts(self, bundle: Bundle) -> bool:
        return bundle.material == "x509-chain" or (bundle.material == "certificate" and not bundle.tlog_entries)

    def verify(self, bundle: Bundle, trust: TrustSet, now: _dt.datetime) -> MethodResult:
        try:
            chain = [x509.load_der_x509_certificate(der) for der in bundle.certificates]
        except ValueError as exc:
            return MethodResult(O.UNVERIFIABLE, f"a certificate in the bundle cannot be read ({exc})")
        leaf = chain[0]
        signer = describe(leaf)
        key = leaf.public_key()
        problem = key_problem(key)
        if problem:
            return MethodResult(O.UNVERIFIABLE, f"the signing certificate's key cannot be checked: {problem}",
                                signer=signer)
        ok, legacy = dsse.verify(key, bundle)  # type: ignore[arg-type]
        if not ok:
            return MethodResult(O.INVALID, "the DSSE signature does not verify with the signing certificate's key",
                                signer=signer)
        if not trust.cas:
            return MethodResult(O.UNTRUSTED, f"signed by {signer}; no trusted CA is configured for this target",
                                signer=signer, authentic=True, legacy=legacy)
        verdict = check_chain(leaf, chain[1:], trust.cas, now)
        if verdict is not None:
            return MethodResult(O.UNTRUSTED, f"signed by {signer}, but {verdict}", signer=signer,
                                authentic=True, legacy=legacy)
        if trust.identities:
            names = san_values(leaf)
            if not set(names) & set(trust.identities):
                shown = ", ".join(names) or "no SAN"
                return MethodResult(O.UNTRUSTED, f"the certificate identity ({shown}) is not a trusted identity "
                                    f"({', '.join(trust.identities)})", signer=signer, authentic=True, legacy=legacy)
        return MethodResult(O.VALID, "", signer=signer, authentic=True, legacy=legacy)


def check_chain(leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate],
                now: _dt.datetime) -> str | None:
    """None when `leaf` chains to one of `roots` at `now` and may sign code; else why not."""
    from cryptography.x509.verification import (Criticality, ExtensionPolicy, PolicyBuilder, Store,
                                                VerificationError)

    def code_signing(_policy: Any, _cert: Any, eku: x509.ExtendedKeyUsage | None) -> None:
        if eku is not None and ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise ValueError("the leaf certificate's extended key usage does not include codeSigning")

    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC,
                                                             code_signing)
    try:
        verifier = (PolicyBuilder().store(Store(roots)).time(now)
                    .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
                    .build_client_verifier())
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        return f"its certificate chain is not trusted: {_reason(str(exc), leaf, now)}"
    except ValueError as exc:
        return f"its certificate chain is not trusted: {exc}"
    eku = _extension(leaf, x509.ExtendedKeyUsage)
    usage = _extension(leaf, x509.KeyUsage)
    if eku is None and (usage is None or not usage.digital_signature):
        return "the leaf certificate is not for signing (no codeSigning usage, no digitalSignature key usage)"
    return None


def san_values(cert: x509.Certificate) -> list[str]:
    """The subject alternative names (emails, URIs, DNS names) of a certificate."""
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return []
    out: list[str] = []
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
        out += [str(v) for v in san.get_values_for_type(kind)]
    return out


def describe(cert: x509.Certificate) -> str:
    """`CN=... (SAN a@b)`: how the signer is named in reports."""
    subject = cert.subject.rfc4514_string() or "an empty subject"
    sans = san_values(cert)
    return subject + (f" ({', '.join(sans)})" if sans else "")


def _reason(text: str, leaf: x509.Certificate, now: _dt.datetime) -> str:
    if leaf.not_valid_after_utc < now:
        return f"the signing certificate expired on {leaf.not_valid_after_utc.date().isoformat()}"
    if leaf.not_valid_before_utc > now:
        return f"the signing certificate is not valid before {leaf.not_valid_before_utc.date().isoformat()}"
    if "candidates exhausted" in text or "issuer" in text.lower():
        return "it does not chain to a trusted CA"
    return text.splitlines()[0][:200]


def _extension(cert: x509.Certificate, kind: Any) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        return None
