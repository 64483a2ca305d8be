"""The orchestrator: find `model.sig`, read it, let the matching method check who signed, hold
the folder to the signed manifest, and conclude one outcome with its reason.

Outcome precedence: a signature that does not verify, or an authentic signature whose manifest the
files do not match, is `invalid`; a signature we cannot check (format, key type, missing extra) is
`unverifiable`; a good signature by a signer the policy does not trust is `untrusted`; otherwise
`valid`. Files under ignored paths are listed as uncovered, never hidden: they are still scanned.
"""
from __future__ import annotations

import datetime as _dt
import os

from ..findings import SignatureOutcome as O, SignatureResult
from . import bundle as bundle_mod, manifest, statement as statement_mod
from ..errors import BundleError, StatementError
from .bundle import SIGNATURE_FILE
from .certificate import CertificateMethod
from .interface import Method, MethodResult
from .key import KeyMethod
from .keyless import KeylessMethod, trust_root_age
from .trust import TrustSet

METHODS: list[Method] = [KeyMethod(), CertificateMethod(), KeylessMethod()]


def verify_folder(root: str, signature: str | None, trust: TrustSet, *, listing: manifest.Listing | None = None,
                  unavailable: set[str] | None = None, expected_name: str | None = None,
                  now: _dt.datetime | None = None, label: str | None = None) -> SignatureResult:
    """Check the folder `root` against the signature file `signature` (default: root/model.sig).

    `listing`: the folder's files with the digests the scan already computed (default: walk the
    folder and hash what is needed). `unavailable`: files known to exist but not fetched.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    signature = signature or os.path.join(root, SIGNATURE_FILE)
    inside = _relative(signature, root)
    result = SignatureResult(bundle=label or inside or signature, trust=trust.source)
    if not os.path.lexists(signature):
        result.outcome, result.reason = O.UNSIGNED, f"no signature ({SIGNATURE_FILE}) found"
        result.bundle = None
        return result
    if inside is not None and os.path.islink(signature):
        return _set(result, O.UNVERIFIABLE, "the signature file is a symbolic link; it is not followed")
    try:
        bundle = bundle_mod.read(signature)
    except BundleError as exc:
        return _set(result, O.UNVERIFIABLE, str(exc))
    result.bundle_sha256 = bundle.sha256
    method = next((m for m in METHODS if m.accepts(bundle)), None)
    if method is None:
        return _set(result, O.UNVERIFIABLE, "the bundle's verification material matches no supported method")
    result.method = method.NAME
    checked = method.verify(bundle, trust, now)
    result.signer, result.legacy = checked.signer, checked.legacy
    if checked.outcome in (O.INVALID, O.UNVERIFIABLE):
        return _set(result, checked.outcome, checked.reason)
    try:
        stmt = statement_mod.parse(bundle.payload)
    except StatementError as exc:
        if exc.invalid and checked.authentic:
            return _set(result, O.INVALID, f"the signed statement is inconsistent: {exc}")
        if exc.invalid:
            return _set(result, O.UNTRUSTED, f"{checked.reason}; its statement is also inconsistent: {exc}")
        return _set(result, O.UNVERIFIABLE, str(exc))
    result.model_name, result.root_digest, result.legacy = stmt.model_name, stmt.root_digest, \
        result.legacy or stmt.legacy
    result.serialization = stmt.serialization()

    ignores = manifest.normalise_ignores(list(statement_mod.DEFAULT_IGNORES) + stmt.ignore_paths +
                                         ([inside] if inside else []))
    scanned = listing is not None  # inside a scan: reads beyond the file pass are re-reads
    listing = listing if listing is not None else manifest.walk(root)
    try:
        actual, uncovered = manifest.local_resources(listing, stmt, ignores)
    except ValueError as exc:
        return _set(result, O.UNVERIFIABLE, str(exc))
    result.reread_bytes = listing.reread_bytes if scanned else 0
    diff = manifest.compare(stmt, listing, actual, unavailable or set(), ignores)
    result.covered, result.unchecked = diff.covered, diff.unchecked
    result.uncovered = sorted(set(uncovered + diff.added) - {inside})
    result.differences = diff.problems()
    _conclude(result, checked, stmt, diff, trust, expected_name)
    if method.NAME == "sigstore" and trust.sigstore_trust_root and result.outcome is not O.INVALID:
        age = trust_root_age(trust.sigstore_trust_root)
        result.reason += f" (Sigstore trust root {os.path.basename(trust.sigstore_trust_root)}: newest key " \
                         f"valid from {age or 'unknown'}; roots go stale as keys rotate)"
    return result


def _conclude(result: SignatureResult, checked: MethodResult, stmt: statement_mod.Statement,
              diff: manifest.Comparison, trust: TrustSet, expected_name: str | None) -> SignatureResult:
    problems = describe_problems(diff)
    want = trust.model_name or expected_name
    name_problem = None
    if not stmt.legacy and want and stmt.model_name != want:
        name_problem = f"the signature was made for model {stmt.model_name!r}, not {want!r}"
    if checked.authentic and (problems or name_problem):
        return _set(result, O.INVALID, "; ".join(p for p in (name_problem, problems) if p))
    if checked.outcome is O.UNTRUSTED:
        extra = f" (and, if it were trusted: {problems})" if problems else ""
        return _set(result, O.UNTRUSTED, checked.reason + extra)
    if not diff.covered and not diff.unchecked:
        return _set(result, O.INVALID, "the signature covers no file of the model")
    reason = f"{len(diff.covered)} file(s) match the signature"
    if diff.unchecked:
        reason += f"; {len(diff.unchecked)} signed file(s) were not fetched and not checked"
    return _set(result, O.VALID, reason)


def describe_problems(diff: manifest.Comparison) -> str:
    """One line naming every difference between the folder and the signed manifest."""
    labels = {"changed": "differs from its signed digest", "missing": "is signed but missing",
              "added": "is not covered by the signature (added)", "renamed": "was renamed",
              "symlinks": "is a symbolic link, which the signature does not allow",
              "outside": "links outside the model folder", "unreadable": "cannot be read as a regular file"}
    parts = []
    for key, items in diff.problems().items():
        shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
        parts.append(f"{shown} {labels[key]}")
    return "; ".join(parts)


def _set(result: SignatureResult, outcome: O, reason: str) -> SignatureResult:
    result.outcome, result.reason = outcome, reason
    return result


def _relative(path: str, root: str) -> str | None:
    """`path` relative to `root` (POSIX) when it lies inside, else None."""
    full, base = os.path.abspath(path), os.path.abspath(root)
    if full.startswith(base + os.sep):
        return os.path.relpath(full, base).replace(os.sep, "/")
    return None
