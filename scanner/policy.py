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
FAIL_ON = ("critical", "high", "medium", "low")  # the same set for --fail-on and the policy's fail_on
ALLOW_TABLES = {"globals", "code"}  # [allow.<table>] sections a policy may hold
# How to say what an alias is, after the name the bytes use ("posix.system (os.system on POSIX)").
ALIAS_NOTES = {"nt": " on Windows", "ntpath": " on Windows", "posix": " on POSIX", "posixpath": " on POSIX",
               "__builtin__": ", the Python 2 name", "__builtins__": ""}
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
    only: str | None = None  # an allow entry that covers some uses only (CALL_CONSTRAINTS)


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


def alias_note(module: str) -> str:
    """" on POSIX" for `posix...`: where the aliased module name means its canonical one."""
    return ALIAS_NOTES.get(module.partition(".")[0], "")


# How a constrained allow entry may be used (allow.toml: `name = { why = "...", only = "<kind>" }`);
# any other use is an unverified call (analysis.picklevm.machine checks it at each call site).
CALL_CONSTRAINTS = {
    "newobj": "created without running __init__ (NEWOBJ, or the class slot of copyreg._reconstructor), "
              "the way pickle writes it",
    "none-first": "called with None as its first argument, the way pickle writes it",
    "torchbind": "created without __init__ and restored from the state of a TorchBind class listed in "
                 "picklevm.toml [torchbind_states] (torch.ScriptObject)",
    "apply": "called as (f, args, state[, dict]): analysed as the call f(*args), checked on its own, then "
             "its BUILD state (dill._create_array)",
    "dill-type": "called with a type name of picklevm.toml [dill_types]: analysed as an import of that type, "
                 "checked on its own (dill._load_type)",
}
# Constrained entries that stand for another, checked operation: exact entries of this kind beat a
# deny of their module (dill is denied; these two helpers of it are judged by what they do).
SEE_THROUGH = ("apply", "dill-type")


@functools.lru_cache(maxsize=None)
def _table(name: str) -> dict[str, tuple[str, str, str | None]]:
    """entry -> (group, justification, constraint) from data/policy/<name>.toml (groups are tables).

    A value is the justification, or (allow entries) an inline table `{why = ..., only = <kind>}`
    for an entry that covers one use of the global only (see CALL_CONSTRAINTS)."""
    if not datafiles.path("policy", f"{name}.toml").is_file():
        return {}
    out: dict[str, tuple[str, str, str | None]] = {}
    for group, entries in datafiles.load("policy", f"{name}.toml").items():
        for entry, value in entries.items():
            only = None
            if isinstance(value, dict) and name == "allow":
                only = value.get("only")
                value = value.get("why")
                if only not in CALL_CONSTRAINTS:
                    raise PolicyError(f"{name}.toml: {entry}: only must be one of {', '.join(CALL_CONSTRAINTS)}")
            if not isinstance(value, str) or not value.strip():
                raise PolicyError(f"{name}.toml: {entry} needs a one-line justification")
            out[entry] = (group, value, only)
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
        """Read `path`, else the policy file `discover()` finds from `start` (default: the current
        folder); the built-in defaults when there is none."""
        if path is not None:
            return cls.from_file(Path(path))
        found = discover(start)
        return cls.from_file(found) if found is not None else cls.default()

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
        allow_tables = data.get("allow", {})
        unknown = set(allow_tables) - ALLOW_TABLES if isinstance(allow_tables, dict) else set()
        if unknown:
            raise PolicyError(f"{source}: unknown table(s) {', '.join('allow.' + k for k in sorted(unknown))} "
                              f"(known: {', '.join('allow.' + k for k in sorted(ALLOW_TABLES))})")
        policy = cls(source=source)
        try:
            if "fail_on" in data:
                policy.fail_on = parse_fail_on(str(data["fail_on"]))
            if "inconclusive" in data:
                if data["inconclusive"] not in ("fail", "pass"):
                    raise PolicyError('inconclusive must be "fail" or "pass"')
                policy.inconclusive_ok = data["inconclusive"] == "pass"
            policy.budgets = Budgets.from_mapping(data.get("budgets", {}))
            for name, why in data.get("allow", {}).get("globals", {}).items():
                if not isinstance(why, str) or not why.strip():
                    raise PolicyError(f"allow.globals.{name!r} needs a justification string")
                denied = _denied(name)
                if denied is not None:
                    group, why_denied, _ = _table("deny")[denied]
                    raise PolicyError(f"allow.globals.{name!r} cannot be allowed: {denied} is on the built-in deny "
                                      "list "
                                      f"({group}: {why_denied}); a policy never overrides it")
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
        """Deny (module prefix or exact global) > allow (exact or `module.*`) > unknown; an exact
        see-through allow entry (SEE_THROUGH) beats a deny of its module, never an exact deny."""
        module = normalise_module(module)
        full = f"{module}.{name}" if name else module
        deny = _table("deny")
        allow = _table("allow")
        exact = allow.get(full)
        if exact is not None and exact[2] in SEE_THROUGH and full not in deny:
            return Classification("allow", full, exact[1], exact[0], exact[2])
        for candidate in _prefixes(full):
            if candidate in deny:
                group, why, _ = deny[candidate]
                return Classification("deny", candidate, why, group)
        # `module.*` covers plain names defined in that module: never attribute chains
        # ("a.b") or dunders (`numpy.__builtins__` reaches eval).
        plain = name.isidentifier() and not (name.startswith("__") and name.endswith("__"))
        for candidate in (full, f"{module}.*") if plain else (full,):
            if candidate in self.extra_allow:
                return Classification("allow", candidate, self.extra_allow[candidate], "policy")
            if candidate in allow:
                group, why, only = allow[candidate]
                return Classification("allow", candidate, why, group, only)
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
                                                 path_glob=rule.path, rule=rule.rule, vex_state=rule.vex_state,
                                                 vex_justification=rule.vex_justification)
                break

    def describe(self, findings: list[Finding] | None = None) -> dict[str, Any]:
        """Which policy is in force; given the scan's findings, also how many it waived and notes
        on suppressions that name unknown rules, matched nothing, or have expired."""
        out: dict[str, Any] = {"source": self.source or "built-in defaults", "sha256": self.digest,
                               "fail_on": str(self.fail_on), "inconclusive": "pass" if self.inconclusive_ok else "fail"}
        if findings is None:
            return out
        out["waived"] = sum(1 for f in findings if f.suppressed is not None)
        out["notes"] = self.suppression_notes(findings)
        return out

    def suppression_notes(self, findings: list[Finding]) -> list[str]:
        """One line per suppression that deserves a look after this scan."""
        from .rules import load_rules

        known = [r.id for r in load_rules()]
        notes = []
        for i, rule in enumerate(self.suppressions):
            where = f"suppress[{i}] (rule {rule.rule}, path {rule.path})"
            if not fnmatch.filter(known, rule.rule):
                notes.append(f"{where}: no rule id matches {rule.rule!r}; see `modelshield rules`")
            elif rule.expires < self.today:
                if any(f.evidence.get("expired_suppression") == rule.expires.isoformat()
                       and fnmatch.fnmatchcase(f.rule_id, rule.rule) for f in findings):
                    notes.append(f"{where}: expired on {rule.expires.isoformat()}; "
                                 "the findings it covered are active again")
                else:
                    notes.append(f"{where}: expired on {rule.expires.isoformat()} and matched nothing in this scan")
            elif not any(f.suppressed is not None and f.suppressed.rule == rule.rule and
                         f.suppressed.path_glob == rule.path and f.suppressed.reason == rule.reason for f in findings):
                notes.append(f"{where}: matched nothing in this scan")
        return notes


def discover(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The policy file in force for a scan started in `start` (default: the current folder).

    `modelshield.toml`, else `pyproject.toml` with a `[tool.modelshield]` table, searched from
    `start` upward, but never above the repository root (the folder holding `.git`) or the home
    folder; when neither is above `start`, only `start` itself is searched. A stray file two
    folders up (a shared /tmp, a parent checkout) therefore never waives findings silently.
    """
    folder = Path(start or os.getcwd()).resolve()
    try:
        home: Path | None = Path.home().resolve()
    except (RuntimeError, KeyError):
        home = None
    chain = [folder, *folder.parents]
    stops = [i for i, c in enumerate(chain) if c == home or (c / ".git").exists()]
    for candidate in chain[: stops[0] + 1 if stops else 1]:
        if (candidate / POLICY_FILE).is_file():
            return candidate / POLICY_FILE
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if "modelshield" in data.get("tool", {}):
                return pyproject
    return None


def parse_fail_on(text: str) -> Severity:
    """A `fail_on` / `--fail-on` value (case-insensitive): one of FAIL_ON."""
    value = text.strip().lower()
    if value not in FAIL_ON:
        raise PolicyError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {text!r}")
    return Severity.parse(value)


def _denied(entry: str) -> str | None:
    """The deny-table entry covering an allow entry (`os.system`, `posix.system`, `os.*`...), if any."""
    full = normalise_module(entry[:-2] if entry.endswith(".*") else entry)
    deny = _table("deny")
    return next((c for c in _prefixes(full) if c in deny), None)


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
        try:
            expires = _dt.date.fromisoformat(expires.strip())
        except ValueError:
            raise PolicyError(f"{where}.expires = {item['expires']!r} is not a date: expected YYYY-MM-DD "
                              "(e.g. expires = 2027-03-31)") from None
    if isinstance(expires, _dt.datetime):
        expires = expires.date()
    if not isinstance(expires, _dt.date) or isinstance(expires, _dt.time):
        raise PolicyError(f"{where}.expires = {item['expires']!r} is not a date: expected YYYY-MM-DD "
                          "(e.g. expires = 2027-03-31)")
    justification = item.get("vex_justification")
    if justification is not None and justification not in VEX_JUSTIFICATIONS:
        raise PolicyError(f"{where}.vex_justification must be one of {', '.join(sorted(VEX_JUSTIFICATIONS))}")
    return SuppressionRule(rule=item["rule"], path=item.get("path", "*"), reason=item["reason"], expires=expires,
                           vex_state=item.get("vex_state", "not_affected"), vex_justification=justification)
