"""The `[advisories]` table of the policy file (validated here; scanner/policy.py keeps it raw).

    [advisories]
    max_age_days = 30                       # warn when the database in use is older
    [[advisories.ignore]]                   # like pip-audit's --ignore-vuln, with a reason and expiry
    id = "CVE-2025-1550"                    # any id or alias of the advisory
    reason = "keras pinned by the serving image; upgrade tracked in OPS-123"
    expires = 2026-06-30
    vex_justification = "requires_environment"   # optional: the VEX justification in deployment BOMs
    [advisories.known_bad]                  # more known-malicious artefacts (sha256 -> source, reference)
    "<64 hex>" = { source = "internal incident 42", reference = "https://..." }
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any
from .errors import AdvisoryPolicyError

VEX_JUSTIFICATIONS = {"code_not_present", "code_not_reachable", "requires_configuration",
                      "requires_dependency", "requires_environment", "protected_by_compiler",
                      "protected_at_runtime", "protected_at_perimeter", "protected_by_mitigating_control"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Waiver:
    id: str
    reason: str
    expires: _dt.date | None  # None: the command line's --ignore-vuln (this run only)
    vex_state: str = "not_affected"
    vex_justification: str | None = None


@dataclass
class AdvisoryPolicy:
    max_age_days: int = 30
    waivers: list[Waiver] = field(default_factory=list)
    known_bad: dict[str, dict[str, str]] = field(default_factory=dict)

    def waiver_for(self, ids: set[str]) -> Waiver | None:
        """The first waiver naming any of `ids` (case-insensitive), expired ones included."""
        upper = {i.upper() for i in ids}
        return next((w for w in self.waivers if w.id.upper() in upper), None)


def parse(raw: Any, source: str = "policy") -> AdvisoryPolicy:
    """Validate the `[advisories]` table."""
    where = f"{source}: [advisories]"
    if raw in (None, {}):
        return AdvisoryPolicy()
    if not isinstance(raw, dict):
        raise AdvisoryPolicyError(f"{where} must be a table")
    unknown = set(raw) - {"max_age_days", "ignore", "known_bad"}
    if unknown:
        raise AdvisoryPolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    out = AdvisoryPolicy()
    if "max_age_days" in raw:
        if not isinstance(raw["max_age_days"], int) or isinstance(raw["max_age_days"], bool) or raw["max_age_days"] < 1:
            raise AdvisoryPolicyError(f"{where}.max_age_days must be a positive integer")
        out.max_age_days = raw["max_age_days"]
    ignores = raw.get("ignore", [])
    if not isinstance(ignores, list):
        raise AdvisoryPolicyError(f"{where}.ignore must be an array of tables ([[advisories.ignore]])")
    for i, item in enumerate(ignores):
        out.waivers.append(_waiver(item, f"{where}.ignore[{i}]"))
    bad = raw.get("known_bad", {})
    if not isinstance(bad, dict):
        raise AdvisoryPolicyError(f"{where}.known_bad must be a table of sha256 = {{source, reference}}")
    for digest, entry in bad.items():
        key = str(digest).lower()
        if not _SHA256.match(key):
            raise AdvisoryPolicyError(f"{where}.known_bad: {digest!r} is not a SHA-256 hex digest")
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str) or not entry["source"].strip():
            raise AdvisoryPolicyError(f"{where}.known_bad.{key[:12]}...: needs a `source`")
        out.known_bad[key] = {k: str(v) for k, v in entry.items() if k in ("source", "reference", "repo", "note")}
    return out


def _waiver(item: Any, where: str) -> Waiver:
    if not isinstance(item, dict):
        raise AdvisoryPolicyError(f"{where} must be a table")
    for key in ("id", "reason", "expires"):
        if not item.get(key):
            raise AdvisoryPolicyError(f"{where} needs {key!r} (a waiver always has a reason and an expiry date)")
    expires = item["expires"]
    if isinstance(expires, str):
        try:
            expires = _dt.date.fromisoformat(expires)
        except ValueError:
            raise AdvisoryPolicyError(f"{where}.expires must be a date (YYYY-MM-DD)") from None
    if isinstance(expires, _dt.datetime):
        expires = expires.date()
    if not isinstance(expires, _dt.date):
        raise AdvisoryPolicyError(f"{where}.expires must be a date (YYYY-MM-DD)")
    justification = item.get("vex_justification")
    if justification is not None and justification not in VEX_JUSTIFICATIONS:
        raise AdvisoryPolicyError(f"{where}.vex_justification must be one of {', '.join(sorted(VEX_JUSTIFICATIONS))}")
    return Waiver(id=str(item["id"]).strip(), reason=str(item["reason"]), expires=expires,
                  vex_state=str(item.get("vex_state", "not_affected")), vex_justification=justification)
