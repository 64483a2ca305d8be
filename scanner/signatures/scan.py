"""The signature check inside a scan: run once per target after its files were scanned, reusing
the SHA-256 of every file the single file pass computed (no second read for `files` manifests).

Sets `TargetResult.signature` and adds target-level findings (data/rules/signatures.toml). A valid
signature changes nothing about the content findings: a signed malicious pickle still blocks.
"""
from __future__ import annotations

import datetime as _dt
import os
from typing import Any

from ..findings import Location, SignatureOutcome as O, SignatureResult, Status, TargetResult
from ..rules import load_rules
from .bundle import SIGNATURE_FILE
from .trust import TrustPolicy, TrustSet

# outcome -> (rule when the policy names signers for the target, rule otherwise)
_RULES = {
    O.VALID: ("MS-SIG-001", "MS-SIG-001"),
    O.INVALID: ("MS-SIG-002", "MS-SIG-002"),
    O.UNTRUSTED: ("MS-SIG-003", "MS-SIG-004"),
    O.UNVERIFIABLE: ("MS-SIG-005", "MS-SIG-005"),
    O.UNSIGNED: ("MS-SIG-006", "MS-SIG-007"),
}
REQUIRED = "MS-SIG-008"
UNCOVERED = "MS-SIG-009"
LEGACY = "MS-SIG-010"
REREAD = "MS-SIG-011"
UNCHECKED = "MS-SIG-012"


def target_names(result: TargetResult) -> list[str]:
    """The names a trust entry's `targets` globs are matched against."""
    names = [result.target.rstrip("/")]
    prov = result.provenance or {}
    if result.root:
        names.append(result.root.rstrip(os.sep))
    if prov.get("repo_id"):
        prefix = "hf://datasets/" if prov.get("repo_type") == "dataset" else "hf://"
        names.append(prefix + str(prov["repo_id"]))
    return names


def expected_name(result: TargetResult) -> str | None:
    """The model name a signature of this target should carry: the repo's or the folder's name."""
    prov = result.provenance or {}
    if prov.get("repo_id"):
        return str(prov["repo_id"]).rsplit("/", 1)[-1]
    if result.root:
        return os.path.basename(os.path.abspath(result.root))
    return None


def check_target(result: TargetResult, trust_policy: TrustPolicy | None, require: bool = False,
                 now: _dt.datetime | None = None) -> None:
    """Verify the target's `model.sig` (if any) and record the outcome and its findings."""
    trust = trust_policy.for_target(target_names(result)) if trust_policy else TrustSet()
    trust.require = trust.require or require
    if result.error or not result.root or result.kind == "url" or _single_file(result):
        result.signature = SignatureResult(reason="a single file or URL: OMS signatures cover a model folder")
        if trust.require:
            _finding(result, REQUIRED, ".", outcome="not-checked", reason=result.signature.reason,
                     source=trust.source or "--require-signature")
        return
    if result.kind in ("hf", "hf-cache"):
        sig = _remote(result, trust, now)
    elif not os.path.lexists(os.path.join(result.root, SIGNATURE_FILE)):
        sig = SignatureResult(outcome=O.UNSIGNED, reason=f"no signature ({SIGNATURE_FILE}) found",
                              trust=trust.source)
    else:
        from . import manifest
        from .verify import verify_folder

        listing = manifest.walk(result.root)
        known = {a.path: a.sha256 for a in result.artefacts if a.status is not Status.SKIPPED and a.sha256}
        for rel, entry in listing.entries.items():
            entry.sha256 = known.get(rel)
        sig = verify_folder(result.root, None, trust, listing=listing, expected_name=expected_name(result),
                            now=now)
    result.signature = sig
    record(result, sig, trust)


def _remote(result: TargetResult, trust: TrustSet, now: _dt.datetime | None) -> SignatureResult:
    """Hub repos (and cache snapshots): the listing is the repo's file list; cache links are its files."""
    from . import manifest
    from .verify import verify_folder

    listing = manifest.Listing()
    unavailable: set[str] = set()
    signature: str | None = None
    for a in result.artefacts:
        if a.status is Status.SKIPPED or not a.absolute_path:
            unavailable.add(a.path)
            continue
        if a.path == SIGNATURE_FILE:
            signature = os.path.realpath(a.absolute_path)  # the cache blob (the scan kept it inside)
            continue
        listing.entries[a.path] = manifest.Entry(a.path, "file", a.absolute_path, a.size, a.sha256)
    assert result.root is not None
    if signature is None and SIGNATURE_FILE in unavailable:
        return SignatureResult(outcome=O.UNVERIFIABLE, bundle=SIGNATURE_FILE, trust=trust.source,
                               reason=f"the repo has a {SIGNATURE_FILE}, but it was not fetched")
    if signature is None:
        return SignatureResult(outcome=O.UNSIGNED, reason=f"no signature ({SIGNATURE_FILE}) in the repo",
                               trust=trust.source)
    return verify_folder(result.root, signature, trust, listing=listing, unavailable=unavailable,
                         expected_name=expected_name(result), now=now, label=SIGNATURE_FILE)


def record(result: TargetResult, sig: SignatureResult, trust: TrustSet) -> None:
    """Target-level findings for a signature outcome (and the requirement, when one applies)."""
    rules = _RULES.get(sig.outcome)
    where = sig.bundle or "."
    if sig.outcome is O.UNSIGNED and trust.source is None and not trust.require:
        rules = None  # no trust policy in force: "unsigned" is the outcome, not a finding on every scan
    if rules is not None:
        rule = rules[0] if trust.configured else rules[1]
        _finding(result, rule, where, outcome=sig.outcome.value, reason=sig.reason, signer=sig.signer or "unknown",
                 method=sig.method or "-", covered=len(sig.covered), bundle_sha256=sig.bundle_sha256 or "-",
                 differences=sig.differences)
    if trust.require and sig.outcome is not O.VALID:
        _finding(result, REQUIRED, where, outcome=sig.outcome.value, reason=sig.reason,
                 source=trust.source or "--require-signature")
    if sig.uncovered:
        _finding(result, UNCOVERED, where, count=len(sig.uncovered), files=_names(sig.uncovered),
                 all_files=sig.uncovered)
    if sig.legacy:
        _finding(result, LEGACY, where)
    if sig.reread_bytes:
        why = f"{sig.serialization.get('method')} serialisation, {sig.serialization.get('hash_type')}"
        _finding(result, REREAD, where, bytes=sig.reread_bytes, why=why)
    if sig.unchecked:
        _finding(result, UNCHECKED, where, count=len(sig.unchecked), files=_names(sig.unchecked),
                 all_files=sig.unchecked)


def _finding(result: TargetResult, rule_id: str, where: str, **evidence: Any) -> None:
    result.findings.append(load_rules().finding(rule_id, Location(path=where), **evidence))


def _names(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _single_file(result: TargetResult) -> bool:
    return result.kind == "local" and os.path.isfile(os.path.expanduser(result.target))
