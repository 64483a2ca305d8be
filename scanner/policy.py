"""Policy: the allow/deny tables for imported globals (data files), the user's policy file,
suppressions with reasons and expiry dates, fail-on threshold and budgets.

Resolution of a global is allowlist-first: denied (critical) beats allowed beats unknown (high).
A deny entry covers the module and everything under it (`asyncio` denies
`asyncio.unix_events._UnixSubprocessTransport`); an allow entry is exact, or `module.*` for the
names defined directly in that module. Trust never depends on a repo or organisation name.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import functools
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .budgets import Budgets
from .findings import Finding, Severity, Suppression
from . import datafiles
from .errors import PolicyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POLICY_FILE = "modelshield.toml"
VEX_JUSTIFICATIONS = {"code_not_present", "code_not_reachable", "requires_configuration",
                      "requires_dependency", "requires_environment", "protected_by_compiler",
                      "protected_at_runtime", "protected_at_perimeter", "protected_by_mitigating_control"}


@dataclass(frozen=True)
class Classification:
    """How the policy sees one imported global."""

    verdict: str  # "deny" | "allow" | "unknown"
    entry: str | None = None  # the table entry that matched
    why: str | None = None  # its justification
    group: str | None = None  # its table group (e.g. "processes")


@dataclass
class SuppressionRule:
    rule: str
    path: str
    reason: str
    expires: _dt.date
    vex_state: str = "not_affected"
    vex_justification: str | None = None


@functools.lru_cache(maxsize=2)
def module_aliases(python_source: bool = False) -> dict[str, str]:
    """Module names that are other names for the same code (data/module_aliases.toml).

    `python_source`: also the names only Python source uses (`np`, `cPickle`, `commands`...)."""
    table = datafiles.load("module_aliases.toml")
    return {**table["same_code"], **(table["python_source"] if python_source else {})}


def normalise_module(module: str) -> str:
    """Canonical module name (`posix` -> `os`); the first component decides."""
    aliases = module_aliases()
    head, dot, rest = module.partition(".")
    if module in aliases:
        return aliases[module]
    if head in aliases:
        return aliases[head] + dot + rest
    return module


@functools.lru_cache(maxsize=None)
def _table(name: str) -> dict[str, tuple[str, str]]:
    """entry -> (group, justification) from data/policy/<name>.toml (groups are tables)."""
    if not datafiles.path("policy", f"{name}.toml").is_file():
        return {}
    out: dict[str, tuple[str, str]] = {}
    for group, entries in datafiles.load("policy", f"{name}.toml").items():
        for entry, why in entries.items():
            if not isinstance(why, str) or not why.strip():
                raise PolicyError(f"{name}.toml: {entry} needs a one-line justification")
            out[entry] = (group, why)
    return out


@dataclass
class Policy:
    """Everything configurable about a scan. Build with `Policy.default()` or `Policy.load()`."""

    fail_on: Severity = Severity.HIGH
    inconclusive_ok: bool = False  # policy `inconclusive = "pass"`: exit 0 instead of 2
    budgets: Budgets = field(default_factory=Budgets)
    extra_allow: dict[str, str] = field(default_factory=dict)
    allowed_code: dict[str, str] = field(default_factory=dict)  # [allow.code]: reviewed file sha256 -> reason
    suppressions: list[SuppressionRule] = field(default_factory=list)
    # the raw [advisories] table (modelshield.advisories validates it)
    advisories: dict[str, Any] = field(default_factory=dict)
    # the raw [etsi] table: justifications and attestations (modelshield.sbom.evidence validates it)
    etsi: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    digest: str | None = None
    trust: Any = None  # signatures.trust.TrustPolicy from `[trust]` or --trust (None: no trusted signer)
    require_signature: bool = False  # --require-signature: anything but a valid signature blocks
    today: _dt.date = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).date())

    @classmethod
    def default(cls) -> "Policy":
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, start: str | os.PathLike[str] | None = None) -> "Policy":
        """Read `path`, else `modelshield.toml` or `[tool.modelshield]` of `pyproject.toml` found
        from `start` (default: the current folder) upward; defaults when none exists."""
        if path is not None:
            return cls.from_file(Path(path))
        folder = Path(start or os.getcwd()).resolve()
        for candidate in (folder, *folder.parents):
            if (candidate / POLICY_FILE).is_file():
                return cls.from_file(candidate / POLICY_FILE)
            pyproject = candidate / "pyproject.toml"
            if pyproject.is_file():
                try:
                    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
                except (OSError, tomllib.TOMLDecodeError):
                    continue
                if "modelshield" in data.get("tool", {}):
                    return cls.from_file(pyproject)
        return cls.default()

    @classmethod
    def from_file(cls, path: Path) -> "Policy":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from None
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("modelshield", {})
        policy = cls.from_mapping(data, str(path))
        policy.digest = hashlib.sha256(raw).hexdigest()
        return policy

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<mapping>") -> "Policy":
        """Validate and build a policy from parsed TOML."""
        known = {"fail_on", "inconclusive", "allow", "suppress", "budgets", "advisories", "etsi", "trust"}
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
        policy = cls(source=source)
        try:
            if "fail_on" in data:
                policy.fail_on = Severity.parse(str(data["fail_on"]))
            if "inconclusive" in data:
                if data["inconclusive"] not in ("fail", "pass"):
                    raise PolicyError('inconclusive must be "fail" or "pass"')
                policy.inconclusive_ok = data["inconclusive"] == "pass"
            policy.budgets = Budgets.from_mapping(data.get("budgets", {}))
            for name, why in data.get("allow", {}).get("globals", {}).items():
                if not isinstance(why, str) or not why.strip():
                    raise PolicyError(f"allow.globals.{name!r} needs a justification string")
                policy.extra_allow[name] = why
            policy.allowed_code = _allowed_code(data.get("allow", {}).get("code", {}))
            for i, item in enumerate(data.get("suppress", [])):
                policy.suppressions.append(_suppression(item, i))
            if not isinstance(data.get("advisories", {}), dict):
                raise PolicyError("[advisories] must be a table")
            policy.advisories = dict(data.get("advisories", {}))
            if not isinstance(data.get("etsi", {}), dict):
                raise PolicyError("[etsi] must be a table")
            policy.etsi = dict(data.get("etsi", {}))
            if "trust" in data:
                from .signatures.trust import TrustPolicy

                policy.trust = TrustPolicy.from_mapping(data["trust"], source)
        except (ValueError, TypeError, AttributeError) as exc:
            raise PolicyError(f"{source}: {exc}") from None
        return policy

    def classify(self, module: str, name: str) -> Classification:
        """Deny (module prefix or exact global) > allow (exact or `module.*`) > unknown."""
        module = normalise_module(module)
        full = f"{module}.{name}" if name else module
        deny = _table("deny")
        for candidate in _prefixes(full):
            if candidate in deny:
                group, why = deny[candidate]
                return Classification("deny", candidate, why, group)
        allow = _table("allow")
        # `module.*` covers plain names defined in that module: never attribute chains
        # ("a.b") or dunders (`numpy.__builtins__` reaches eval).
        plain = name.isidentifier() and not (name.startswith("__") and name.endswith("__"))
        for candidate in (full, f"{module}.*") if plain else (full,):
            if candidate in self.extra_allow:
                return Classification("allow", candidate, self.extra_allow[candidate], "policy")
            if candidate in allow:
                group, why = allow[candidate]
                return Classification("allow", candidate, why, group)
        return Classification("unknown")

    def apply_suppressions(self, findings: list[Finding], path: str) -> None:
        """Waive findings a live suppression covers; note expired ones on the finding."""
        for finding in findings:
            if finding.suppressed is not None:
                continue
            for rule in self.suppressions:
                if not (fnmatch.fnmatchcase(finding.rule_id, rule.rule) and fnmatch.fnmatchcase(path, rule.path)):
                    continue
                if rule.expires < self.today:
                    note = f" (suppression for {rule.path} expired on {rule.expires.isoformat()}: {rule.reason})"
                    if note not in finding.message:
                        finding.message += note
                        finding.evidence["expired_suppression"] = rule.expires.isoformat()
                    continue
                finding.suppressed = Suppression(reason=rule.reason, expires=rule.expires.isoformat(),
                                                 path_glob=rule.path, vex_state=rule.vex_state,
                                                 vex_justification=rule.vex_justification)
                break

    def describe(self) -> dict[str, Any]:
        return {"source": self.source or "built-in defaults", "sha256": self.digest,
                "fail_on": str(self.fail_on), "inconclusive": "pass" if self.inconclusive_ok else "fail"}


def _allowed_code(table: dict[str, Any]) -> dict[str, str]:
    """`[allow.code]`: SHA-256 of a reviewed code file -> who reviewed it and why."""
    out: dict[str, str] = {}
    for digest, why in table.items():
        key = digest.lower().removeprefix("sha256:")
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise PolicyError(f"allow.code.{digest!r} must be the file's SHA-256 (64 hex digits)")
        if not isinstance(why, str) or not why.strip():
            raise PolicyError(f"allow.code.{digest!r} needs a justification string (who reviewed it, why)")
        out[key] = why
    return out


def _prefixes(full: str) -> list[str]:
    parts = full.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _suppression(item: dict[str, Any], index: int) -> SuppressionRule:
    where = f"suppress[{index}]"
    for key in ("rule", "reason", "expires"):
        if not item.get(key):
            raise PolicyError(f"{where} needs {key!r} (a suppression always has a reason and an expiry date)")
    expires = item["expires"]
    if isinstance(expires, str):
        expires = _dt.date.fromisoformat(expires)
    if isinstance(expires, _dt.datetime):
        expires = expires.date()
    if not isinstance(expires, _dt.date):
        raise PolicyError(f"{where}.expires must be a date (YYYY-MM-DD)")
    justification = item.get("vex_justification")
    if justification is not None and justification not in VEX_JUSTIFICATIONS:
        raise PolicyError(f"{where}.vex_justification must be one of {', '.join(sorted(VEX_JUSTIFICATIONS))}")
    return SuppressionRule(rule=item["rule"], path=item.get("path", "*"), reason=item["reason"], expires=expires,
                           vex_state=item.get("vex_state", "not_affected"), vex_justification=justification)
