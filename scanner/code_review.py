"""Allowlist-first review of the Python that loaders import from a repository on load.

A denylist of dangerous calls always misses some standard-library helper that runs a command or
evaluates a string, so code a loader imports is judged by review, not by what it seems to call:
each reached file is MS-PY-020 (high) unless the policy lists its SHA-256 in `[allow.code]`
(then MS-PY-021, info). The call analysis of `analysis.python` stays as evidence: its
behaviours are promoted to threats at their loaded severity and rank the finding (critical when
one of `data/code_review.toml`'s `critical_rules` reaches high). A reviewed file keeps only the
threats that count wherever a file is (decode-then-exec, reverse shells...).

Which files are reached is decided by `repo_checks` (configs, dataset scripts) and by
`entry_points` here (files loaders import by path alone, `data/code_review.toml`).
"""
from __future__ import annotations

import functools
import posixpath
from typing import TYPE_CHECKING, Any

from . import datafiles
from .findings import Artefact, Kind, Location, Severity, Status
from .analysis import python as python_code
from .formats import python_file as python_source

if TYPE_CHECKING:
    from .policy import Policy
    from .rules import RuleTable

UNREVIEWED = "MS-PY-020"
REVIEWED = "MS-PY-021"
MAX_LISTED = 20


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return datafiles.load("code_review.toml")


def critical_rules() -> frozenset[str]:
    """Behaviour rules that make unreviewed load-time code critical."""
    return frozenset(_table()["rank"]["critical_rules"])


def entry_points(by_path: dict[str, Artefact]) -> dict[str, str]:
    """Scanned files a loader imports because of their path: path -> how the loader reaches it."""
    out: dict[str, str] = {}
    for spec in _table().get("by_name", []):
        want = spec["path"]
        for path, art in by_path.items():
            if not (path == want or path.endswith("/" + want)):
                continue
            need = spec.get("when_imports")
            imports = art.properties.get("python_source", {}).get("imports", [])
            if need and art.format == python_source.NAME and need not in imports:
                continue
            out[path] = spec["loader"]
    return out


def is_reviewed(policy: "Policy | None", art: Artefact) -> str | None:
    """The policy's reason if this exact file (by SHA-256) was reviewed, else None."""
    if policy is None or not art.sha256:
        return None
    return policy.allowed_code.get(art.sha256.lower())


def review(art: Artefact, reached_by: list[str], rules: "RuleTable", policy: "Policy | None") -> None:
    """Judge one file a loader imports on load (see the module docstring)."""
    if art.status is Status.SKIPPED:
        return
    props = art.properties.setdefault("python_source", {})
    props["reached_by"] = list(dict.fromkeys([*props.get("reached_by", []), *reached_by]))
    reached = "; ".join(props["reached_by"][:3]) + (" ..." if len(props["reached_by"]) > 3 else "")
    loc = Location(path=art.path)
    sha = art.sha256 or "unknown"
    reason = is_reviewed(policy, art)
    if reason is not None:
        props["review"] = {"reviewed": True, "reason": reason}
        art.findings.append(rules.finding(REVIEWED, loc, file=art.path, reached=reached, sha256=sha, reason=reason))
        return
    if props.get("role") == "dataset_script":
        python_code.mark_dataset_script(art, rules, ", ".join(props.get("dataset_builders", [])) or
                                          "script named after the repository", line=None)
    else:
        for how in props["reached_by"]:
            python_code.promote(art, rules, how)
    behaviours = [f for f in art.findings if f.kind is Kind.THREAT and f.active and f.rule_id.startswith("MS-PY-")
                  and f.rule_id not in (UNREVIEWED, python_code.DATASET_SCRIPT)]
    ranking = sorted({f"{f.rule_id} {f.callable or ''}".strip() for f in behaviours
                      if f.rule_id in critical_rules() and f.severity >= Severity.HIGH})
    severity = Severity.CRITICAL if ranking else Severity.HIGH
    if ranking:
        detail = f"; its code reaches {', '.join(ranking[:5])}"
    elif art.format != python_source.NAME or art.status is not Status.ANALYSED or \
            any(f.kind is Kind.INCONCLUSIVE for f in art.findings):
        detail = "; it could not be fully analysed either"
    elif behaviours:
        detail = f"; the call analysis found {len(behaviours)} other behaviour(s)"
    else:
        detail = "; the call analysis found no known-dangerous call, which proves nothing"
    props["review"] = {"reviewed": False, "severity": str(severity), "ranked_by": ranking[:MAX_LISTED]}
    if not any(f.rule_id == UNREVIEWED for f in art.findings):
        art.findings.append(rules.finding(UNREVIEWED, loc, severity=severity, file=art.path, reached=reached,
                                          sha256=sha, detail=detail, reached_by=props["reached_by"][:MAX_LISTED],
                                          ranked_by=ranking[:MAX_LISTED]))


def relative_closure(start: str, by_path: dict[str, Artefact]) -> list[tuple[str, str]]:
    """`start` and the files its relative imports pull in, as transformers' `get_relative_import_files`
    resolves them (relative to the folder of `start`), with the file that imported each."""
    folder = posixpath.dirname(start)
    out: list[tuple[str, str]] = []
    todo, seen = [(start, start)], {start}
    while todo and len(out) < 500:
        path, via = todo.pop(0)
        out.append((path, via))
        art = by_path.get(path)
        if art is None:
            continue
        for mod in art.properties.get("python_source", {}).get("relative_imports", []):
            nxt = posixpath.normpath(posixpath.join(folder, mod + ".py"))
            if nxt not in by_path:  # transformers keeps dots; a package layout uses slashes
                alt = posixpath.normpath(posixpath.join(folder, mod.replace(".", "/") + ".py"))
                nxt = alt if alt in by_path else nxt
            if nxt not in seen:
                seen.add(nxt)
                todo.append((nxt, path))
    return out
